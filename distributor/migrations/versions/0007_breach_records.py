"""breach records: embargo breaches and breaker flags cleared, who and when

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-04 14:40:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | Sequence[str] | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "breach_records",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("action", sa.String(length=16), nullable=False),
        sa.Column("contact_id", sa.Integer(), nullable=True),
        sa.Column("outlet_id", sa.Integer(), nullable=True),
        sa.Column("release_id", sa.Integer(), nullable=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("recorded_by", sa.String(length=300), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["contact_id"], ["contacts.id"], name=op.f("fk_breach_records_contact_id_contacts")
        ),
        sa.ForeignKeyConstraint(
            ["outlet_id"], ["outlets.id"], name=op.f("fk_breach_records_outlet_id_outlets")
        ),
        sa.ForeignKeyConstraint(
            ["release_id"], ["releases.id"], name=op.f("fk_breach_records_release_id_releases")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_breach_records")),
    )
    for column in ("contact_id", "outlet_id", "release_id"):
        op.create_index(op.f(f"ix_breach_records_{column}"), "breach_records", [column])


def downgrade() -> None:
    for column in ("release_id", "outlet_id", "contact_id"):
        op.drop_index(op.f(f"ix_breach_records_{column}"), table_name="breach_records")
    op.drop_table("breach_records")
