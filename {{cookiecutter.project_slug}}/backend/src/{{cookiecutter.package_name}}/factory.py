"""The Celery app factory: the only place that builds a Celery app."""

from celery import Celery
from celery.signals import task_failure, task_retry, worker_ready
from celery.utils.log import get_task_logger

from . import settings as config
from .liveness import LivenessRecord
from .schedule import build_beat_schedule

logger = get_task_logger(__name__)

SCHEDULERS = {
    "file": "{{ cookiecutter.package_name }}.file_scheduler:FileScheduler",
    "redbeat": "{{ cookiecutter.package_name }}.redbeat_scheduler:RedBeatScheduler",
}
OUTBOX_QUEUE = "outbox"
MAINTENANCE_QUEUE = "maintenance"


def create_app(*, monitoring_only: bool = False) -> Celery:
    """Build the app; ``monitoring_only`` gives Flower a broker-only app."""
    settings = config.load(config.FlowerSettings if monitoring_only else config.Settings)
    app = Celery("{{ cookiecutter.package_name }}")
    app.conf.update(
        broker_url=settings.celery_broker_url,
        result_backend=settings.celery_result_backend,
        # JSON only: no pickle, so a message can never execute code on load.
        task_serializer="json",
        result_serializer="json",
        accept_content=["json"],
        # UTC everywhere: crontabs mean the same thing on every host.
        timezone="UTC",
        enable_utc=True,
        # Retry the first broker connection too, so start order does not matter.
        broker_connection_retry_on_startup=True,
        # Socket timeouts: a dead Redis fails fast instead of hanging a process.
        # An idle consumer re-polls every 10 s by default, not every second; a
        # message still wakes it at once.
        broker_transport_options={
            "socket_timeout": 10,
            "socket_connect_timeout": 5,
            "polling_interval": settings.broker_polling_interval,
        },
        redis_socket_timeout=10,
        redis_socket_connect_timeout=5,
        # Events let Flower see tasks and workers.
        worker_send_task_events=True,
        task_send_sent_event=True,
    )
    if monitoring_only:
        return app

    app.conf.update(
        # acks_late: a killed worker's task is redelivered, not lost.
        task_acks_late=True,
        # ...including when the worker process dies mid-task (OOM, SIGKILL).
        task_reject_on_worker_lost=True,
        # prefetch 1: a slow task never holds back others queued behind it.
        worker_prefetch_multiplier=1,
        # Time limits: a stuck task is interrupted, then killed.
        task_soft_time_limit=settings.task_soft_time_limit,
        task_time_limit=settings.task_time_limit,
        # Recycle a child that has grown past 256 MB, so a slow leak cannot
        # grow without bound. Not by task count: nudges make many short tasks,
        # and a task handed to a child being replaced waited seconds.
        worker_max_memory_per_child=256_000,
        # Longer than the longest task, or Redis redelivers a running task.
        broker_transport_options={
            **app.conf.broker_transport_options,
            "visibility_timeout": settings.broker_visibility_timeout,
        },
        # Results are for the CLI's `run`; keep them a day, not forever.
        result_expires=24 * 3600,
        task_default_queue=MAINTENANCE_QUEUE,
        task_routes={
            "{{ cookiecutter.package_name }}.tasks.process_outbox_events": {"queue": OUTBOX_QUEUE},
            "{{ cookiecutter.package_name }}.tasks.*": {"queue": MAINTENANCE_QUEUE},
        },
        include=["{{ cookiecutter.package_name }}.tasks"],
        # On `docker stop` (SIGTERM, remapped to SIGQUIT by REMAP_SIGTERM in
        # compose) running tasks get this long, then are cancelled and
        # requeued, before Docker's stop_grace_period runs out. An idle worker
        # stops at once: reserved ETA retries are restored to Redis anyway.
        worker_soft_shutdown_timeout=settings.worker_soft_shutdown_timeout,
        beat_scheduler=SCHEDULERS[settings.beat_scheduler],
        # Used by the redbeat scheduler only: the schedule and its lock live
        # in the broker's Redis, under this prefix.
        redbeat_redis_url=settings.celery_broker_url,
        redbeat_key_prefix="{{ cookiecutter.package_name }}:redbeat",
        redbeat_lock_timeout=settings.beat_lock_timeout,
        redbeat_redis_options={"socket_timeout": 10, "socket_connect_timeout": 5},
        beat_schedule=build_beat_schedule(settings),
        # Beat wakes at least this often: each wake-up refreshes its health
        # record, and a failed send is retried this long after. The scheduler
        # saves the schedule after every successful send itself.
        beat_max_loop_interval=5,
    )
    # The worker's health check reads what this keeps fresh (probes.py).
    app.steps["consumer"].add(LivenessRecord)
    return app


@worker_ready.connect
def serve_outbox_metrics(**_):
    # Imported here: Flower builds its app with this factory and needs none of it.
    from . import metrics

    metrics.serve_outbox_metrics()


@task_failure.connect
def log_task_failure(sender=None, task_id=None, exception=None, **_):
    logger.error("Task %s[%s] failed: %r", sender.name, task_id, exception)


@task_retry.connect
def log_task_retry(sender=None, request=None, reason=None, **_):
    logger.warning("Task %s[%s] will retry: %s", sender.name, request.id, reason)
