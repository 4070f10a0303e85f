"""Alerts in a real Prometheus: the monitoring profile's server scrapes this
layer's stack with monitoring/prometheus.yml and alerts.yml as they are. A
real fault makes an alert fire, through Prometheus's own evaluation, and the
heal resolves it."""

import json
import time
import urllib.request
import uuid

from support import docker, wait_for

# alerts.yml's `for:` of BeatNotSending, and prometheus.yml's intervals.
BEAT_NOT_SENDING_FOR = 60
EVALUATION = 15


def alert_state(stack, name: str) -> str:
    """`firing`, `pending` or `inactive`, as Prometheus's HTTP API says."""
    port = stack.compose("port", "prometheus", "9090").stdout.strip().rsplit(":", 1)[-1]
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v1/alerts", timeout=10) as response:
        alerts = json.load(response)["data"]["alerts"]
    return next((alert["state"] for alert in alerts if alert["labels"]["alertname"] == name), "inactive")


def scraped(stack, job: str) -> bool:
    """Prometheus has scraped every target of `job` successfully."""
    port = stack.compose("port", "prometheus", "9090").stdout.strip().rsplit(":", 1)[-1]
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v1/targets", timeout=10) as response:
        targets = [t for t in json.load(response)["data"]["activeTargets"] if t["labels"]["job"] == job]
    return bool(targets) and all(target["health"] == "up" for target in targets)


def test_beat_cut_off_fires_beat_not_sending_and_the_heal_resolves_it(stack, fault_table):
    wait_for(lambda: scraped(stack, "celery-beat"), timeout=120, message="Prometheus scraping beat")
    wait_for(lambda: alert_state(stack, "BeatNotSending") == "inactive", timeout=180, message="no alert to start")
    network = f"{stack.project}_default"
    cut = time.monotonic()
    docker("network", "disconnect", network, stack.container("beat"))
    try:
        wait_for(
            lambda: alert_state(stack, "BeatNotSending") == "firing",
            timeout=BEAT_NOT_SENDING_FOR + 4 * EVALUATION + 60,
            interval=2,
            message="BeatNotSending firing",
        )
        fired = time.monotonic() - cut
    finally:
        # With its service name, which Prometheus finds it by (dns_sd_configs).
        docker("network", "connect", "--alias", "beat", network, stack.container("beat"))
    # It waited out its `for:` window, as configured.
    assert fired >= BEAT_NOT_SENDING_FOR, fired
    healed = time.monotonic()
    wait_for(
        lambda: alert_state(stack, "BeatNotSending") == "inactive",
        timeout=240,
        interval=2,
        message="BeatNotSending resolved",
    )
    resolved = time.monotonic() - healed
    fault_table.append(
        (
            "alert: BeatNotSending",
            "beat cut off from the network, in a real Prometheus",
            f"firing {fired:.0f} s after the cut (for: 1m); resolved {resolved:.0f} s after the reconnect",
            resolved,
        )
    )


def test_a_dead_letter_fires_outbox_dead_letters_and_its_replay_resolves_it(stack, fault_table):
    wait_for(lambda: scraped(stack, "outbox"), timeout=120, message="Prometheus scraping the worker")
    # An event for an order that does not exist: dead-lettered after its attempts.
    order = uuid.uuid4()
    payload = json.dumps({"order_id": str(order)})
    poison = stack.psql(
        "INSERT INTO outbox_events (id, event_type, payload, status, attempts, created_at) "  # noqa: S608
        f"VALUES (gen_random_uuid(), 'order.created', '{payload}', 'pending', 0, now()) RETURNING id"
    ).splitlines()[0]
    injected = time.monotonic()
    wait_for(lambda: alert_state(stack, "OutboxDeadLetters") == "firing", timeout=180, interval=2)
    fired = time.monotonic() - injected
    # The fix: the missing order exists now; then `make replay`.
    stack.psql(f"INSERT INTO orders (id, reference, created_at) VALUES ('{order}', 'fixed', now())")  # noqa: S608
    stack.make("replay", f"EVENT={poison}")
    replayed = time.monotonic()
    wait_for(lambda: alert_state(stack, "OutboxDeadLetters") == "inactive", timeout=180, interval=2)
    resolved = time.monotonic() - replayed
    assert stack.psql(f"SELECT status FROM outbox_events WHERE id = '{poison}'") == "processed"  # noqa: S608
    fault_table.append(
        (
            "alert: OutboxDeadLetters",
            "a poison event, in a real Prometheus",
            f"firing {fired:.0f} s after the insert; resolved {resolved:.0f} s after the fix and `make replay`",
            resolved,
        )
    )
