"""Acceptance criteria AC1-AC5 against the running stack.

The tests run in file order; the restart tests come last because they
restart beat and recreate the stack.
"""

import itertools
import json
import os
import re
import signal
import subprocess
from datetime import UTC, datetime, timedelta

import pytest

from support import PACKAGE, {% if cookiecutter.beat_scheduler == 'file' %}SCHEDULE_FILE, {% endif %}wait_for

PROJECT = os.environ["COMPOSE_PROJECT_NAME"]

INTERVAL = float({{ cookiecutter.outbox_interval_seconds }})
SWEEP = "process-outbox-events"
APP_UID = "10001"
APP_SERVICES = ["worker", "beat", "flower"]
PERIODIC_TASKS = [SWEEP, "reconcile-data-consistency", "cleanup-processed-outbox-events"]
BEAT_LOG_PROBLEMS = ["Permission denied", "Read-only file system", "Traceback"]

STOP_OR_CONTINUE_BEAT = """
import os, signal, sys
for pid in filter(str.isdigit, os.listdir("/proc")):
    with open(f"/proc/{pid}/cmdline", "rb") as cmdline:
        if b"\\0beat\\0" in cmdline.read() and int(pid) != os.getpid():
            os.kill(int(pid), int(sys.argv[1]))
"""


def sweeps_sent(stack) -> list[datetime]:
    return [when for when, _, message in stack.logs("beat") if f"Sending due task {SWEEP} " in message]


def assert_beat_logs_clean(stack):
    problems = [f"{level}: {message}" for _, level, message in stack.logs("beat") if level in ("ERROR", "CRITICAL")]
    raw = stack.raw_logs("beat")
    problems += [phrase for phrase in BEAT_LOG_PROBLEMS if phrase in raw]
    assert not problems, f"beat logged problems: {problems}"


def test_every_service_turns_healthy_including_beat(stack):
    for service in ["redis", "db", *APP_SERVICES]:
        assert stack.health(service) == "healthy", service


def test_waiting_for_the_stack_names_each_service_as_it_is_ready(stack):
    printed = stack.wait_healthy()
    for service in ["redis", "db", "migrate", *APP_SERVICES]:
        assert re.search(rf"^  {service} +ready after \d+s$", printed, re.MULTILINE), printed


def test_a_large_emit_shows_its_progress(stack):
    done = stack.exec("worker", "python", "-m", PACKAGE, "emit", "--count", "12000")
    assert done.stderr.splitlines()[-3:] == [
        "Emitting: 5000/12000 (42%)",
        "Emitting: 10000/12000 (83%)",
        "Emitting: 12000/12000 (100%)",
    ], done.stderr
    assert "Emitted 12000 order(s)" in done.stdout
    stack.settle(emitted=int(stack.psql("SELECT count(*) FROM outbox_events")), timeout=120)


def test_ac4_beat_starts_and_logs_each_registered_task(stack):
    messages = [message for _, _, message in stack.logs("beat")]
    assert "beat: Starting..." in messages
    for name in PERIODIC_TASKS:
        assert any(message.startswith(f"Registered periodic task {name}: ") for message in messages), name
    assert_beat_logs_clean(stack)


{%- if cookiecutter.beat_scheduler == 'file' %}


def test_ac1_schedule_file_is_on_the_volume_writable_and_lists_the_three_entries(stack):
    listing = stack.exec("beat", "ls", "-ln", "/app/celery-data").stdout
    assert "celerybeat-schedule" in listing
    stack.exec("beat", "test", "-w", SCHEDULE_FILE)
    mounts = subprocess.run(["docker", "inspect", stack.container("beat")], capture_output=True, check=True).stdout
    volume = next(m for m in json.loads(mounts)[0]["Mounts"] if m["Destination"] == "/app/celery-data")
    assert volume["Type"] == "volume"
    assert volume["Name"] == f"{PROJECT}-celery-beat-data"
    assert volume["RW"] is True
    assert sorted(stack.schedule()) == sorted(PERIODIC_TASKS)


def test_ac5_every_file_in_the_volume_belongs_to_the_app_user(stack):
    owners = stack.exec("beat", "find", "/app/celery-data", "-printf", "%U %p\\n").stdout.split("\n")
    owners = [line for line in owners if line]
    assert len(owners) >= 2, owners
    assert all(line.split(" ", 1)[0] == APP_UID for line in owners), owners
{%- endif %}


