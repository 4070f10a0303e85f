"""Orders remember the Idempotency-Key they were created with, and an
order's confirmation is found by its order id.

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("orders", sa.Column("idempotency_key", sa.String(200), nullable=True))
    op.create_unique_constraint("uq_orders_idempotency_key", "orders", ["idempotency_key"])
    op.create_index("ix_order_confirmations_order_id", "order_confirmations", ["order_id"])


def downgrade() -> None:
    op.drop_index("ix_order_confirmations_order_id", "order_confirmations")
    op.drop_constraint("uq_orders_idempotency_key", "orders")
    op.drop_column("orders", "idempotency_key")
