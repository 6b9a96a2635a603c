"""Engines and sessions. SQLite is tuned so several worker processes can share one file."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, cast

from sqlalchemy import CursorResult, Engine, Result, create_engine, event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError
from sqlalchemy.orm import Session, sessionmaker

from distributor.errors import ConfigurationError

URL_FORMS = "postgresql+psycopg://user@host/database or sqlite:///path/to/file.sqlite3"
# user:password@ in a URL that could not be parsed, to mask before it is shown.
PASSWORD_IN_URL = re.compile(r"(://[^/:@]*:)[^@/]*@")


def _prepare_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy's "begin" event issue BEGIN itself (pysqlite's own is deferred).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        # A deferred transaction that later writes fails at once with SQLITE_BUSY when another
        # process wrote in between; taking the write lock up front makes it wait instead.
        connection.exec_driver_sql("BEGIN IMMEDIATE")


def _shown(url: str) -> str:
    return PASSWORD_IN_URL.sub(r"\1***@", url)


def check_database_url(url: str, *, setting: str = "DISTRIBUTOR_DATABASE_URL") -> URL:
    """The parsed URL, or ConfigurationError naming `setting` and what to write instead.

    Checked when the settings are loaded, so that a mistyped URL is refused before any
    command starts rather than deep inside its first query. A SQLite file must be in a
    folder that exists: creating folders from a mistyped path would hide the mistake.
    """
    try:
        parsed = make_url(url)
        dialect = parsed.get_dialect()
    except ArgumentError as exc:
        raise ConfigurationError(
            f"{setting} {_shown(url)!r} is not a database URL ({exc}); write it as {URL_FORMS}"
        ) from None
    try:
        dialect.import_dbapi()
    except ImportError as exc:
        raise ConfigurationError(
            f"{setting} asks for the database driver {parsed.drivername!r}, which is not "
            f"installed ({exc}); write it as {URL_FORMS}"
        ) from None
    if parsed.get_backend_name() == "sqlite" and _is_sqlite_file(parsed):
        folder = Path(str(parsed.database)).parent
        if not folder.is_dir():
            raise ConfigurationError(
                f"{setting} puts the SQLite file in the folder {str(folder)!r}, which does not "
                "exist: create the folder, correct the path, or leave the setting empty to "
                "keep the database under DISTRIBUTOR_DATA_DIR"
            )
    return parsed


def _is_sqlite_file(parsed: URL) -> bool:
    database = parsed.database or ""
    uri = str(parsed.query.get("uri", "")).lower() in ("true", "1")
    return bool(database) and database != ":memory:" and not uri


def make_engine(url: str, **kwargs: Any) -> Engine:
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"timeout": 30}, **kwargs)
        _prepare_sqlite(engine)
        return engine
    kwargs.setdefault("pool_pre_ping", True)
    return create_engine(url, **kwargs)


def make_session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)


def rows_affected(result: Result[Any]) -> int:
    """How many rows an UPDATE, INSERT or DELETE touched."""
    return int(cast(CursorResult[Any], result).rowcount)