@pytest.mark.parametrize("service", APP_SERVICES)
def test_ac5_app_processes_run_as_non_root(stack, service):
    top = subprocess.run(
        ["docker", "top", stack.container(service), "-o", "uid,pid,args"], capture_output=True, text=True, check=True
    ).stdout.splitlines()[1:]
    assert top, f"no processes in {service}"
    assert all(line.split()[0] == APP_UID for line in top), top


@pytest.mark.parametrize("path", ["/app/probe", "/app/src/probe", "/opt/venv/probe", "/etc/probe", "/probe"])
def test_ac5_beat_cannot_write_outside_its_volume_and_tmp(stack, path):
    done = stack.exec("beat", "touch", path, check=False)
    assert done.returncode != 0
    assert "Read-only file system" in done.stdout + done.stderr


@pytest.mark.parametrize("directory", [{% if cookiecutter.beat_scheduler == 'file' %}"/app/celery-data", {% endif %}"/tmp"])
def test_ac5_beat_can_write_to_its_volume_and_tmp(stack, directory):
    stack.exec("beat", "sh", "-c", f"touch {directory}/probe && rm {directory}/probe")


def test_ac2_the_sweep_is_sent_and_succeeds_about_every_interval(stack):
    sent = wait_for(
        lambda: (s := sweeps_sent(stack)) and len(s) >= 3 and s,
        timeout=4 * INTERVAL + 10,
        message="three outbox sweeps",
    )
    gaps = [(later - earlier).total_seconds() for earlier, later in itertools.pairwise(sent)]
    assert all(0.5 * INTERVAL <= gap <= 1.5 * INTERVAL for gap in gaps), gaps
    succeeded = [
        message
        for _, _, message in stack.logs("worker")
        if message.startswith(f"Task {PACKAGE}.tasks.process_outbox_events[") and " succeeded in " in message
    ]
    assert len(succeeded) >= len(sent) - 1


def test_ac2_emitted_events_are_all_processed_within_two_intervals(stack):
    before = stack.outbox()["processed"]
    stack.exec("worker", "python", "-m", PACKAGE, "emit", "--count", "25")
    emitted_at = datetime.now(UTC)
    wait_for(lambda: stack.outbox()["processed"] == before + 25, timeout=2 * INTERVAL + 5, message="25 processed")
    assert datetime.now(UTC) - emitted_at <= timedelta(seconds=2 * INTERVAL + 1)
    assert stack.outbox()["processed_without_effect"] == 0


def test_an_emit_is_processed_at_once_by_its_nudge_without_beat(stack):
    """The emitter nudges the relay after its commit; beat's sweep is only the safety net."""
    stack.compose("stop", "beat")
    try:
        stack.empty_outbox()
        stack.exec("worker", "python", "-m", PACKAGE, "emit", "--count", "25")
        wait_for(lambda: stack.outbox()["processed"] == 25, timeout=30, message="the nudged sweep")
    finally:
        stack.compose("start", "beat")
    stack.wait_healthy()


def test_the_image_has_no_pip_and_runs_as_its_own_user(stack):
    done = stack.exec("worker", "python", "-c", "import pip", check=False)
    assert "No module named 'pip'" in done.stderr
    assert stack.exec("worker", "id", "-u").stdout.strip() == APP_UID


@pytest.mark.parametrize("name", ["reconcile-data-consistency", "cleanup-processed-outbox-events"])
def test_ac2_run_triggers_a_periodic_task_now(stack, name):
    done = stack.exec("worker", "python", "-m", PACKAGE, "run", name)
    assert done.stdout.startswith(name + ": {")


def test_ac2_beat_logs_have_no_permission_read_only_or_error_lines(stack):
    assert_beat_logs_clean(stack)


def test_redis_refuses_clients_without_the_password(stack):
    # The container's own REDISCLI_AUTH (for its health check) removed: a stranger.
    anonymous = stack.exec("redis", "env", "-u", "REDISCLI_AUTH", "redis-cli", "ping", check=False)
    assert "NOAUTH" in anonymous.stdout + anonymous.stderr
    authenticated = stack.exec("redis", "redis-cli", "ping", env={"REDISCLI_AUTH": stack.env["REDIS_PASSWORD"]})
    assert authenticated.stdout.strip() == "PONG"


def test_no_service_logs_a_secret(stack):
    logs = stack.compose("logs", "--no-color").stdout
    assert "beat: Starting..." in logs
    for name in ("POSTGRES_PASSWORD", "REDIS_PASSWORD", "FLOWER_PASSWORD"):
        assert stack.env[name] not in logs, f"{name} appears in the logs"


