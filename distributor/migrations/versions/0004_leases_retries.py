"""leases, retries and the processes' health: batches with leases, deferred deliveries with
their next attempt, paused and held sends, heartbeats and the relay's health

Existing batches get a send_batches row with no lease; `deliveries.dispatched_at` moves to
the batch (`send_batches.queued_at`), so it is dropped.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-29 23:30:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | Sequence[str] | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("sends", schema=None) as batch_op:
        batch_op.add_column(sa.Column("paused_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("held_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("hold_reason", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("resumed_at", sa.DateTime(timezone=True), nullable=True))
    with op.batch_alter_table("deliveries", schema=None) as batch_op:
        batch_op.drop_column("dispatched_at")
        batch_op.add_column(
            sa.Column("first_claimed_at", sa.DateTime(timezone=True), nullable=True)
        )
        batch_op.add_column(sa.Column("lease_owner", sa.String(length=100), nullable=True))
        batch_op.add_column(sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("smtp_code", sa.Integer(), nullable=True))
    op.create_table(
        "send_batches",
        sa.Column("send_id", sa.Integer(), nullable=False),
        sa.Column("batch_no", sa.Integer(), nullable=False),
        sa.Column("queued_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("lease_owner", sa.String(length=100), nullable=True),
        sa.Column("lease_expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["send_id"],
            ["sends.id"],
            name=op.f("fk_send_batches_send_id_sends"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("send_id", "batch_no", name=op.f("pk_send_batches")),
    )
    op.execute(
        "INSERT INTO send_batches (send_id, batch_no) "
        "SELECT DISTINCT send_id, batch_no FROM deliveries"
    )
    op.create_table(
        "heartbeats",
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("clock_offset_ms", sa.Integer(), nullable=False),
        sa.Column("detail", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_heartbeats")),
    )
    with op.batch_alter_table("heartbeats", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_heartbeats_kind"), ["kind"], unique=False)
    op.create_table(
        "relay_health",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("consecutive_outages", sa.Integer(), nullable=False),
        sa.Column("retry_after", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("changed_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_relay_health")),
    )


def downgrade() -> None:
    op.drop_table("relay_health")
    with op.batch_alter_table("heartbeats", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_heartbeats_kind"))
    op.drop_table("heartbeats")
    op.drop_table("send_batches")
    with op.batch_alter_table("deliveries", schema=None) as batch_op:
        batch_op.drop_column("smtp_code")
        batch_op.drop_column("next_attempt_at")
        batch_op.drop_column("lease_owner")
        batch_op.drop_column("first_claimed_at")
        batch_op.add_column(sa.Column("dispatched_at", sa.DateTime(timezone=True), nullable=True))
    with op.batch_alter_table("sends", schema=None) as batch_op:
        batch_op.drop_column("resumed_at")
        batch_op.drop_column("hold_reason")
        batch_op.drop_column("held_at")
        batch_op.drop_column("paused_at")
