"""Real faults injected into the real stack. Each test reads like its row in
the fault table: emit events, inject the fault, wait with a deadline, then
assert the invariant from the database (`Stack.settle`): every event
processed once, with exactly one effect, none left in processing."""

import contextlib
{% if cookiecutter.beat_scheduler == 'file' -%}
import itertools
{% endif -%}
import json
import os
import time
import uuid
{%- if cookiecutter.beat_scheduler == 'file' %}
from datetime import UTC, datetime, timedelta

import pytest
{%- endif %}

from support import {% if cookiecutter.beat_scheduler == 'file' %}PACKAGE, SCHEDULE_FILE, {% endif %}docker, {% if cookiecutter.beat_scheduler == 'file' %}scrape, {% endif %}wait_for

INTERVAL = float(os.environ["OUTBOX_INTERVAL_SECONDS"])
LEASE = float(os.environ["TASK_TIME_LIMIT"])
# Time for a stopped container to start and connect again.
STARTUP = 20.0
SETTLE = LEASE + 2 * INTERVAL + STARTUP
OUTAGE = 30.0
SWEEP = "process-outbox-events"
# What beat's health check says while it cannot reach Redis.
{%- if cookiecutter.beat_scheduler == 'file' %}
REDIS_UNREACHABLE = "have failed for"
{%- else %}
REDIS_UNREACHABLE = "cannot reach the schedule in Redis"
{%- endif %}
# More than the worker's processes claim at once, so some wait their turn.
BACKLOG = 2000


@contextlib.contextmanager
def caught_mid_drain(stack):
    """Emit BACKLOG events while the effects table is locked: each worker
    process's sweep claims a batch, then waits to write its effects. The
    fault lands while the block runs, with the sweeps mid-task, not on a
    drain that happened to be slow enough. Yields how many events are held."""
    with stack.locked("order_confirmations"):
        stack.emit(BACKLOG)
        yield wait_for(lambda: stack.outbox()["processing"], timeout=3 * INTERVAL + 10, message="a sweep mid-drain")


def hold(seconds: float, since: float) -> None:
    """Keep a fault in place until `seconds` after `since` (its duration, not a wait for something)."""
    wait_for(lambda: time.monotonic() >= since + seconds, timeout=seconds + 1)


def beat_unhealthy_because(stack, reason: str, timeout: float, statuses=("unhealthy",)) -> str:
    """Wait until beat's health check fails saying `reason`; returns what it said."""
    return wait_for(
        lambda: stack.health("beat") in statuses and reason in (output := stack.health_output("beat")) and output,
        timeout=timeout,
        message=f"beat's health check to fail because {reason!r}",
    )


def test_worker_sigkill_mid_drain_loses_nothing(stack, fault_table):
    with caught_mid_drain(stack) as held:
        injected = time.monotonic()
        docker("kill", "-s", "KILL", stack.container("worker"))
    stack.compose("start", "worker")
    took = stack.settle(emitted=BACKLOG, timeout=SETTLE, since=injected)
    fault_table.append(
        (
            "worker SIGKILL mid-drain",
            "`docker kill -s KILL` on the worker, then `compose start`",
            f"{held} events left in processing; the sweep took them back when their {LEASE:.0f} s lease ran out",
            took,
        )
    )


def test_worker_docker_stop_mid_task_requeues_and_loses_nothing(stack, fault_table):
    with caught_mid_drain(stack) as held:
        injected = time.monotonic()
        stack.compose("stop", "worker")
    state = stack.inspect("worker")["State"]
    # It shut itself down (soft shutdown, then cancel and requeue) instead
    # of being killed when stop_grace_period ran out.
    assert state["ExitCode"] == 0, state
    assert "Initiating Soft Shutdown" in stack.raw_logs("worker")
    stack.compose("start", "worker")
    took = stack.settle(emitted=BACKLOG, timeout=SETTLE, since=injected)
    fault_table.append(
        (
            "worker SIGTERM mid-task",
            "`compose stop worker` (docker stop) while a sweep held events, then `compose start`",
            f"soft shutdown, exit 0; the cancelled sweep's events (of {held} held) came back after their lease",
            took,
        )
    )


