"""The REST API: JSON in pages, the core's answers field for field, and bad input answered
with a problem (RFC 9457) that names the field, never a 500."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from fastapi.testclient import TestClient

from distributor.accounts.tokens import create_api_token
from distributor.acting import acting_info
from distributor.actors import Actor, Role
from distributor.runtime import Runtime
from distributor.web.problems import PROBLEM_MEDIA_TYPE
from tests.support.web import (
    PEOPLE,
    client_fixture,  # noqa: F401 - fixture
    log_in,
    people_fixture,  # noqa: F401 - fixture
    release_awaiting_approval,
    web_runtime_fixture,  # noqa: F401 - fixture
)

APPROVER = PEOPLE[Role.APPROVER]


@pytest.fixture
def bearer(web_runtime: Runtime, people: dict[Role, str]) -> dict[str, str]:
    admin = Actor("tests", Role.ADMIN)
    with web_runtime.sessions(info=acting_info(admin)) as session, session.begin():
        token = create_api_token(session, email=APPROVER, now=datetime.now(UTC)).secret
    return {"Authorization": f"Bearer {token}"}


def problem_of(response: Any, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM_MEDIA_TYPE
    body: dict[str, Any] = response.json()
    assert body["status"] == status and body["title"] and body["detail"]
    return body


def test_releases_come_in_pages_newest_first(
    client: TestClient, web_runtime: Runtime, bearer: dict[str, str]
) -> None:
    ids = [release_awaiting_approval(web_runtime, headline=f"Release {n}") for n in range(3)]
    first = client.get("/api/v1/releases?per_page=2", headers=bearer).json()
    assert [r["release_id"] for r in first["items"]] == ids[::-1][:2]
    assert (first["page"], first["per_page"], first["total"], first["pages"]) == (1, 2, 3, 2)
    second = client.get("/api/v1/releases?per_page=2&page=2", headers=bearer).json()
    assert [r["release_id"] for r in second["items"]] == [ids[0]]
    past_the_end = client.get("/api/v1/releases?per_page=2&page=9", headers=bearer)
    assert past_the_end.status_code == 200 and past_the_end.json()["items"] == []

    (summary,) = [r for r in first["items"] if r["release_id"] == ids[2]]
    assert summary["headline"] == "Release 2"
    assert (summary["sent"], summary["recipients"], summary["sends"]) == (0, 2, 1)
    assert summary["embargo_zone"] == "Europe/London"
    assert summary["embargo_at"].endswith("Z") or "+00:00" in summary["embargo_at"]


def test_a_release_and_a_send_read_as_the_cli_shows_them(
    client: TestClient, web_runtime: Runtime, bearer: dict[str, str]
) -> None:
    release_id = release_awaiting_approval(web_runtime)
    release = client.get(f"/api/v1/releases/{release_id}", headers=bearer).json()
    assert release["headline"] == "Charity opens three new refuges"
    assert release["organisation"] == "SafeLives"
    (send,) = release["send_statuses"]
    assert send["state"] == "awaiting_approval" and send["counts"] == {"pending": 2}

    status = client.get(f"/api/v1/sends/{send['send_id']}", headers=bearer).json()
    assert status["release_id"] == release_id and status["total"] == 2
    assert status["scheduled_by"] == f"{PEOPLE[Role.PRESS_OFFICER]} (press_officer)"
    assert status["phases"] == []


def test_approving_twice_is_a_conflict_and_approving_ones_own_is_forbidden(
    client: TestClient, web_runtime: Runtime, bearer: dict[str, str]
) -> None:
    release_id = release_awaiting_approval(web_runtime)
    done = client.post(f"/api/v1/releases/{release_id}/approve", headers=bearer)
    assert done.status_code == 200 and done.json() == {
        "release_id": release_id,
        "version": 1,
        "send_ids": [1],
    }
    again = problem_of(client.post(f"/api/v1/releases/{release_id}/approve", headers=bearer), 409)
    assert again["detail"] == f"release {release_id} has no send awaiting approval"

    own = release_awaiting_approval(web_runtime, scheduled_by=APPROVER)
    refused = problem_of(client.post(f"/api/v1/releases/{own}/approve", headers=bearer), 403)
    assert "another person must approve it" in refused["detail"]


@pytest.mark.parametrize(
    ("method", "path", "options", "field", "status"),
    [
        ("GET", "/api/v1/releases?page=0", {}, "page", 422),
        ("GET", "/api/v1/releases?page=abc", {}, "page", 422),
        ("GET", "/api/v1/releases?per_page=101", {}, "per_page", 422),
        ("GET", "/api/v1/releases?page=99999999999999999999", {}, "page", 422),
        ("GET", "/api/v1/releases/abc", {}, "release_id", 422),
        ("GET", "/api/v1/releases/0", {}, "release_id", 422),
        ("GET", "/api/v1/releases/99999999999999999999999", {}, "release_id", 422),
        ("GET", "/api/v1/sends/-1", {}, "send_id", 422),
        ("POST", "/api/v1/releases/1/approve", {"json": {"note": 5}}, "#/note", 422),
        ("POST", "/api/v1/releases/1/approve", {"json": {"note": "x" * 2001}}, "#/note", 422),
        ("POST", "/api/v1/releases/1/approve", {"json": [1]}, "#", 422),
        (
            "POST",
            "/api/v1/releases/1/approve",
            {"content": b"{not json", "headers": {"Content-Type": "application/json"}},
            "#",
            422,
        ),
        # NUL, which PostgreSQL's text cannot hold, refused on either database
        ("POST", "/api/v1/releases", {"json": {"headline": "H", "body": "B\u0000"}}, "#/body", 422),
        (
            "POST",
            "/api/v1/suppressions",
            {"json": {"email": "a@b.example", "note": "\u0000"}},
            "#/note",
            422,
        ),
        (
            "POST",
            "/api/v1/lists/X/members",
            {"json": {"emails": ["a\u0000@b.example"]}},
            "#/emails",
            422,
        ),
        ("GET", "/api/v1/releases/2147483648", {}, "release_id", 422),  # past the column
        ("GET", "/api/v1/releases/2147483647", {}, None, 404),
        ("GET", "/api/v1/sends/424242", {}, None, 404),
        ("GET", "/api/v1/nothing-here", {}, None, 404),
        ("DELETE", "/api/v1/releases", {}, None, 405),
    ],
)
def test_bad_input_is_a_problem_naming_the_field(
    client: TestClient,
    bearer: dict[str, str],
    method: str,
    path: str,
    options: dict[str, Any],
    field: str | None,
    status: int,
) -> None:
    headers = {**bearer, **options.pop("headers", {})}
    body = problem_of(client.request(method, path, headers=headers, **options), status)
    if field is not None:
        named = [e.get("parameter") or e.get("pointer") for e in body["errors"]]
        assert field in named, body
        assert field.removeprefix("#").removeprefix("/") in body["detail"] or field == "#"


@pytest.mark.parametrize(
    ("path", "status", "words"),
    [
        ("/releases?page=abc", 400, "page: "),
        ("/releases?per_page=0", 400, "per_page: "),
        ("/releases/abc", 400, "release_id: "),
        ("/releases/99999999999999999999999", 400, "release_id: "),
        ("/releases/2147483648", 400, "release_id: "),
        ("/releases/4242", 404, "no release with id 4242"),
        ("/nothing-here", 404, "nothing is at /nothing-here"),
    ],
)
def test_bad_input_to_a_page_is_a_page_saying_what_was_wrong(
    client: TestClient, people: dict[Role, str], path: str, status: int, words: str
) -> None:
    log_in(client, APPROVER)
    response = client.get(path)
    assert response.status_code == status
    assert response.headers["content-type"].startswith("text/html")
    assert words in response.text


def test_the_openapi_schema_documents_the_api_and_its_problems(client: TestClient) -> None:
    schema = client.get("/api/v1/openapi.json").json()
    operations = {
        f"{method.upper()} {path.removeprefix('/api/v1')}"
        for path, methods in schema["paths"].items()
        for method in methods
    }
    assert operations == {
        "GET /me",
        "GET /releases",
        "POST /releases",
        "GET /releases/{release_id}",
        "PATCH /releases/{release_id}",
        "POST /releases/{release_id}/approve",
        "POST /releases/{release_id}/schedule",
        "POST /releases/{release_id}/move",
        "POST /releases/{release_id}/lift",
        "POST /releases/{release_id}/cancel",
        "GET /sends",
        "GET /sends/{send_id}",
        "GET /sends/{send_id}/deliveries",
        "POST /sends/{send_id}/retry",
        "POST /sends/{send_id}/pause",
        "POST /sends/{send_id}/resume",
        "GET /contacts",
        "GET /contacts/{email}",
        "POST /contacts/import",
        "GET /outlets",
        "GET /lists",
        "POST /lists",
        "GET /lists/{name}/members",
        "POST /lists/{name}/members",
        "POST /lists/{name}/members/remove",
        "DELETE /lists/{name}",
        "GET /segments",
        "POST /segments",
        "GET /segments/preview",
        "DELETE /segments/{name}",
        "GET /suppressions",
        "POST /suppressions",
        "DELETE /suppressions/{email}",
    }
    problem = {PROBLEM_MEDIA_TYPE: {"schema": {"$ref": "#/components/schemas/Problem"}}}
    for path, methods in schema["paths"].items():
        for method, operation in methods.items():
            for status in ("401", "403", "404", "409", "422"):
                assert operation["responses"][status]["content"] == problem, (method, path)
    # The interactive docs would load scripts from elsewhere; they are not served.
    assert client.get("/docs").status_code == 404
