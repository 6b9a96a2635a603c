"""contacts, outlets, beats, segments and the suppression list

Each contact's outlet string becomes an Outlet record (one per case-folded name), and the
installation's random key for address hashes is made here once.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-27 09:00:00.000000
"""

import secrets
from collections.abc import Sequence
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

MEDIA_TYPES = ("print", "broadcast", "online", "agency", "freelance", "newsletter")
LEGAL_BASES = ("legitimate_interest", "consent")
SUPPRESSION_REASONS = ("unsubscribed", "hard_bounced", "complained", "do_not_contact")


def _fold(name: str) -> str:
    """As distributor.segments.fields.fold, copied so the migration never changes with it."""
    return " ".join(name.split()).casefold()


def upgrade() -> None:
    op.create_table(
        "outlets",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("name_key", sa.String(length=200), nullable=False),
        sa.Column("embargo_vetted", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("embargo_breaker", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_outlets")),
        sa.UniqueConstraint("name_key", name=op.f("uq_outlets_name_key")),
    )
    with op.batch_alter_table("contacts", schema=None) as batch_op:
        batch_op.add_column(sa.Column("outlet_id", sa.Integer(), nullable=True))
        batch_op.add_column(
            sa.Column("role", sa.String(length=200), server_default="", nullable=False)
        )
        batch_op.add_column(
            sa.Column("region", sa.String(length=100), server_default="", nullable=False)
        )
        batch_op.add_column(
            sa.Column("country", sa.String(length=2), server_default="", nullable=False)
        )
        batch_op.add_column(
            sa.Column("language", sa.String(length=35), server_default="", nullable=False)
        )
        batch_op.add_column(
            sa.Column(
                "media_type",
                sa.Enum(*MEDIA_TYPES, name="mediatype", native_enum=False, length=16),
                nullable=True,
            )
        )
        batch_op.add_column(
            sa.Column("attributes", sa.JSON(), server_default=sa.text("'{}'"), nullable=False)
        )
        batch_op.add_column(
            sa.Column("source", sa.String(length=200), server_default="", nullable=False)
        )
        batch_op.add_column(
            sa.Column(
                "legal_basis",
                sa.Enum(*LEGAL_BASES, name="legalbasis", native_enum=False, length=24),
                server_default="legitimate_interest",
                nullable=False,
            )
        )
        batch_op.add_column(
            sa.Column("embargo_vetted", sa.Boolean(), server_default=sa.false(), nullable=False)
        )
        batch_op.add_column(
            sa.Column("embargo_breaker", sa.Boolean(), server_default=sa.false(), nullable=False)
        )
        batch_op.add_column(sa.Column("forgotten_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.create_index(batch_op.f("ix_contacts_outlet_id"), ["outlet_id"], unique=False)
        batch_op.create_foreign_key(
            batch_op.f("fk_contacts_outlet_id_outlets"),
            "outlets",
            ["outlet_id"],
            ["id"],
            ondelete="SET NULL",
        )

    _outlet_strings_to_records()

    with op.batch_alter_table("contacts", schema=None) as batch_op:
        batch_op.drop_column("outlet")

    op.create_table(
        "contact_beats",
        sa.Column("contact_id", sa.Integer(), nullable=False),
        sa.Column("beat", sa.String(length=100), nullable=False),
        sa.ForeignKeyConstraint(
            ["contact_id"],
            ["contacts.id"],
            name=op.f("fk_contact_beats_contact_id_contacts"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("contact_id", "beat", name=op.f("pk_contact_beats")),
    )
    with op.batch_alter_table("contact_beats", schema=None) as batch_op:
        batch_op.create_index("ix_contact_beats_beat_contact", ["beat", "contact_id"], unique=False)

    op.create_table(
        "segments",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("filter_text", sa.Text(), nullable=False),
        sa.Column("created_by", sa.String(length=200), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_segments")),
        sa.UniqueConstraint("name", name=op.f("uq_segments_name")),
    )
    op.create_table(
        "send_segments",
        sa.Column("send_id", sa.Integer(), nullable=False),
        sa.Column("segment_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["segment_id"], ["segments.id"], name=op.f("fk_send_segments_segment_id_segments")
        ),
        sa.ForeignKeyConstraint(
            ["send_id"],
            ["sends.id"],
            name=op.f("fk_send_segments_send_id_sends"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("send_id", "segment_id", name=op.f("pk_send_segments")),
    )
    op.create_table(
        "suppressions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("address_hash", sa.String(length=64), nullable=False),
        sa.Column("email_key", sa.String(length=320), nullable=True),
        sa.Column(
            "reason",
            sa.Enum(*SUPPRESSION_REASONS, name="suppressionreason", native_enum=False, length=16),
            nullable=False,
        ),
        sa.Column("source", sa.String(length=200), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("forgotten_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_suppressions")),
        sa.UniqueConstraint("address_hash", name=op.f("uq_suppressions_address_hash")),
        sa.UniqueConstraint("email_key", name=op.f("uq_suppressions_email_key")),
    )
    keys = op.create_table(
        "address_hash_keys",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("key_hex", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_address_hash_keys")),
    )
    op.bulk_insert(
        keys, [{"id": 1, "key_hex": secrets.token_hex(32), "created_at": _now_for_column()}]
    )


def _now_for_column() -> datetime:
    now = datetime.now(UTC)
    # SQLite stores naive UTC (as the models' UTCDateTime does).
    return now.replace(tzinfo=None) if op.get_bind().dialect.name == "sqlite" else now


def _outlet_strings_to_records() -> None:
    """One outlet per case-folded name, spelled as its first contact spelled it."""
    bind = op.get_bind()
    contacts = sa.table(
        "contacts",
        sa.column("id", sa.Integer()),
        sa.column("outlet", sa.String()),
        sa.column("outlet_id", sa.Integer()),
    )
    outlets = sa.table(
        "outlets",
        sa.column("id", sa.Integer()),
        sa.column("name", sa.String()),
        sa.column("name_key", sa.String()),
        sa.column("created_at", sa.DateTime(timezone=True)),
        sa.column("updated_at", sa.DateTime(timezone=True)),
    )
    spellings = bind.execute(
        sa.select(contacts.c.outlet, sa.func.min(contacts.c.id))
        .where(contacts.c.outlet != "")
        .group_by(contacts.c.outlet)
        .order_by(sa.func.min(contacts.c.id))
    ).all()
    first_spelling: dict[str, str] = {}
    for spelling, _ in spellings:
        key = _fold(spelling)
        if key:
            first_spelling.setdefault(key, " ".join(spelling.split()))
    now = _now_for_column()
    for key, name in first_spelling.items():
        bind.execute(
            sa.insert(outlets).values(name=name, name_key=key, created_at=now, updated_at=now)
        )
    ids = dict(bind.execute(sa.select(outlets.c.name_key, outlets.c.id)).all())
    assignments = [
        {"spelling": spelling, "new_outlet_id": ids[_fold(spelling)]}
        for spelling, _ in spellings
        if _fold(spelling)
    ]
    if assignments:
        bind.execute(
            sa.update(contacts)
            .where(contacts.c.outlet == sa.bindparam("spelling"))
            .values(outlet_id=sa.bindparam("new_outlet_id")),
            assignments,
        )


def downgrade() -> None:
    op.drop_table("address_hash_keys")
    op.drop_table("suppressions")
    op.drop_table("send_segments")
    op.drop_table("segments")
    with op.batch_alter_table("contact_beats", schema=None) as batch_op:
        batch_op.drop_index("ix_contact_beats_beat_contact")
    op.drop_table("contact_beats")

    with op.batch_alter_table("contacts", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("outlet", sa.String(length=200), server_default="", nullable=False)
        )
    outlets = sa.table("outlets", sa.column("id", sa.Integer()), sa.column("name", sa.String()))
    contacts = sa.table(
        "contacts", sa.column("outlet", sa.String()), sa.column("outlet_id", sa.Integer())
    )
    op.get_bind().execute(
        sa.update(contacts).values(
            outlet=sa.func.coalesce(
                sa.select(outlets.c.name)
                .where(outlets.c.id == contacts.c.outlet_id)
                .scalar_subquery(),
                "",
            )
        )
    )
    with op.batch_alter_table("contacts", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("fk_contacts_outlet_id_outlets"), type_="foreignkey")
        batch_op.drop_index(batch_op.f("ix_contacts_outlet_id"))
        for column in (
            "forgotten_at",
            "embargo_breaker",
            "embargo_vetted",
            "legal_basis",
            "source",
            "attributes",
            "media_type",
            "language",
            "country",
            "region",
            "role",
            "outlet_id",
        ):
            batch_op.drop_column(column)
        batch_op.alter_column("outlet", server_default=None)
    op.drop_table("outlets")
