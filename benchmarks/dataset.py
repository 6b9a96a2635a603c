"""The data every run uses: a fresh PostgreSQL database, N contacts on two overlapping media
lists loaded with set-based SQL (the per-row importer is measured separately, in
components.py), and the sample release from demo/."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime

import psycopg
from sqlalchemy import Engine, inspect, text
from sqlalchemy.engine import make_url

from benchmarks.children import REPO_ROOT
from distributor.database import make_engine, make_session_factory
from distributor.lists import create_list
from distributor.migrate import upgrade
from distributor.releases import create_release, parse_release_text

# Every contact is on one list or both; the union is every contact exactly once.
LIST_NAMES = ("National news desks", "Crime and policing")
SAMPLE_RELEASE = REPO_ROOT / "demo" / "safelives-police-response-2017-11-14.txt"
FIRST_NAMES = ["Amira", "Ben", "Chloe", "Dev", "Eilidh", "Femi", "Grace", "Hamza", "Iona", "Jack"]
LAST_NAMES = ["Adeyemi", "Brown", "Campbell", "Davies", "Evans", "Fraser", "Gill", "Hughes"]
OUTLETS = [
    ("Daily Example", "dailyexample.co.uk"),
    ("Example Broadcasting", "broadcast.example.org"),
    ("Northern Courier", "northerncourier.example.com"),
    ("Policy Weekly", "policyweekly.example.net"),
    ("Wire Agency", "wire.example.com"),
]


@dataclass(frozen=True, slots=True)
class Dataset:
    url: str  # SQLAlchemy URL of the database
    contacts: int
    list_names: tuple[str, ...]
    release_id: int


def sqlalchemy_url(admin_url: str, database: str) -> str:
    """The SQLAlchemy (psycopg 3) URL of `database` on the server of a libpq admin URL."""
    url = make_url(admin_url).set(drivername="postgresql+psycopg", database=database)
    return url.render_as_string(hide_password=False)


def libpq_url(admin_url: str) -> str:
    return make_url(admin_url).set(drivername="postgresql").render_as_string(hide_password=False)


@contextmanager
def fresh_database(admin_url: str, *, keep: bool = False) -> Iterator[str]:
    """Create an empty database, yield its SQLAlchemy URL, drop it afterwards."""
    name = f"distributor_bench_{uuid.uuid4().hex[:12]}"
    admin = libpq_url(admin_url)
    with psycopg.connect(admin, autocommit=True) as connection:
        connection.execute(f'CREATE DATABASE "{name}"')
    try:
        yield sqlalchemy_url(admin_url, name)
    finally:
        if not keep:
            with psycopg.connect(admin, autocommit=True) as connection:
                connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


CONTACTS_SQL = """
    WITH people AS (
        SELECT g,
               (CAST(:firsts AS text[]))[1 + g % cardinality(CAST(:firsts AS text[]))] AS first,
               (CAST(:lasts AS text[]))[1 + (g / 10) % cardinality(CAST(:lasts AS text[]))]
                   AS last,
               (CAST(:outlets AS text[]))[1 + g % cardinality(CAST(:outlets AS text[]))]
                   AS outlet,
               (CAST(:domains AS text[]))[1 + g % cardinality(CAST(:domains AS text[]))]
                   AS domain
        FROM generate_series(1, :count) AS g
    )
    INSERT INTO contacts (email, email_key, name, {outlet_column}, created_at, updated_at)
    SELECT lower(first || '.' || last || '.' || g || '@' || domain),
           lower(first || '.' || last || '.' || g || '@' || domain),
           first || ' ' || last, {outlet_value}, :now, :now
    FROM people ORDER BY g
"""


def load_contacts(engine: Engine, count: int, *, now: datetime) -> None:
    """`count` contacts in one INSERT ... SELECT over generate_series, demo-style names.

    The outlet is a text column on contacts in the first schema and a row in `outlets`
    referred to by `outlet_id` later; both are handled, so older checkouts can be compared.
    """
    columns = {column["name"] for column in inspect(engine).get_columns("contacts")}
    outlets = [outlet for outlet, _ in OUTLETS]
    if "outlet" in columns:
        statement = CONTACTS_SQL.format(outlet_column="outlet", outlet_value="outlet")
    else:
        statement = CONTACTS_SQL.format(
            outlet_column="outlet_id",
            outlet_value="(SELECT id FROM outlets WHERE outlets.name_key = lower(outlet))",
        )
    with engine.begin() as connection:
        if "outlet" not in columns:
            connection.execute(
                text(
                    "INSERT INTO outlets (name, name_key, created_at, updated_at) "
                    "SELECT name, lower(name), :now, :now FROM unnest(CAST(:names AS text[])) "
                    "AS name"
                ),
                {"names": outlets, "now": now},
            )
        connection.execute(
            text(statement),
            {
                "count": count,
                "now": now,
                "firsts": FIRST_NAMES,
                "lasts": LAST_NAMES,
                "outlets": outlets,
                "domains": [domain for _, domain in OUTLETS],
            },
        )


def fill_lists(engine: Engine, count: int, *, now: datetime) -> None:
    """The first 60 % on the first list, the last 60 % on the second: 20 % are on both."""
    sessions = make_session_factory(engine)
    with sessions.begin() as session:
        ids = [create_list(session, name, now=now).id for name in LIST_NAMES]
    ranges = ((ids[0], 1, count * 3 // 5), (ids[1], count * 2 // 5 + 1, count))
    statement = text(
        """
        INSERT INTO list_memberships (list_id, contact_id)
        SELECT :list_id, id FROM (
            SELECT id, row_number() OVER (ORDER BY id) AS position FROM contacts
        ) AS numbered
        WHERE position BETWEEN :first AND :last
        """
    )
    with engine.begin() as connection:
        for list_id, first, last in ranges:
            connection.execute(statement, {"list_id": list_id, "first": first, "last": last})


def add_sample_release(engine: Engine, *, now: datetime) -> int:
    draft = parse_release_text(SAMPLE_RELEASE.read_text(encoding="utf-8"))
    sessions = make_session_factory(engine)
    with sessions.begin() as session:
        return create_release(session, draft, now=now).id


def prepare(url: str, contacts: int) -> Dataset:
    """Migrate the empty database at `url` and fill it for a release to `contacts` people."""
    upgrade(url)
    now = datetime.now(UTC)
    engine = make_engine(url)
    try:
        load_contacts(engine, contacts, now=now)
        fill_lists(engine, contacts, now=now)
        release_id = add_sample_release(engine, now=now)
        # As if the contacts had been there a while: planner statistics for the tables that
        # exist before a send. The deliveries a send creates get none, exactly as in real use.
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            connection.execute(text("ANALYZE"))
    finally:
        engine.dispose()
    return Dataset(url=url, contacts=contacts, list_names=LIST_NAMES, release_id=release_id)