def test_a_redis_restart_loses_nothing(stack, fault_table):
    stack.emit(300)
    injected = time.monotonic()
    stack.compose("restart", "redis")
    took = stack.settle(emitted=300, timeout=SETTLE, since=injected)
    wait_for(lambda: stack.health("beat") == "healthy", timeout=30, message="beat healthy")
    fault_table.append(("Redis restart", "`compose restart redis`", "sends and sweeps resumed", took))


def test_redis_down_for_30s_turns_beat_unhealthy_and_loses_nothing(stack, fault_table):
    stack.emit(300)
    stopped = time.monotonic()
    stack.compose("stop", "redis")
    reason = beat_unhealthy_because(stack, REDIS_UNREACHABLE, timeout=OUTAGE)
    hold(OUTAGE, since=stopped)
    stack.compose("start", "redis")
    took = stack.settle(emitted=300, timeout=SETTLE)  # after the outage
    wait_for(lambda: stack.health("beat") == "healthy", timeout=30, message="beat healthy again")
    fault_table.append(
        ("Redis down 30 s", "`compose stop redis`, 30 s, `compose start redis`", f"beat unhealthy: {reason}", took)
    )


def wait_for_database(stack):
    """The test reads the outbox through psql, which fails while the database starts up."""
    wait_for(lambda: stack.health("db") == "healthy", timeout=60, message="the database to accept connections")


def test_a_postgres_restart_loses_nothing(stack, fault_table):
    stack.emit(300)
    injected = time.monotonic()
    stack.compose("restart", "db")
    wait_for_database(stack)
    took = stack.settle(emitted=300, timeout=SETTLE, since=injected)
    fault_table.append(("PostgreSQL restart", "`compose restart db`", "sweeps retried, then drained", took))


def test_postgres_down_for_30s_loses_nothing(stack, fault_table):
    with caught_mid_drain(stack):
        stopped = time.monotonic()
        stack.compose("stop", "db")
    hold(OUTAGE, since=stopped)
    stack.compose("start", "db")
    wait_for_database(stack)
    took = stack.settle(emitted=BACKLOG, timeout=SETTLE)  # after the outage
    fault_table.append(
        (
            "PostgreSQL down 30 s",
            "`compose stop db` mid-drain, 30 s, `compose start db`",
            "sweeps failed and retried; events stranded mid-batch came back after their lease",
            took,
        )
    )


def test_a_poison_event_is_dead_lettered_and_the_others_keep_flowing(stack, fault_table):
    # An order.created event for an order that does not exist: its handler
    # fails on every attempt (foreign key violation).
    payload = json.dumps({"order_id": str(uuid.uuid4())})
    poison = stack.psql(
        "INSERT INTO outbox_events (id, event_type, payload, status, attempts, created_at) "  # noqa: S608
        f"VALUES (gen_random_uuid(), 'order.created', '{payload}', 'pending', 0, now()) RETURNING id"
    ).splitlines()[0]
    stack.emit(300)
    took = stack.settle(emitted=301, failed=1, timeout=SETTLE + 3 * INTERVAL)
    query = f"SELECT status, attempts, last_error FROM outbox_events WHERE id = '{poison}'"  # noqa: S608 - our own id
    status, attempts, error = stack.psql(query).split("|")
    assert (status, attempts) == ("failed", os.environ["OUTBOX_MAX_ATTEMPTS"])
    assert "ForeignKeyViolation" in error
    fault_table.append(
        (
            "poison event",
            "an event whose handler always fails",
            f"dead-lettered after {attempts} attempts; 300 others processed",
            took,
        )
    )


def test_the_same_event_delivered_twice_has_one_effect(stack, fault_table):
    stack.emit(100)
    stack.settle(emitted=100, timeout=SETTLE)
    # A redelivery: events already handled are handed out again.
    stack.psql("UPDATE outbox_events SET status = 'pending' WHERE id IN (SELECT id FROM outbox_events LIMIT 50)")
    took = stack.settle(emitted=100, timeout=SETTLE)
    fault_table.append(
        ("same event twice", "50 processed events set back to pending", "handled again; still one effect each", took)
    )
{%- if cookiecutter.beat_scheduler == 'file' %}


# The beat faults of the file scheduler; test_failover.py has redbeat's.
def sends(stack, name: str, after: datetime) -> list[datetime]:
    return [when for when, _, line in stack.logs("beat") if f"Sending due task {name} " in line and when > after]


