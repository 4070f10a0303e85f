"""When an event was dead-lettered, and the history replays keep.

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("outbox_events", sa.Column("failed_at", sa.DateTime(timezone=True), nullable=True))
    op.create_table(
        "outbox_event_history",
        sa.Column("id", sa.BigInteger(), sa.Identity(), primary_key=True),
        sa.Column(
            "event_id", sa.Uuid(), sa.ForeignKey("outbox_events.id", ondelete="CASCADE"), nullable=False, index=True
        ),
        sa.Column("action", sa.String(20), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("failed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("recorded_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("outbox_event_history")
    op.drop_column("outbox_events", "failed_at")
