"""The beat schedule: which periodic task runs when. Nothing else."""

from celery.schedules import crontab

from .settings import Settings

TASKS = "{{ cookiecutter.package_name }}.tasks"
# Nothing reads a periodic run's result, so beat never waits on the result
# store; and a failed publish is not retried inside the tick, because the
# scheduler keeps the entry due and sends it again on a later one.
SEND_OPTIONS = {"ignore_result": True, "retry": False}


def build_beat_schedule(settings: Settings) -> dict:
    # `expires`: a run the worker could not start in time is dropped, so a
    # backlog after an outage does not pile up behind the next run.
    interval = settings.outbox_interval_seconds
    return {
        "process-outbox-events": {
            "task": f"{TASKS}.process_outbox_events",
            "schedule": interval,
            "options": {**SEND_OPTIONS, "expires": interval},
        },
        "reconcile-data-consistency": {
            "task": f"{TASKS}.reconcile_data_consistency",
            "schedule": crontab.from_string(settings.reconcile_crontab),
            "options": {**SEND_OPTIONS, "expires": 30 * 60},
        },
        "cleanup-processed-outbox-events": {
            "task": f"{TASKS}.cleanup_processed_outbox_events",
            "schedule": crontab(minute=0, hour=settings.cleanup_hour_utc),
            "options": {**SEND_OPTIONS, "expires": 60 * 60},
        },
    }
