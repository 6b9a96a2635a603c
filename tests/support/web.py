"""The web app under test: a runtime on a real database, accounts of each role, a release
awaiting approval, and the forms' CSRF tokens read from the pages as a browser would."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from argon2 import PasswordHasher
from fastapi.testclient import TestClient
from sqlalchemy import exists, select

from distributor.accounts import passwords
from distributor.accounts.tokens import create_api_token
from distributor.accounts.users import create_user
from distributor.acting import acting_info
from distributor.actors import Actor, Role
from distributor.contacts_import import ContactRow, ParsedContacts, import_contacts
from distributor.lists import add_to_list, create_list
from distributor.models import MediaList
from distributor.organisations import save_organisation
from distributor.releases import ReleaseDraft, create_release
from distributor.runtime import Runtime
from distributor.scheduling import schedule_send
from distributor.settings import Settings
from distributor.web.app import create_app
from distributor.web.problems import PROBLEM_MEDIA_TYPE

SECRET = "a-long-random-secret-key-for-the-web-tests"
PASSWORD = "correct horse battery staple"
PEOPLE = {
    Role.VIEWER: "vera@example.org",
    Role.PRESS_OFFICER: "pat@example.org",
    Role.APPROVER: "ada@example.org",
    Role.ADMIN: "adam@example.org",
}
CSRF_INPUT = re.compile(r'name="csrf_token" value="([^"]+)"')


def web_settings(database_url: str, tmp_path: Path, **overrides: object) -> Settings:
    return Settings(
        database_url=database_url,
        data_dir=tmp_path / "var",
        secret_key=SECRET,
        **overrides,  # type: ignore[arg-type]
    )


# Named fixtures, so that a test module imports them (by these function names) without its
# parameters shadowing an import.
@pytest.fixture(name="web_runtime")
def web_runtime_fixture(
    database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Runtime]:
    # Argon2 at its production cost takes a sixth of a second a hash; the tests log in often
    # and test who may log in, not how slowly. (`distributor users` in a subprocess, and
    # the browser test, hash at the production cost.)
    monkeypatch.setattr(passwords, "_hasher", PasswordHasher(time_cost=1, memory_cost=1024))
    rt = Runtime(web_settings(database_url, tmp_path))
    yield rt
    rt.close()


@pytest.fixture(name="people")
def people_fixture(web_runtime: Runtime) -> dict[Role, str]:
    """One account of each role, all with PASSWORD."""
    for role, email in PEOPLE.items():
        add_account(web_runtime, email, role)
    return dict(PEOPLE)


@pytest.fixture(name="client")
def client_fixture(web_runtime: Runtime) -> Iterator[TestClient]:
    with TestClient(create_app(web_runtime), follow_redirects=False) as test_client:
        yield test_client


def add_account(runtime: Runtime, email: str, role: Role, password: str = PASSWORD) -> None:
    admin = Actor("tests", Role.ADMIN)
    with runtime.sessions(info=acting_info(admin)) as session, session.begin():
        create_user(session, email=email, role=role, password=password, now=now())


def now() -> datetime:
    return datetime.now(UTC)


def csrf_in(html: str) -> str:
    found = CSRF_INPUT.search(html)
    assert found, "the page has no form with a CSRF token"
    return found.group(1)


def log_in(client: TestClient, email: str, password: str = PASSWORD) -> str:
    """Log in through the form; returns the CSRF token of the logged-in pages."""
    token = csrf_in(client.get("/login").text)
    response = client.post(
        "/login", data={"email": email, "password": password, "csrf_token": token}
    )
    assert response.status_code == 303, response.text
    return csrf_in(client.get("/releases").text)


def release_awaiting_approval(
    runtime: Runtime, *, scheduled_by: str = PEOPLE[Role.PRESS_OFFICER], headline: str = ""
) -> int:
    """A release of an organisation that requires approval, scheduled by a press officer
    for tomorrow: its send awaits another person's approval."""
    officer = Actor(scheduled_by, Role.PRESS_OFFICER)
    moment = now()
    with runtime.sessions(info=acting_info(officer)) as session, session.begin():
        save_organisation(session, name="SafeLives", now=moment, require_approval=True)
        if not session.scalar(select(exists().where(MediaList.name == "Newsdesks"))):
            rows = [
                ContactRow(line=2, email="ann@news.example.com", name="Ann", outlet="Times"),
                ContactRow(line=3, email="bob@news.example.com", name="Bob", outlet="Post"),
            ]
            import_contacts(session, ParsedContacts(rows=rows), now=moment)
            create_list(session, "Newsdesks", now=moment)
            add_to_list(session, "Newsdesks", [r.email for r in rows])
        release = create_release(
            session,
            ReleaseDraft(
                headline=headline or "Charity opens three new refuges",
                dateline="Leeds",
                body="The charity today opened three new refuges.",
                notes_to_editors="",
                organisation="SafeLives",
            ),
            now=moment,
        )
        schedule_send(
            session,
            release_id=release.id,
            list_names=["Newsdesks"],
            embargo_at=moment + timedelta(days=1),
            embargo_zone="Europe/London",
            now=moment,
            batch_size=100,
        )
        return release.id


def bearer_for(runtime: Runtime, email: str) -> dict[str, str]:
    """The Authorization header of a new API token of the account `email`."""
    admin = Actor("tests", Role.ADMIN)
    with runtime.sessions(info=acting_info(admin)) as session, session.begin():
        secret = create_api_token(session, email=email, now=now()).secret
    return {"Authorization": f"Bearer {secret}"}


def problem_of(response: Any, status: int) -> dict[str, Any]:
    """The problem details (RFC 9457) of an API response with that status."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM_MEDIA_TYPE
    body: dict[str, Any] = response.json()
    assert body["status"] == status and body["title"] and body["detail"]
    return body


def blamed(problem: dict[str, Any]) -> list[str]:
    """What each error of a problem names: its pointer into the body, or its parameter."""
    return [e.get("pointer") or e.get("parameter") for e in problem.get("errors", [])]
