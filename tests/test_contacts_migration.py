"""Migration 0002 on a database holding data: outlet strings become outlets, and back again."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Engine, inspect, text

from distributor.database import make_engine
from distributor.migrate import alembic_config
from distributor.models import Base
from tests.support.services import fresh_postgres_database

MY_TABLES = {
    "contacts",
    "outlets",
    "contact_beats",
    "segments",
    "send_segments",
    "suppressions",
    "address_hash_keys",
}


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def empty_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'migrate.sqlite3'}"
        return
    with fresh_postgres_database() as url:
        yield url


def rows(engine: Engine, sql: str) -> list[tuple[Any, ...]]:
    with engine.connect() as connection:
        return [tuple(r) for r in connection.execute(text(sql))]


def _table_of(diff: Any) -> str | None:
    if isinstance(diff, list):  # column modifications come grouped
        return _table_of(diff[0])
    for item in diff[1:]:
        name = getattr(item, "name", None) if not isinstance(item, str) else None
        table = getattr(item, "table", None)
        if table is not None:
            return str(table.name)
        if hasattr(item, "columns") and name:
            return str(name)
    return str(diff[2]) if len(diff) > 2 and isinstance(diff[2], str) else None


def test_upgrade_keeps_every_contact_and_downgrade_restores_the_outlets(empty_url: str) -> None:
    config = alembic_config(empty_url)
    command.upgrade(config, "0001")
    engine = make_engine(empty_url)
    try:
        with engine.begin() as connection:
            for index, outlet in enumerate(["Daily Example", "daily  EXAMPLE", "", "Süddeutsche"]):
                connection.execute(
                    text(
                        "INSERT INTO contacts (email, email_key, name, outlet, created_at,"
                        " updated_at) VALUES (:e, :e, :n, :o, :t, :t)"
                    ),
                    {
                        "e": f"j{index}@example.com",
                        "n": f"J {index}",
                        "o": outlet,
                        "t": "2026-01-01",
                    },
                )
            connection.execute(
                text("INSERT INTO media_lists (name, created_at) VALUES ('All', '2026-01-01')")
            )
            connection.execute(text("INSERT INTO list_memberships SELECT 1, id FROM contacts"))

        command.upgrade(config, "0002")
        assert rows(engine, "SELECT name, name_key FROM outlets ORDER BY id") == [
            ("Daily Example", "daily example"),
            ("Süddeutsche", "süddeutsche"),
        ]
        assert rows(
            engine,
            "SELECT c.email, o.name, c.legal_basis, c.country FROM contacts c"
            " LEFT JOIN outlets o ON o.id = c.outlet_id ORDER BY c.email",
        ) == [
            ("j0@example.com", "Daily Example", "legitimate_interest", ""),
            ("j1@example.com", "Daily Example", "legitimate_interest", ""),
            ("j2@example.com", None, "legitimate_interest", ""),
            ("j3@example.com", "Süddeutsche", "legitimate_interest", ""),
        ]
        assert rows(engine, "SELECT count(*) FROM list_memberships") == [(4,)]
        ((key_hex,),) = rows(engine, "SELECT key_hex FROM address_hash_keys")
        assert len(bytes.fromhex(key_hex)) == 32

        # The migration creates what the models describe, for the tables it owns.
        with engine.connect() as connection:
            differences = compare_metadata(MigrationContext.configure(connection), Base.metadata)
        mine = [d for d in differences if _table_of(d) in MY_TABLES]
        assert mine == []

        command.downgrade(config, "0001")
        assert rows(engine, "SELECT email, outlet FROM contacts ORDER BY email") == [
            ("j0@example.com", "Daily Example"),
            ("j1@example.com", "Daily Example"),
            ("j2@example.com", ""),
            ("j3@example.com", "Süddeutsche"),
        ]
        tables = set(inspect(engine).get_table_names())
        assert not tables & (MY_TABLES - {"contacts"})
        assert "outlet_id" not in {c["name"] for c in inspect(engine).get_columns("contacts")}
    finally:
        engine.dispose()
