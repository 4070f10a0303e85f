"""The sample business side: orders, and the handler for their events."""

import uuid

from sqlalchemy import insert as insert_rows
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from .models import Order, OrderConfirmation, OutboxEvent
from .outbox import record_events

ORDER_CREATED = "order.created"


def create_orders(session: Session, count: int) -> list[uuid.UUID]:
    """Write `count` orders, each with its outbox event, in the caller's
    transaction; two bulk inserts, however many."""
    ids = [uuid.uuid4() for _ in range(count)]
    orders = [{"id": order_id, "reference": f"sample-{order_id.hex[:8]}"} for order_id in ids]
    session.execute(insert_rows(Order), orders)
    record_events(session, ORDER_CREATED, [{"order_id": str(order_id)} for order_id in ids])
    return ids


def confirm_orders(session: Session, events: list[OutboxEvent]) -> None:
    """One insert for the batch. Idempotent: the outbox event id is the key,
    so a redelivered event is a no-op."""
    session.execute(
        insert(OrderConfirmation.__table__).on_conflict_do_nothing(index_elements=["outbox_event_id"]),
        [{"outbox_event_id": event.id, "order_id": uuid.UUID(event.payload["order_id"])} for event in events],
    )


HANDLERS = {ORDER_CREATED: confirm_orders}
