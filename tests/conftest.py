"""Fixtures that build real things and clean up after themselves."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import redis

from distributor.contacts_import import ContactRow, ParsedContacts, import_contacts
from distributor.lists import add_to_list, create_list
from distributor.migrate import upgrade
from distributor.processes import ManagedProcess, start_scheduler, start_worker
from distributor.releases import ReleaseDraft, create_release
from distributor.runtime import Runtime
from distributor.settings import Settings
from tests.support.faulty_smtp import FaultySMTPServer
from tests.support.services import fresh_postgres_database
from tests.support.smtp import RecordingSMTPServer


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh, migrated database of each kind."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'test.sqlite3'}"
        upgrade(url)
        yield url
        return
    with fresh_postgres_database() as url:
        upgrade(url)
        yield url


@pytest.fixture
def smtp_server() -> Iterator[RecordingSMTPServer]:
    server = RecordingSMTPServer()
    server.start()
    yield server
    server.stop()


@pytest.fixture
def settings(database_url: str, tmp_path: Path, smtp_server: RecordingSMTPServer) -> Settings:
    return Settings(
        database_url=database_url,
        data_dir=tmp_path / "var",
        smtp_url=smtp_server.url,
        batch_size=20,
        claim_chunk=10,
    )


@pytest.fixture
def runtime(settings: Settings) -> Iterator[Runtime]:
    rt = Runtime(settings)
    yield rt
    rt.close()


def now() -> datetime:
    return datetime.now(UTC)


SAMPLE_DRAFT = ReleaseDraft(
    headline="Charity welcomes report on police response",
    dateline="14th November 2017",
    body="First paragraph of the release.\n\nSecond paragraph, with a “quote”.",
    notes_to_editors="About the charity: it does good work.",
)


@pytest.fixture
def make_audience(runtime: Runtime) -> Callable[..., tuple[int, list[str]]]:
    """Contacts on a list plus a release; returns the release id and the addresses."""

    def make(count: int = 10, *, list_name: str = "Newsdesks") -> tuple[int, list[str]]:
        rows = [
            ContactRow(
                line=i + 2,
                email=f"journalist{i}@news{i % 3}.example.com",
                name=f"Journalist {i}",
                outlet=f"Outlet {i % 3}",
            )
            for i in range(count)
        ]
        with runtime.sessions.begin() as session:
            import_contacts(session, ParsedContacts(rows=rows), now=now())
            create_list(session, list_name, now=now())
            add_to_list(session, list_name, [r.email for r in rows])
            release = create_release(session, SAMPLE_DRAFT, now=now())
        return release.id, [r.email for r in rows]

    return make


@pytest.fixture
def processes(tmp_path: Path) -> Iterator[Callable[..., ManagedProcess]]:
    """Start worker or scheduler processes; every one is stopped after the test."""
    started: list[ManagedProcess] = []

    def start(kind: str, settings: Settings, **options: object) -> ManagedProcess:
        log_dir = tmp_path / "logs"
        name = f"{kind}{len(started)}"
        if kind == "worker":
            process = start_worker(settings, log_dir=log_dir, name=name, **options)  # type: ignore[arg-type]
        else:
            process = start_scheduler(settings, log_dir=log_dir, name=name, **options)  # type: ignore[arg-type]
        started.append(process)
        return process

    yield start
    for process in reversed(started):
        process.stop()


def seconds_from_now(seconds: float) -> datetime:
    return now() + timedelta(seconds=seconds)


# --- for the tests that break things on purpose (test_chaos, test_relay_connections) ---


@pytest.fixture
def relay() -> Iterator[FaultySMTPServer]:
    server = FaultySMTPServer()
    server.start()
    yield server
    server.stop()


@pytest.fixture
def fresh_database() -> Iterator[str]:
    with fresh_postgres_database() as url:
        upgrade(url)
        yield url


@pytest.fixture
def make_runtime() -> Iterator[Callable[[Settings], Runtime]]:
    made: list[Runtime] = []

    def make(settings: Settings) -> Runtime:
        rt = Runtime(settings)
        made.append(rt)
        return rt

    yield make
    for rt in made:
        if rt.settings.broker_url.startswith("redis://127.0.0.1:6379"):
            redis.Redis.from_url(rt.settings.broker_url).delete(rt.settings.queue_name)
        rt.close()
