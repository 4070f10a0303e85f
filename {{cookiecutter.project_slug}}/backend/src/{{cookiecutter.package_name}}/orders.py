"""The sample business side: orders, and the handler for their events."""

import uuid
from datetime import datetime
from typing import NamedTuple

from sqlalchemy import insert as insert_rows
from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from .models import FAILED, Order, OrderConfirmation, OutboxEvent
from .outbox import record_events

ORDER_CREATED = "order.created"


class OrderState(NamedTuple):
    id: uuid.UUID
    reference: str
    state: str  # pending, confirmed or dead-lettered
    created_at: datetime
    confirmed_at: datetime | None


def create_order(session: Session, reference: str, idempotency_key: str | None = None) -> tuple[OrderState, bool]:
    """Write one order with its outbox event, in the caller's transaction:
    (the new order, True). An idempotency key already used writes nothing
    and gives that order as it stands: (it, False)."""
    order_id = uuid.uuid4()
    created_at = session.scalar(
        insert(Order)
        .values(id=order_id, reference=reference, idempotency_key=idempotency_key)
        .on_conflict_do_nothing(index_elements=["idempotency_key"])
        .returning(Order.created_at)
    )
    if created_at is None:
        existing = session.scalar(select(Order.id).where(Order.idempotency_key == idempotency_key))
        return find_order(session, existing), False
    record_events(session, ORDER_CREATED, [{"order_id": str(order_id)}])
    return OrderState(order_id, reference, "pending", created_at, None), True


def find_order(session: Session, order_id: uuid.UUID) -> OrderState | None:
    """The order and how far its event got, or None."""
    order = session.get(Order, order_id)
    if order is None:
        return None
    confirmed_at = session.scalar(select(OrderConfirmation.confirmed_at).where(OrderConfirmation.order_id == order_id))
    if confirmed_at is not None:
        state = "confirmed"
    else:
        event_status = session.scalar(
            select(OutboxEvent.status).where(OutboxEvent.payload["order_id"].as_string() == str(order_id))
        )
        state = "dead-lettered" if event_status == FAILED else "pending"
    return OrderState(order.id, order.reference, state, order.created_at, confirmed_at)


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
