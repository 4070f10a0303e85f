"""Operating the stack: `make status`, dead letters listed and replayed with
make, and the metrics Prometheus scrapes."""

import json
import re
import uuid

from support import ROOT, scrape, wait_for


def insert_poison_event(stack) -> tuple[str, str]:
    """An order.created event for an order that does not exist: its handler
    fails (foreign key violation) until the order is written."""
    order_id = str(uuid.uuid4())
    payload = json.dumps({"order_id": order_id})
    event_id = stack.psql(
        "INSERT INTO outbox_events (id, event_type, payload, status, attempts, created_at) "  # noqa: S608 - our own values
        f"VALUES (gen_random_uuid(), 'order.created', '{payload}', 'pending', 0, now()) RETURNING id"
    ).splitlines()[0]
    return event_id, order_id


def status_of(stack, event_id: str) -> str:
    return stack.psql(f"SELECT status FROM outbox_events WHERE id = '{event_id}'")  # noqa: S608


def test_status_shows_a_healthy_stack_and_exits_0(stack):
    shown = stack.make("status").stdout
    for expected in ["redis", "db", "migrate", "flower", "process-outbox-events", "cleanup-processed-outbox-events"]:
        assert expected in shown, expected
    assert re.search(rf"celery@{re.escape(stack.project)}[-_]worker[-_]1", shown), shown
    assert "No problems." in shown


def test_shell_psql_and_redis_cli_are_logged_in_with_no_password_typed(stack):
    stack.emit(3)
    typed = 'print("orders:", session.scalar(sa.select(sa.func.count()).select_from(models.Order)))\n'
    assert "orders: " in stack.make("shell", input=typed).stdout
    assert stack.make("psql", "ARGS=-tAc 'select current_user'").stdout.strip().endswith(stack.env["POSTGRES_USER"])
    assert stack.make("redis-cli", "ARGS=ping").stdout.strip().endswith("PONG")


def test_status_names_a_stopped_service_and_fails(stack):
    stack.compose("stop", "flower")
    try:
        failed = stack.make("status", check=False)
        assert failed.returncode != 0
        assert "Problems:" in failed.stdout and "- flower: exited (" in failed.stdout, failed.stdout
    finally:
        stack.compose("start", "flower")
        wait_for(lambda: stack.health("flower") == "healthy", timeout=60, message="flower healthy again")


def test_a_fixed_poison_event_is_replayed_with_make_and_processed_once(stack):
    event_id, order_id = insert_poison_event(stack)
    stack.emit(1)  # its nudge sweeps now
    wait_for(lambda: status_of(stack, event_id) == "failed", timeout=60, message="the poison event to be dead-lettered")
    listed = stack.make("dead-letters").stdout
    status = stack.make("status", check=False)
    assert status.returncode != 0 and "1 new dead letter(s)" in status.stdout, status.stdout
    assert event_id in listed and "ForeignKeyViolation" in listed, listed

    refused = stack.make("replay", check=False)
    assert refused.returncode != 0 and "Set EVENT=<id>" in refused.stderr
    stack.psql(f"INSERT INTO orders (id, reference) VALUES ('{order_id}', 'fixed')")  # noqa: S608 - the fix
    replayed = stack.make("replay", f"EVENT={event_id}")
    assert "Replayed 1 dead letter(s)." in replayed.stdout, replayed.stdout
    assert f"Replayed dead letter {event_id}" in replayed.stderr, replayed.stderr

    wait_for(lambda: status_of(stack, event_id) == "processed", timeout=60, message="the replayed event")
    effects = stack.psql(f"SELECT count(*) FROM order_confirmations WHERE outbox_event_id = '{event_id}'")  # noqa: S608
    assert effects == "1"
    history = stack.psql(f"SELECT action, attempts, error FROM outbox_event_history WHERE event_id = '{event_id}'")  # noqa: S608
    action, attempts, error = history.split("|")
    assert (action, attempts) == ("replayed", "1") and "ForeignKeyViolation" in error
    assert event_id not in stack.make("dead-letters").stdout


def test_replaying_an_unknown_event_says_so_and_changes_nothing(stack):
    unknown = str(uuid.uuid4())
    refused = stack.make("replay", f"EVENT={unknown}", check=False)
    assert refused.returncode != 0
    assert f"not dead letters (no such event, or not failed): {unknown}" in refused.stderr


def scrape_from_worker(stack, service: str) -> dict:
    """`service`'s metrics, fetched by name over the stack's network."""
    return scrape(stack.container("worker"), f"http://{service}:9808/metrics")


def scrape_each_beat(stack) -> list[dict]:
    """Every beat's own metrics (with redbeat the standby's too): a name
    would reach only one of them."""
    beats = stack.compose("ps", "-q", "beat").stdout.split()
    return [scrape(beat, "http://127.0.0.1:9808/metrics") for beat in beats]


def test_the_stack_serves_outbox_and_beat_metrics_for_prometheus(stack):
    before = scrape_from_worker(stack, "worker")
    stack.emit(50)
    stack.settle(emitted=int(stack.psql("SELECT count(*) FROM outbox_events")), timeout=60)
    after = scrape_from_worker(stack, "worker")
    processed = int(stack.psql("SELECT count(*) FROM outbox_events WHERE status = 'processed'"))
    assert after[("outbox_events", (("status", "processed"),))] == processed
    assert after[("outbox_oldest_pending_age_seconds", ())] == 0
    assert after[("outbox_events_processed_total", ())] - before.get(("outbox_events_processed_total", ()), 0) >= 50

    scrape_from_worker(stack, "beat")  # beat's port answers over the network
    beats = scrape_each_beat(stack)
    sweep = ("celery_beat_sends_total", (("entry", "process-outbox-events"),))
    assert sum(beat.get(sweep, 0) for beat in beats) >= 1, beats
    # Every metric the documented alert rules use is served.
    served = {name for name, _ in after} | {name for beat in beats for name, _ in beat}
    used = set(re.findall(r"\b(?:celery_beat|outbox)_\w+", (ROOT / "monitoring" / "alerts.yml").read_text()))
    assert used and used <= served, used - served
    # Flower's own metrics stay where they were.
    status, body = stack.flower("/metrics")
    assert status == 200 and b"flower_events_total" in body
