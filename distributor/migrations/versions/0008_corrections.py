"""corrections: a release may correct another, with a note from the press officer

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-04 14:50:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | Sequence[str] | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("releases", schema=None) as batch_op:
        batch_op.add_column(sa.Column("corrects_release_id", sa.Integer(), nullable=True))
        batch_op.add_column(
            sa.Column("correction_note", sa.Text(), server_default="", nullable=False)
        )
        batch_op.create_index(
            batch_op.f("ix_releases_corrects_release_id"), ["corrects_release_id"]
        )
        batch_op.create_foreign_key(
            batch_op.f("fk_releases_corrects_release_id_releases"),
            "releases",
            ["corrects_release_id"],
            ["id"],
        )


def downgrade() -> None:
    with op.batch_alter_table("releases", schema=None) as batch_op:
        batch_op.drop_constraint(
            batch_op.f("fk_releases_corrects_release_id_releases"), type_="foreignkey"
        )
        batch_op.drop_index(batch_op.f("ix_releases_corrects_release_id"))
        batch_op.drop_column("correction_note")
        batch_op.drop_column("corrects_release_id")
