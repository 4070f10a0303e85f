"""The transactional outbox: claim, hand off, retry, dead-letter, clean up.

Plain SQLAlchemy; Celery tasks call these functions and nothing here knows
about Celery.
"""

import itertools
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import and_, case, delete, func, insert, or_, select, update
from sqlalchemy.orm import Session

from .models import FAILED, PENDING, PROCESSED, PROCESSING, OutboxEvent

# Called with a batch's events of one type; must be idempotent per event.
Handler = Callable[[Session, list[OutboxEvent]], None]


@dataclass
class DrainResult:
    processed: int = 0
    retried: int = 0
    dead_lettered: int = 0
    # The budget ran out with events left: the caller should carry on.
    more_left: bool = False


def record_event(session: Session, event_type: str, payload: dict) -> OutboxEvent:
    """Add an event to the caller's transaction, beside the change it announces."""
    event = OutboxEvent(event_type=event_type, payload=payload)
    session.add(event)
    return event


def record_events(session: Session, event_type: str, payloads: list[dict]) -> None:
    """Many events in one bulk insert, in the caller's transaction."""
    if payloads:
        session.execute(insert(OutboxEvent), [{"event_type": event_type, "payload": payload} for payload in payloads])


def drain(
    new_session: Callable[[], Session],
    handlers: Mapping[str, Handler],
    *,
    batch_size: int,
    lease_seconds: int,
    max_attempts: int,
    retry_delay_seconds: float,
    budget_seconds: float,
    on_backlog: Callable[[], object] = lambda: None,
) -> DrainResult:
    """Process batches until no event is claimable or `budget_seconds` is
    spent. First takes back the events of claimers that died. `on_backlog`
    is called once, when the first batch comes back full."""
    result = DrainResult()
    deadline = time.monotonic() + budget_seconds
    with new_session() as session:
        result.dead_lettered += take_back_expired_leases(session, max_attempts=max_attempts)
        session.commit()
    first_batch = True
    while True:
        with new_session() as session:
            events = claim_batch(session, batch_size=batch_size, lease_seconds=lease_seconds)
            session.commit()
        if first_batch and len(events) == batch_size:
            on_backlog()
        first_batch = False
        process_batch(new_session, handlers, events, result, max_attempts, retry_delay_seconds)
        if len(events) < batch_size:
            return result
        if time.monotonic() >= deadline:
            result.more_left = True
            return result


def claim_batch(session: Session, *, batch_size: int, lease_seconds: int) -> list[OutboxEvent]:
    """Lease up to `batch_size` pending events, oldest first. Rows another
    claimer holds are skipped, not waited for, so concurrent claimers never
    share a row. Claiming counts the attempt, so an event that kills its
    worker every time still runs out of attempts."""
    claimable = (
        select(OutboxEvent.id)
        .where(OutboxEvent.status == PENDING, available())
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


def available():
    """Pending and not waiting out a retry delay (`locked_until` is then
    the time it may be retried)."""
    return or_(OutboxEvent.locked_until.is_(None), OutboxEvent.locked_until <= func.now())


def process_batch(new_session, handlers, events, result: DrainResult, max_attempts: int, retry_delay: float) -> None:
    """One transaction for the batch. Each event type's events go to their
    handler together, in a savepoint; if it fails, that savepoint is rolled
    back and each event is handled again in a savepoint of its own, so a
    failing event undoes only itself. The handled ones are marked processed
    in one statement."""
    if not events:
        return
    handled, failures = [], []
    with new_session() as session:
        for event_type, group in itertools.groupby(sorted(events, key=event_type_of), key=event_type_of):
            group = list(group)
            if handle(session, handlers, event_type, group) is None:
                handled += group
                continue
            for event in group:
                error = handle(session, handlers, event_type, [event])
                if error is None:
                    handled.append(event)
                else:
                    failures.append((event.id, error))
        session.execute(
            update(OutboxEvent)
            .where(OutboxEvent.id.in_([event.id for event in handled]))
            .values(status=PROCESSED, processed_at=func.clock_timestamp(), locked_until=None)
        )
        for event_id, error in failures:
            if record_failure(session, event_id, error, max_attempts=max_attempts, retry_delay=retry_delay) == FAILED:
                result.dead_lettered += 1
            else:
                result.retried += 1
        session.commit()
    result.processed += len(handled)


def event_type_of(event: OutboxEvent) -> str:
    return event.event_type


def handle(session: Session, handlers: Mapping[str, Handler], event_type: str, events: list) -> str | None:
    """Hand `events` to their handler in a savepoint; the error, or None."""
    try:
        with session.begin_nested():
            handlers[event_type](session, events)
    except Exception as exc:  # noqa: BLE001 - any handler error counts as an attempt
        return f"{type(exc).__name__}: {exc}"
    return None


def record_failure(session: Session, event_id, error: str, *, max_attempts: int, retry_delay: float) -> str:
    """Release the event for another attempt, after a delay that grows with
    each one; once it has had `max_attempts` it is dead-lettered as `failed`:
    kept for inspection, never retried, never blocking the rest."""
    return session.scalar(
        update(OutboxEvent)
        .where(OutboxEvent.id == event_id)
        .values(
            last_error=error[:2000],
            locked_until=func.now() + OutboxEvent.attempts * timedelta(seconds=retry_delay),
            status=case((OutboxEvent.attempts >= max_attempts, FAILED), else_=PENDING),
            failed_at=case((OutboxEvent.attempts >= max_attempts, func.now()), else_=None),
        )
        .returning(OutboxEvent.status)
    )


def lease_ran_out():
    """Claimed, but not finished within its lease: its claimer died."""
    return and_(OutboxEvent.status == PROCESSING, OutboxEvent.locked_until < func.now())


def take_back_expired_leases(session: Session, *, max_attempts: int) -> int:
    """Return the events of claimers that died to the pending pool; those
    whose every attempt ended so are dead-lettered. Returns how many were."""
    session.execute(
        update(OutboxEvent)
        .where(lease_ran_out(), OutboxEvent.attempts < max_attempts)
        .values(status=PENDING, locked_until=None)
    )
    abandoned = session.execute(
        update(OutboxEvent)
        .where(lease_ran_out())
        .values(
            status=FAILED,
            failed_at=func.now(),
            locked_until=None,
            last_error="lease expired: its worker died on every attempt",
        )
    )
    return abandoned.rowcount


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
