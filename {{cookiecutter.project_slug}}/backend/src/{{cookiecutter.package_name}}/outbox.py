"""The transactional outbox: claim, hand off, retry, dead-letter, clean up.

Plain SQLAlchemy; Celery tasks call these functions and nothing here knows
about Celery.
"""

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import and_, case, delete, func, or_, select, update
from sqlalchemy.orm import Session

from .models import FAILED, PENDING, PROCESSED, PROCESSING, OutboxEvent

Handler = Callable[[Session, OutboxEvent], None]


@dataclass
class BatchResult:
    processed: int = 0
    retried: int = 0
    dead_lettered: int = 0


def record_event(session: Session, event_type: str, payload: dict) -> OutboxEvent:
    """Add an event to the caller's transaction, beside the change it announces."""
    event = OutboxEvent(event_type=event_type, payload=payload)
    session.add(event)
    return event


def claim_batch(session: Session, *, batch_size: int, lease_seconds: int, max_attempts: int) -> list[OutboxEvent]:
    """Lease up to `batch_size` events: pending ones, and ones whose lease ran
    out because their claimer died. Rows another claimer holds are skipped,
    not waited for, so concurrent claimers never share a row. Claiming counts
    the attempt, so an event that kills its worker every time still runs out
    of attempts."""
    claimable = (
        select(OutboxEvent.id)
        .where(or_(OutboxEvent.status == PENDING, and_(lease_ran_out(), OutboxEvent.attempts < max_attempts)))
        .order_by(OutboxEvent.created_at)
        .limit(batch_size)
        .with_for_update(skip_locked=True)
    )
    claim = (
        update(OutboxEvent)
        .where(OutboxEvent.id.in_(claimable.scalar_subquery()))
        .values(
            status=PROCESSING,
            attempts=OutboxEvent.attempts + 1,
            locked_until=func.now() + timedelta(seconds=lease_seconds),
        )
        .returning(OutboxEvent)
        .execution_options(synchronize_session=False)
    )
    return list(session.scalars(claim))


def lease_ran_out():
    """Claimed, but not finished within its lease: its claimer died."""
    return and_(OutboxEvent.status == PROCESSING, OutboxEvent.locked_until < func.now())


def dead_letter_abandoned(session: Session, *, max_attempts: int) -> int:
    """Events whose every attempt ended with their worker dying mid-event."""
    abandoned = session.execute(
        update(OutboxEvent)
        .where(lease_ran_out(), OutboxEvent.attempts >= max_attempts)
        .values(status=FAILED, locked_until=None, last_error="lease expired: its worker died on every attempt")
    )
    return abandoned.rowcount


def process_batch(
    new_session: Callable[[], Session],
    handlers: Mapping[str, Handler],
    *,
    batch_size: int,
    lease_seconds: int,
    max_attempts: int,
) -> BatchResult:
    """Claim a batch and hand each event to its handler, one transaction each,
    so one failing event never blocks or undoes the others."""
    result = BatchResult()
    with new_session() as session:
        result.dead_lettered += dead_letter_abandoned(session, max_attempts=max_attempts)
        events = claim_batch(session, batch_size=batch_size, lease_seconds=lease_seconds, max_attempts=max_attempts)
        session.commit()

    for event in events:
        with new_session() as session:
            try:
                handlers[event.event_type](session, event)
                mark_processed(session, event)
                session.commit()
                result.processed += 1
                continue
            except Exception as exc:  # noqa: BLE001 - any handler error counts as an attempt
                session.rollback()
                error = f"{type(exc).__name__}: {exc}"
            status = record_failure(session, event, error, max_attempts=max_attempts)
            session.commit()
            if status == FAILED:
                result.dead_lettered += 1
            else:
                result.retried += 1
    return result


def mark_processed(session: Session, event: OutboxEvent) -> None:
    session.execute(
        update(OutboxEvent)
        .where(OutboxEvent.id == event.id)
        .values(status=PROCESSED, processed_at=func.now(), locked_until=None)
    )


def record_failure(session: Session, event: OutboxEvent, error: str, *, max_attempts: int) -> str:
    """Release the event for another attempt; once it has had `max_attempts`
    it is dead-lettered as `failed`: kept for inspection, never retried,
    never blocking the rest."""
    return session.scalar(
        update(OutboxEvent)
        .where(OutboxEvent.id == event.id)
        .values(
            last_error=error[:2000],
            locked_until=None,
            status=case((OutboxEvent.attempts >= max_attempts, FAILED), else_=PENDING),
        )
        .returning(OutboxEvent.status)
    )


def count_expired_leases(session: Session) -> int:
    """Events the sweep will take back: their claimer died mid-batch."""
    return session.scalar(select(func.count()).where(lease_ran_out()))


def count_by_status(session: Session) -> dict[str, int]:
    rows = session.execute(select(OutboxEvent.status, func.count()).group_by(OutboxEvent.status))
    counts = dict.fromkeys((PENDING, PROCESSING, PROCESSED, FAILED), 0)
    counts.update({status: count for status, count in rows})
    return counts


def delete_processed_before(session: Session, *, retention_days: int) -> int:
    """Delete processed events older than the retention; nothing else."""
    deleted = session.execute(
        delete(OutboxEvent).where(
            OutboxEvent.status == PROCESSED,
            OutboxEvent.processed_at < func.now() - timedelta(days=retention_days),
        )
    )
    return deleted.rowcount