def received(stack, task: str, after: datetime) -> list[datetime]:
    """Messages the worker actually got: sends that reached the broker."""
    marker = f"Task {PACKAGE}.tasks.{task}["
    lines = stack.logs("worker")
    return [when for when, _, line in lines if line.startswith(marker) and " received" in line and when > after]


@pytest.mark.parametrize("signal", ["KILL", "TERM"])
def test_beat_stopped_keeps_its_schedule_and_sends_at_most_one_extra_run(stack, fault_table, signal):
    before, inode = stack.schedule(), stack.schedule_inode()
    stopped_at = datetime.now(UTC)
    if signal == "KILL":
        docker("kill", "-s", "KILL", stack.container("beat"))
    else:
        stack.compose("stop", "beat")
    started = time.monotonic()
    stack.compose("start", "beat")
    wait_for(lambda: sends(stack, SWEEP, after=stopped_at), timeout=30, message="a sweep after the restart")
    took = time.monotonic() - started

    after = stack.schedule()
    assert stack.schedule_inode() == inode, "the schedule file was recreated"
    for name, entry in after.items():
        assert entry["total_run_count"] >= before[name]["total_run_count"], name
        assert entry["last_run_at"] >= before[name]["last_run_at"], name
    # Two sends closer than half an interval: the second is an extra run.
    around = wait_for(
        lambda: len(s := sends(stack, SWEEP, after=stopped_at - timedelta(seconds=2 * INTERVAL))) >= 5 and s,
        timeout=5 * INTERVAL + 10,
        message="sweeps around the restart",
    )
    extra = sum((later - earlier).total_seconds() < INTERVAL / 2 for earlier, later in itertools.pairwise(around))
    assert extra <= 1, f"more than one extra run across the restart: {around}"
    stack.emit(50)
    stack.settle(emitted=50, timeout=SETTLE)
    injected = "`docker kill -s KILL` on beat" if signal == "KILL" else "`compose stop beat` (SIGTERM)"
    fault_table.append((f"beat SIG{signal}", injected, f"schedule file kept, no entry reset; {extra} extra run", took))


CORRUPTIONS = {
    "random bytes": f"head -c 12288 /dev/urandom > {SCHEDULE_FILE}",
    "truncated": f"truncate -s 2048 {SCHEDULE_FILE}",
}


@pytest.mark.parametrize(("kind", "corruption"), CORRUPTIONS.items(), ids=CORRUPTIONS.keys())
def test_a_corrupt_schedule_file_is_replaced_and_beat_recovers(stack, fault_table, kind, corruption):
    stack.compose("stop", "beat")
    stack.compose("run", "--rm", "--no-deps", "beat", "sh", "-c", corruption)
    started_at, started = datetime.now(UTC), time.monotonic()
    stack.compose("start", "beat")
    wait_for(lambda: sends(stack, SWEEP, after=started_at), timeout=30, message="a sweep after the restart")
    took = time.monotonic() - started
    errors = [line for when, level, line in stack.logs("beat") if level in ("ERROR", "CRITICAL") and when > started_at]
    assert len(errors) == 1, errors
    assert errors[0].startswith(f"The schedule file {SCHEDULE_FILE} is corrupt ("), errors
    wait_for(lambda: stack.health("beat") == "healthy", timeout=30, message="beat healthy")
    stack.emit(50)
    stack.settle(emitted=50, timeout=SETTLE)
    fault_table.append(
        (f"schedule file {kind}", f"`{corruption}` while beat is stopped", "one ERROR line; a fresh schedule", took)
    )