def test_flower_refuses_anonymous_requests(stack):
    status, _ = stack.flower("/api/workers", auth=False)
    assert status == 401


def test_flower_lists_the_worker_as_online(stack):
    def online_workers():
        status, body = stack.flower("/api/workers?status=true")
        assert status == 200
        return [name for name, online in json.loads(body).items() if online]

    assert wait_for(online_workers, timeout=30, message="Flower to see the worker")


def test_a_beat_that_stops_ticking_turns_unhealthy(stack):
    """The "beat starts, then silence" failure: the process lives, nothing is sent."""

    def beat_probe():
        return stack.exec("beat", "python", "-m", f"{PACKAGE}.probes", "beat", check=False)

    assert beat_probe().returncode == 0
    stack.exec("beat", "python", "-c", STOP_OR_CONTINUE_BEAT, str(int(signal.SIGSTOP)))
    try:
        unhealthy = wait_for(
            lambda: (done := beat_probe()).returncode == 1 and done,
            timeout=30,
            message="beat's health check to fail",
        )
        assert "beat is not ticking" in unhealthy.stderr
        wait_for(lambda: stack.health("beat") == "unhealthy", timeout=40, message="Docker to mark beat unhealthy")
    finally:
        stack.exec("beat", "python", "-c", STOP_OR_CONTINUE_BEAT, str(int(signal.SIGCONT)))
    wait_for(lambda: stack.health("beat") == "healthy", timeout=30, message="beat to tick again")
{%- if cookiecutter.beat_scheduler == 'file' %}


def beat_starts(stack) -> list[datetime]:
    return [when for when, _, message in stack.logs("beat") if message == "beat: Starting..."]


def assert_cron_entries_kept(before: dict, after: dict):
    """A kept entry has its old last_run_at, unless it has run since."""
    for name in PERIODIC_TASKS[1:]:
        assert after[name]["last_run_at"] == before[name]["last_run_at"] or (
            after[name]["total_run_count"] > before[name]["total_run_count"]
        ), name


def test_ac3_a_beat_restart_keeps_the_schedule_and_misses_no_sweep(stack):
    # Stop half an interval after a sweep: a lost schedule would then show up
    # as a gap a whole interval too long.
    last = wait_for(
        lambda: (s := sweeps_sent(stack)) and datetime.now(UTC) - s[-1] < timedelta(seconds=1) and s[-1],
        timeout=2 * INTERVAL + 5,
        interval=0.2,
        message="a fresh sweep",
    )
    wait_for(lambda: datetime.now(UTC) >= last + timedelta(seconds=INTERVAL / 2), timeout=INTERVAL, interval=0.2)
    before, inode = stack.schedule(), stack.schedule_inode()

    stopped_at = datetime.now(UTC)
    stack.compose("restart", "beat")
    first_after = wait_for(
        lambda: [t for t in sweeps_sent(stack) if t > stopped_at],
        timeout=3 * INTERVAL + 30,
        message="a sweep after the restart",
    )[0]
    restarted_at = next(t for t in beat_starts(stack) if t > stopped_at)
    last_before = max(t for t in sweeps_sent(stack) if t < stopped_at)

    restart_time = (restarted_at - stopped_at).total_seconds()
    gap = (first_after - last_before).total_seconds()
    assert gap <= INTERVAL + restart_time + 1.5, f"gap {gap:.1f}s across a {restart_time:.1f}s restart"

    after = stack.schedule()
    assert stack.schedule_inode() == inode, "the schedule file was recreated"
    assert after[SWEEP]["total_run_count"] > before[SWEEP]["total_run_count"]
    assert after[SWEEP]["last_run_at"] > before[SWEEP]["last_run_at"]
    assert_cron_entries_kept(before, after)
    assert_beat_logs_clean(stack)


def test_ac3_down_without_volumes_then_up_keeps_the_schedule(stack):
    before = stack.schedule()
    stack.compose("down")
    subprocess.run(["docker", "volume", "inspect", f"{PROJECT}-celery-beat-data"], capture_output=True, check=True)

    stack.compose("up", "-d")
    stack.wait_healthy()
    after = stack.schedule()
    assert after[SWEEP]["total_run_count"] >= before[SWEEP]["total_run_count"]
    assert_cron_entries_kept(before, after)
    assert "beat: Starting..." in [message for _, _, message in stack.logs("beat")]
    assert_beat_logs_clean(stack)
{%- endif %}
