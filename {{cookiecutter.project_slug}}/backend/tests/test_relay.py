"""Nudging the relay, against a real Redis: a burst of emits sends one sweep."""

import redis

from {{ cookiecutter.package_name }} import relay

from conftest import REDIS_PASSWORD


def queued_sweeps(redis_url: str) -> int:
    return redis.Redis.from_url(redis_url).llen("outbox")


def test_a_burst_of_nudges_sends_one_sweep_until_a_sweep_starts(app_env):
    broker = app_env["CELERY_BROKER_URL"]
    redis.Redis.from_url(broker).delete("outbox")
    relay.starting_sweep()
    try:
        assert [relay.nudge(), relay.nudge(), relay.nudge()] == [True, False, False]
        assert queued_sweeps(broker) == 1
        relay.starting_sweep()
        assert relay.nudge() is True
        assert queued_sweeps(broker) == 2
    finally:
        # No worker here: leave no sweep for another module's worker.
        redis.Redis.from_url(broker).delete("outbox")
        relay.starting_sweep()


def test_a_nudge_never_fails_the_emitter_when_redis_is_unreachable(app_env, monkeypatch):
    unreachable = f"redis://:{REDIS_PASSWORD}@127.0.0.1:1/0"
    monkeypatch.setattr(relay, "flags", lambda: redis.Redis.from_url(unreachable))
    assert relay.nudge() is False