def test_a_full_beat_volume_keeps_beat_sending_and_its_health_says_why(stack, fault_table):
    small = ("compose.yaml", "tests/faults/full-volume.yaml")
    stack.compose("up", "-d", "--no-deps", "beat", files=small)
    wait_for(lambda: stack.health("beat") == "healthy", timeout=60, message="beat on the small volume")
    # The filler also keeps the tmpfs mounted while beat restarts.
    image, volume = f"{stack.project}-backend", f"{stack.project}_beat-small"
    fill = "head -c 1048576 /dev/zero > /fill/filler; exec sleep infinity"
    label = f"com.docker.compose.project={stack.project}"
    filler = docker("run", "-d", "--label", label, "-v", f"{volume}:/fill", image, "sh", "-c", fill).stdout.strip()
    try:
        reason = beat_unhealthy_because(stack, "cannot save the schedule", timeout=30)
        stack.emit(100)
        stack.settle(emitted=100, timeout=SETTLE)

        # A restart while full: no crash loop, the schedule kept in memory.
        # Docker says `starting` until its start period is over.
        stack.compose("restart", "beat")
        beat_unhealthy_because(stack, "it is kept in memory only", timeout=40, statuses=("starting", "unhealthy"))
        state = stack.inspect("beat")["State"]
        assert state["Running"] and not state["Restarting"] and stack.inspect("beat")["RestartCount"] == 0, state
        stack.emit(100)
        stack.settle(emitted=200, timeout=SETTLE)

        freed = time.monotonic()
        stack.exec("beat", "rm", "/app/celery-data/filler")
        wait_for(lambda: stack.health("beat") == "healthy", timeout=30, message="beat healthy once there is room")
        took = time.monotonic() - freed
        logs = stack.raw_logs("beat")
        assert "The schedule is saved again." in logs
        assert "Traceback" not in logs, logs[logs.index("Traceback") - 500 :][:3000]
    finally:
        docker("rm", "-f", filler, check=False)
        stack.compose("up", "-d", "--no-deps", "beat")
    fault_table.append(
        (
            "full beat volume",
            "a 256 KiB tmpfs volume filled by another container; beat restarted while full; then freed",
            f"beat kept sending, no crash loop; health said: {reason}",
            took,
        )
    )


def test_beat_cut_off_from_redis_turns_unhealthy_and_skips_no_run(stack, fault_table):
    network = f"{stack.project}_default"
    # Cut off with most of a minute left, so the crontab entry falls due while cut off.
    wait_for(lambda: datetime.now(UTC).second < 20, timeout=61, interval=0.5, message="the start of a minute")
    cut_at, cut = datetime.now(UTC), time.monotonic()
    docker("network", "disconnect", network, stack.container("beat"))
    try:
        reason = beat_unhealthy_because(stack, "have failed for", timeout=60)
        unhealthy_after = time.monotonic() - cut
        minute = cut_at.replace(second=0, microsecond=0) + timedelta(minutes=1)
        wait_for(
            lambda: datetime.now(UTC) > minute + timedelta(seconds=15),
            timeout=90,
            message="the crontab entry to fall due while cut off",
        )
        assert not received(stack, "reconcile_data_consistency", after=minute), "sent while cut off?"
        status = stack.make("status", check=False)
        assert status.returncode != 0, status.stdout
        # Either verdict is right here: a send that times out also stalls the
        # tick, so beat may be "not ticking" before its sends count as failed.
        assert "- beat: unhealthy: " in status.stdout, status.stdout
    finally:
        docker("network", "connect", network, stack.container("beat"))
    reconnected_at, reconnected = datetime.now(UTC), time.monotonic()
    wait_for(lambda: stack.health("beat") == "healthy", timeout=60, message="beat healthy after reconnecting")
    healthy_after = time.monotonic() - reconnected
    # The missed crontab run goes out once, after the reconnect.
    got = wait_for(
        lambda: received(stack, "reconcile_data_consistency", after=minute),
        timeout=30,
        message="the missed reconcile run",
    )
    minutes_since = int(datetime.now(UTC).timestamp() // 60) - int(reconnected_at.timestamp() // 60)
    assert 1 <= len(got) <= 1 + minutes_since, got
    # Its metrics counted the failed sends, for the BeatNotSending alert's users.
    metrics = scrape(stack.container("beat"), "http://127.0.0.1:9808/metrics")
    assert metrics.get(("celery_beat_send_failures_total", (("entry", SWEEP),)), 0) >= 1, metrics
    stack.emit(50)
    stack.settle(emitted=50, timeout=SETTLE)
    fault_table.append(
        (
            "beat cut off from Redis",
            "`docker network disconnect` for about a minute",
            f"unhealthy after {unhealthy_after:.0f} s ({reason}); the missed crontab run sent once after the reconnect",
            healthy_after,
        )
    )
{%- endif %}
