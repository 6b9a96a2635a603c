"""release content: organisations and brands, rich release fields, images and attachments

Existing releases keep their plain-text body ("text"), get empty rich fields and no
organisation, so they render exactly as before plus the new layout.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-27 10:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

EMPTY_LIST = sa.text("'[]'")


def upgrade() -> None:
    op.create_table(
        "organisations",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("website", sa.String(length=500), nullable=False),
        sa.Column("about", sa.Text(), nullable=False),
        sa.Column("primary_colour", sa.String(length=7), nullable=True),
        sa.Column("accent_colour", sa.String(length=7), nullable=True),
        sa.Column("logo_filename", sa.String(length=255), nullable=True),
        sa.Column("logo_content_type", sa.String(length=100), nullable=True),
        sa.Column("logo_alt", sa.Text(), nullable=False),
        sa.Column("logo_data", sa.LargeBinary(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_organisations")),
        sa.UniqueConstraint("name", name=op.f("uq_organisations_name")),
    )
    with op.batch_alter_table("releases", schema=None) as batch_op:
        batch_op.add_column(sa.Column("standfirst", sa.Text(), nullable=False, server_default=""))
        batch_op.add_column(
            sa.Column("body_format", sa.String(length=16), nullable=False, server_default="text")
        )
        batch_op.add_column(sa.Column("boilerplate", sa.Text(), nullable=False, server_default=""))
        batch_op.add_column(
            sa.Column("quotes", sa.JSON(), nullable=False, server_default=EMPTY_LIST)
        )
        batch_op.add_column(
            sa.Column("press_contacts", sa.JSON(), nullable=False, server_default=EMPTY_LIST)
        )
        batch_op.add_column(
            sa.Column("links", sa.JSON(), nullable=False, server_default=EMPTY_LIST)
        )
        batch_op.add_column(
            sa.Column("template", sa.String(length=100), nullable=False, server_default="release")
        )
        batch_op.add_column(sa.Column("organisation_id", sa.Integer(), nullable=True))
        batch_op.create_index(
            batch_op.f("ix_releases_organisation_id"), ["organisation_id"], unique=False
        )
        batch_op.create_foreign_key(
            batch_op.f("fk_releases_organisation_id_organisations"),
            "organisations",
            ["organisation_id"],
            ["id"],
        )
    op.create_table(
        "release_assets",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("release_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("filename", sa.String(length=255), nullable=False),
        sa.Column("content_type", sa.String(length=100), nullable=False),
        sa.Column("alt_text", sa.Text(), nullable=False),
        sa.Column("caption", sa.Text(), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("data", sa.LargeBinary(), nullable=False),
        sa.ForeignKeyConstraint(
            ["release_id"],
            ["releases.id"],
            name=op.f("fk_release_assets_release_id_releases"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_release_assets")),
    )
    with op.batch_alter_table("release_assets", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_release_assets_release_id"), ["release_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("release_assets", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_release_assets_release_id"))
    op.drop_table("release_assets")
    with op.batch_alter_table("releases", schema=None) as batch_op:
        batch_op.drop_constraint(
            batch_op.f("fk_releases_organisation_id_organisations"), type_="foreignkey"
        )
        batch_op.drop_index(batch_op.f("ix_releases_organisation_id"))
        for column in (
            "organisation_id",
            "template",
            "links",
            "press_contacts",
            "quotes",
            "boilerplate",
            "body_format",
            "standfirst",
        ):
            batch_op.drop_column(column)
    op.drop_table("organisations")
