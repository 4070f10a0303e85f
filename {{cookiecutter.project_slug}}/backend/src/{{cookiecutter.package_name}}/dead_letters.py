"""Dead letters: list them, and put them back once their cause is fixed.

A replay resets an event to `pending` with no attempts, after keeping its
attempts and last error in `outbox_event_history`: nothing is lost, and the
history says the event was replayed.
"""

import logging
import uuid
from collections.abc import Sequence

from sqlalchemy import insert, literal, select, update
from sqlalchemy.orm import Session

from .models import FAILED, PENDING, OutboxEvent, OutboxEventHistory

logger = logging.getLogger(__name__)
REPLAYED = "replayed"


def newest(session: Session, limit: int | None = None) -> list[OutboxEvent]:
    """Dead-lettered events, the most recently failed first."""
    query = select(OutboxEvent).where(OutboxEvent.status == FAILED)
    query = query.order_by(OutboxEvent.failed_at.desc().nulls_last(), OutboxEvent.created_at.desc())
    return list(session.scalars(query.limit(limit)))


def replay(session: Session, event_ids: Sequence[uuid.UUID] | None = None) -> list[uuid.UUID]:
    """Put the given dead letters (all of them with None) back to pending, in
    the caller's transaction. An id that is not a dead letter is an error:
    nothing is replayed then."""
    chosen = select(OutboxEvent.id).where(OutboxEvent.status == FAILED).with_for_update()
    if event_ids is not None:
        chosen = chosen.where(OutboxEvent.id.in_(event_ids))
    found = list(session.scalars(chosen))
    if event_ids is not None and (missing := set(event_ids) - set(found)):
        raise LookupError(f"not dead letters (no such event, or not failed): {', '.join(sorted(map(str, missing)))}")
    session.execute(
        insert(OutboxEventHistory).from_select(
            ["event_id", "action", "attempts", "error", "failed_at"],
            select(
                OutboxEvent.id, literal(REPLAYED), OutboxEvent.attempts, OutboxEvent.last_error, OutboxEvent.failed_at
            ).where(OutboxEvent.id.in_(found)),
        )
    )
    replayed = session.execute(
        update(OutboxEvent)
        .where(OutboxEvent.id.in_(found))
        .values(status=PENDING, attempts=0, last_error=None, failed_at=None, locked_until=None)
        .returning(OutboxEvent.id, OutboxEvent.event_type)
    ).all()
    for event_id, event_type in replayed:
        logger.warning("Replayed dead letter %s (%s); its error is kept in outbox_event_history", event_id, event_type)
    return [event_id for event_id, _ in replayed]


def history(session: Session, event_id: uuid.UUID) -> list[OutboxEventHistory]:
    query = select(OutboxEventHistory).where(OutboxEventHistory.event_id == event_id)
    return list(session.scalars(query.order_by(OutboxEventHistory.id)))
