"""send kinds: pre-briefs, notices and corrections beside the public send; organisations may
turn off the "embargo lifted" notice

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-04 13:10:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | Sequence[str] | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("sends", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("kind", sa.String(length=16), server_default="public", nullable=False)
        )
        batch_op.add_column(sa.Column("parent_send_id", sa.Integer(), nullable=True))
        batch_op.create_index(batch_op.f("ix_sends_parent_send_id"), ["parent_send_id"])
        batch_op.create_foreign_key(
            batch_op.f("fk_sends_parent_send_id_sends"),
            "sends",
            ["parent_send_id"],
            ["id"],
            ondelete="CASCADE",
        )
    with op.batch_alter_table("organisations", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("lift_notice", sa.Boolean(), server_default=sa.true(), nullable=False)
        )


def downgrade() -> None:
    with op.batch_alter_table("organisations", schema=None) as batch_op:
        batch_op.drop_column("lift_notice")
    with op.batch_alter_table("sends", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("fk_sends_parent_send_id_sends"), type_="foreignkey")
        batch_op.drop_index(batch_op.f("ix_sends_parent_send_id"))
        batch_op.drop_column("parent_send_id")
        batch_op.drop_column("kind")
