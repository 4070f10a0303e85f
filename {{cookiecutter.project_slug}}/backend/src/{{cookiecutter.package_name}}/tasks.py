"""Celery tasks: thin shells around the outbox functions."""

from dataclasses import asdict

import kombu.exceptions
import redis.exceptions
import sqlalchemy.exc
from celery import shared_task
from celery.utils.log import get_task_logger

from . import metrics, outbox, relay
from .db import new_session
from .orders import HANDLERS
from .settings import get_settings

logger = get_task_logger(__name__)

# Outages of the database or broker are worth retrying; bugs are not.
TRANSIENT_ERRORS = (
    sqlalchemy.exc.OperationalError,
    sqlalchemy.exc.InterfaceError,
    kombu.exceptions.OperationalError,
    redis.exceptions.ConnectionError,
    redis.exceptions.TimeoutError,
)
RETRY_POLICY = {
    "autoretry_for": TRANSIENT_ERRORS,
    "retry_backoff": 2,
    "retry_backoff_max": 60,
    "retry_jitter": True,
    "max_retries": 5,
}


@shared_task(**RETRY_POLICY)
def process_outbox_events() -> dict:
    """Drain the outbox: sent by beat every interval, and by emitters' nudges."""
    relay.starting_sweep()
    settings = get_settings()
    result = outbox.drain(
        new_session,
        HANDLERS,
        batch_size=settings.outbox_batch_size,
        lease_seconds=settings.lease_seconds,
        max_attempts=settings.outbox_max_attempts,
        retry_delay_seconds=settings.outbox_interval_seconds,
        budget_seconds=settings.drain_budget_seconds,
        # A backlog: let another worker process drain beside this one.
        on_backlog=relay.nudge,
    )
    metrics.count_drain(result)
    if result.more_left:
        relay.nudge()
    return asdict(result)


@shared_task(**RETRY_POLICY)
def reconcile_data_consistency() -> dict:
    """Report the outbox's state; the sweep itself takes back expired leases."""
    with new_session() as session:
        counts = outbox.count_by_status(session)
        expired_leases = outbox.count_expired_leases(session)
    logger.info(
        "Reconcile: pending=%d processing=%d (expired leases=%d) failed=%d processed=%d",
        counts["pending"],
        counts["processing"],
        expired_leases,
        counts["failed"],
        counts["processed"],
    )
    return {"expired_leases": expired_leases, **counts}


@shared_task(**RETRY_POLICY)
def cleanup_processed_outbox_events() -> dict:
    retention_days = get_settings().outbox_retention_days
    with new_session() as session:
        deleted = outbox.delete_processed_before(session, retention_days=retention_days)
        session.commit()
    logger.info("Cleanup: deleted %d processed events older than %d days", deleted, retention_days)
    return {"deleted": deleted}
