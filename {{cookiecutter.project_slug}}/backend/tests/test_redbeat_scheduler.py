"""Beat on celery-redbeat, against a real Redis: two beats share one lock,
the standby takes over when the active one stops or dies, and a failed send
stays due in Redis instead of counting as run."""

import time
import uuid

import pytest
import redis

from {{ cookiecutter.package_name }} import probes
from {{ cookiecutter.package_name }}.factory import create_app
from {{ cookiecutter.package_name }}.redbeat_scheduler import RedBeatScheduler
from {{ cookiecutter.package_name }}.schedule import SEND_OPTIONS

from conftest import wait_for

SWEEP = "{{ cookiecutter.package_name }}.tasks.process_outbox_events"
LOCK_TIMEOUT = 2


@pytest.fixture
def redbeat_app(app_env):
    """An app on the test Redis, with its own key prefix and a short lock."""
    app = create_app()
    app.conf.update(
        beat_schedule={"every-second": {"task": SWEEP, "schedule": 1.0, "options": SEND_OPTIONS}},
        redbeat_key_prefix=f"test-{uuid.uuid4().hex}",
        redbeat_lock_timeout=LOCK_TIMEOUT,
    )
    return app


@pytest.fixture
def beats(redbeat_app, tmp_path, app_env):
    """Schedulers as two beat containers would run them, each with its own
    record. The sweeps they send are removed afterwards: no worker here."""
    made = []

    def beat():
        record = tmp_path / f"record-{len(made)}"
        scheduler = type("TestRedBeat", (RedBeatScheduler,), {"record_path": record})(app=redbeat_app, max_interval=1)
        made.append(scheduler)
        return scheduler

    yield beat
    for scheduler in made:
        scheduler.close()
    redis.Redis.from_url(app_env["CELERY_BROKER_URL"]).delete("outbox")


def record_of(scheduler) -> dict:
    return probes.read_record(scheduler.record_path)


def sent(scheduler) -> bool | None:
    """Whether the last send of the every-second entry succeeded (None: not tried)."""
    return record_of(scheduler)["entries"]["every-second"]["ok"]


def tick_until(scheduler, condition, timeout: float = 5) -> None:
    """Tick as beat's loop does until `condition`; the entry falls due every second."""
    wait_for(lambda: scheduler.tick() is not None and condition(), timeout=timeout, interval=0.2)


def test_two_beats_share_one_lock_and_only_the_holder_sends(beats):
    active, standby = beats(), beats()
    tick_until(active, lambda: sent(active) is True)
    standby.tick()
    assert (record_of(active)["role"], record_of(standby)["role"]) == ("active", "standby")
    assert sent(standby) is None
    # Ready to take over: a healthy standby.
    assert probes.beat_problem(record_of(standby), time.time()) is None


def test_the_standby_takes_over_when_the_active_beat_stops(beats):
    active, standby = beats(), beats()
    active.tick()
    standby.tick()
    active.close()  # what SIGTERM does: the lock is released
    standby.tick()
    assert record_of(standby)["role"] == "active"


def test_the_standby_takes_over_when_the_active_beats_lock_runs_out(beats):
    active, standby = beats(), beats()
    active.tick()
    standby.tick()
    # The active beat is SIGKILLed: it never renews the lock again.
    wait_for(lambda: standby.tick() is not None and record_of(standby)["role"] == "active", timeout=LOCK_TIMEOUT + 3)
    active.tick()
    assert record_of(active)["role"] == "standby"


def test_a_send_that_fails_stays_due_in_redis(redbeat_app, beats, app_env, dead_broker):
    # The schedule stays on the real Redis; only publishing fails.
    redbeat_app.conf.redbeat_redis_url = app_env["CELERY_BROKER_URL"]
    queued = redis.Redis.from_url(app_env["CELERY_BROKER_URL"]).llen("outbox")
    beat = beats()
    beat.tick()
    stored_before = beat.stored_entries()["every-second"].last_run_at
    tick_until(beat, lambda: sent(beat) is False)
    entry = record_of(beat)["entries"]["every-second"]
    assert "Error 111 connecting" in entry["error"]
    assert beat.stored_entries()["every-second"].last_run_at == stored_before
    assert redis.Redis.from_url(app_env["CELERY_BROKER_URL"]).llen("outbox") == queued
