"""The beat schedule: intervals and crontabs as configured."""

from datetime import UTC, datetime

from {{ cookiecutter.package_name }}.schedule import build_beat_schedule
from {{ cookiecutter.package_name }}.settings import Settings

ENV = {
    "database_url": "postgresql://app:secret@db:5432/app",
    "celery_broker_url": "redis://:pw@redis:6379/0",
    "celery_result_backend": "redis://:pw@redis:6379/1",
}


def next_run(entry, now):
    schedule = entry["schedule"]
    schedule.nowfun = lambda: now
    return now + schedule.remaining_estimate(now)


def test_schedule_has_the_three_periodic_tasks():
    schedule = build_beat_schedule(Settings(**ENV))
    assert sorted(schedule) == [
        "cleanup-processed-outbox-events",
        "process-outbox-events",
        "reconcile-data-consistency",
    ]
    assert all(entry["options"]["expires"] > 0 for entry in schedule.values())


def test_outbox_sweep_runs_every_configured_interval():
    entry = build_beat_schedule(Settings(**ENV))["process-outbox-events"]
    assert entry["schedule"] == {{ cookiecutter.outbox_interval_seconds }}
    assert entry["task"] == "{{ cookiecutter.package_name }}.tasks.process_outbox_events"


def test_reconcile_runs_at_the_top_of_every_hour():
    entry = build_beat_schedule(Settings(**ENV))["reconcile-data-consistency"]
    now = datetime(2026, 1, 1, 12, 20, tzinfo=UTC)
    assert next_run(entry, now) == datetime(2026, 1, 1, 13, 0, tzinfo=UTC)


def test_cleanup_next_runs_at_the_configured_hour_utc():
    entry = build_beat_schedule(Settings(**ENV))["cleanup-processed-outbox-events"]
    now = datetime(2026, 1, 1, 23, 30, tzinfo=UTC)
    assert next_run(entry, now) == datetime(2026, 1, 2, {{ cookiecutter.cleanup_hour_utc }}, 0, tzinfo=UTC)


def test_cleanup_hour_follows_the_setting():
    entry = build_beat_schedule(Settings(**ENV, cleanup_hour_utc=5))["cleanup-processed-outbox-events"]
    now = datetime(2026, 1, 1, 23, 30, tzinfo=UTC)
    assert next_run(entry, now) == datetime(2026, 1, 2, 5, 0, tzinfo=UTC)


def test_reconcile_follows_the_crontab_setting():
    entry = build_beat_schedule(Settings(**ENV, reconcile_crontab="*/15 * * * *"))["reconcile-data-consistency"]
    now = datetime(2026, 1, 1, 12, 20, tzinfo=UTC)
    assert next_run(entry, now) == datetime(2026, 1, 1, 12, 30, tzinfo=UTC)


def test_beat_sends_without_waiting_on_results_or_retrying_inside_a_tick():
    schedule = build_beat_schedule(Settings(**ENV))
    assert all(entry["options"]["ignore_result"] and entry["options"]["retry"] is False for entry in schedule.values())
