"""POST /orders and GET /orders/{order_id}: an order and its outbox event in
one transaction; the relay confirms it."""

import uuid
from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, BackgroundTasks, Depends, Header, HTTPException, Response
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.orm import Session

from ... import orders
from ...relay import nudge
from ..deps import session

router = APIRouter(tags=["orders"])


class NewOrder(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reference: str = Field(min_length=1, max_length=64, description="Your reference for the order")


class OrderOut(BaseModel):
    id: uuid.UUID
    reference: str
    state: Literal["pending", "confirmed", "dead-lettered"]
    created_at: datetime
    confirmed_at: datetime | None


@router.post("/orders", status_code=201, response_model=OrderOut)
def create_order(
    order: NewOrder,
    response: Response,
    background: BackgroundTasks,
    db: Annotated[Session, Depends(session)],
    idempotency_key: Annotated[str | None, Header(min_length=1, max_length=200)] = None,
) -> OrderOut:
    """Write the order and its outbox event in one transaction, then nudge the
    relay. A retry with the same Idempotency-Key returns the same order and
    writes nothing."""
    written, created = orders.create_order(db, order.reference, idempotency_key)
    db.commit()
    if created:
        # After the answer: a broker outage never fails or slows an accepted
        # order, and beat's next sweep confirms it anyway.
        background.add_task(nudge)
    response.headers["Location"] = f"/orders/{written.id}"
    return OrderOut.model_validate(written._asdict())


@router.get("/orders/{order_id}", response_model=OrderOut)
def read_order(order_id: uuid.UUID, db: Annotated[Session, Depends(session)]) -> OrderOut:
    """The order, and whether its event was confirmed or dead-lettered."""
    found = orders.find_order(db, order_id)
    if found is None:
        raise HTTPException(404, f"no order {order_id}")
    return OrderOut.model_validate(found._asdict())
