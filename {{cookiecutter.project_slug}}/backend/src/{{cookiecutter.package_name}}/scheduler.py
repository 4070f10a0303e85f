"""What both of beat's schedulers share (file_scheduler.py, redbeat_scheduler.py):
a run counts only once its send has succeeded, each failed send logs one
ERROR line and is retried on a later tick, and every tick and send outcome
goes into the record the health check reads (probes.BEAT_RECORD).

The app factory names the scheduler in ``beat_scheduler``, from settings.
"""

import time
from collections.abc import Mapping
from functools import cached_property

from celery.beat import SchedulingError
from celery.schedules import schedule as every
from celery.utils.log import get_logger

from . import metrics, probes
from .settings import get_settings

logger = get_logger(__name__)


def one_line(exc: BaseException) -> str:
    # Celery wraps a failed publish in SchedulingError; the cause is what matters.
    if isinstance(exc, SchedulingError) and exc.__context__ is not None:
        exc = exc.__context__
    return f"{type(exc).__name__}: {' '.join(str(exc).split())}"


def shortest_interval(schedules) -> float | None:
    """Of the interval schedules (seconds, or celery's `schedule`); crontabs have none."""
    intervals = [
        value.run_every.total_seconds() if isinstance(value, every) else float(value)
        for value in schedules
        if isinstance(value, every | int | float)
    ]
    return min(intervals, default=None)


class SendRecordingMixin:
    """Sends without counting the run, and records what happened."""

    record_path = probes.BEAT_RECORD
    scheduler_kind: str
    # A scheduler that waits for another to fail says "standby".
    role = "active"

    def setup_schedule(self):
        self._outcomes = {}
        self._storage_problem = None
        super().setup_schedule()
        entries = self.app.conf.beat_schedule
        for name, entry in sorted(entries.items()):
            logger.info("Registered periodic task %s: %s %r", name, entry["task"], entry["schedule"])
        settings = get_settings()
        shortest = shortest_interval(entry["schedule"] for entry in entries.values())
        self.send_failure_grace = settings.beat_send_failure_grace or min(2 * (shortest or 30), 60)
        self.max_tick_age = settings.beat_heartbeat_max_age
        metrics.serve(metrics.BEAT_REGISTRY)

    @cached_property
    def producer(self):
        # Celery's connects up front, retrying for minutes inside the tick when
        # the broker is down at start. This one connects on the first send,
        # within broker_connection_timeout, so that failure is a failed send
        # like any other: logged, recorded and retried.
        return self.Producer(self.connection, auto_declare=False)

    def send(self, entry, producer=None) -> bool:
        """Publish `entry` without counting it as run. True if it was sent;
        if not, the caller keeps it due."""
        # Celery's own line, so logs read as they always have.
        logger.info("Scheduler: Sending due task %s (%s)", entry.name, entry.task)
        started = time.time()
        try:
            self.apply_async(entry, producer=producer, advance=False)
        except Exception as exc:  # noqa: BLE001 - any failed send is recorded, never raised
            self._send_failed(entry, one_line(exc), started)
            return False
        self._outcomes[entry.name] = {"sent_at": time.time(), "ok": True, "error": None, "failing_since": None}
        metrics.BEAT_SENDS.labels(entry.name).inc()
        return True

    def _send_failed(self, entry, error: str, started: float) -> None:
        metrics.BEAT_SEND_FAILURES.labels(entry.name).inc()
        previous = self._outcomes.get(entry.name, {})
        self._outcomes[entry.name] = {
            "sent_at": time.time(),
            "ok": False,
            "error": error,
            # From the first failed attempt's start: a send that takes long to
            # fail (a DNS timeout) must not eat into the grace.
            "failing_since": previous.get("failing_since") or started,
        }
        logger.error(
            "Send failed: %s (%s) was not sent: %s; it stays due and is retried in %ss",
            entry.name,
            entry.task,
            error,
            self.max_interval,
        )

    def record_storage_problem(self, problem: str | None) -> None:
        if problem and problem != self._storage_problem:
            logger.error("%s", problem)
        elif self._storage_problem and not problem:
            logger.info("The schedule is saved again.")
        self._storage_problem = problem

    def write_record(self, entries: Mapping) -> None:
        now = time.time()
        recorded = {}
        for name, entry in entries.items():
            is_due, next_in = entry.is_due()
            outcome = self._outcomes.get(name, {})
            recorded[name] = {
                "task": entry.task,
                "last_run_at": entry.last_run_at.timestamp() if entry.last_run_at else None,
                "next_due_at": now if is_due else now + next_in,
                "sent_at": outcome.get("sent_at"),
                "ok": outcome.get("ok"),
                "error": outcome.get("error"),
                "failing_since": outcome.get("failing_since"),
            }
        record = {
            "scheduler": self.scheduler_kind,
            "role": self.role,
            "ticked_at": now,
            "max_tick_age": self.max_tick_age,
            "send_failure_grace": self.send_failure_grace,
            "storage_problem": self._storage_problem,
            "entries": recorded,
        }
        probes.write_record(self.record_path, record)
