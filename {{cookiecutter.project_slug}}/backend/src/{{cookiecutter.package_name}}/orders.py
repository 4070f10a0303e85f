"""The sample business side: orders, and the handler for their events."""

import uuid

from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from .models import Order, OrderConfirmation, OutboxEvent
from .outbox import record_event

ORDER_CREATED = "order.created"


def create_orders(session: Session, count: int) -> list[Order]:
    """Write `count` orders, each with its outbox event, in the caller's transaction."""
    orders = [Order(id=uuid.uuid4(), reference=f"sample-{uuid.uuid4().hex[:8]}") for _ in range(count)]
    for order in orders:
        session.add(order)
        record_event(session, ORDER_CREATED, {"order_id": str(order.id)})
    return orders


def confirm_order(session: Session, event: OutboxEvent) -> None:
    """Idempotent: the outbox event id is the key, so a redelivered event is a no-op."""
    session.execute(
        insert(OrderConfirmation)
        .values(outbox_event_id=event.id, order_id=uuid.UUID(event.payload["order_id"]))
        .on_conflict_do_nothing(index_elements=[OrderConfirmation.outbox_event_id])
    )


HANDLERS = {ORDER_CREATED: confirm_order}
