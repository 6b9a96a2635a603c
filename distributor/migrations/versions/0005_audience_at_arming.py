"""the audience at arming: the count when scheduled, and who joined or left by the lift;
when a release's text was last edited

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-04 13:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | Sequence[str] | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

COLUMNS = ("estimated_recipients", "armed_recipients", "joined_at_arming", "left_at_arming")


def upgrade() -> None:
    with op.batch_alter_table("sends", schema=None) as batch_op:
        for name in COLUMNS:
            batch_op.add_column(sa.Column(name, sa.Integer(), nullable=True))
    with op.batch_alter_table("releases", schema=None) as batch_op:
        batch_op.add_column(sa.Column("edited_at", sa.DateTime(timezone=True), nullable=True))
    # Sends scheduled before: what they were scheduled with is what they have.
    op.execute(
        "UPDATE sends SET estimated_recipients = "
        "(SELECT count(*) FROM deliveries WHERE deliveries.send_id = sends.id)"
    )


def downgrade() -> None:
    with op.batch_alter_table("releases", schema=None) as batch_op:
        batch_op.drop_column("edited_at")
    with op.batch_alter_table("sends", schema=None) as batch_op:
        for name in reversed(COLUMNS):
            batch_op.drop_column(name)
