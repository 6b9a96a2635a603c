"""Contacts through the API: a file imported only when every row is good (its problems named
by line otherwise, and nothing stored), contacts found a page at a time, one read in full,
and the outlets, against the real database (SQLite and PostgreSQL)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from distributor.actors import Role
from distributor.models import AuditEntry, Contact
from distributor.runtime import Runtime
from tests.support.web import (
    PEOPLE,
    bearer_for,
    blamed,
    client_fixture,  # noqa: F401 - fixture
    people_fixture,  # noqa: F401 - fixture
    problem_of,
    web_runtime_fixture,  # noqa: F401 - fixture
)

OFFICER = PEOPLE[Role.PRESS_OFFICER]
GOOD_CSV = (
    "email,name,outlet,beats,country\n"
    "ann.archer@times.example.com,Ann Archer,The Times,crime;courts,GB\n"
    "bob@post.example.com,Bob Baker,Morning Post,health,IE\n"
    "carla@post.example.com,Carla Cole,Morning Post,crime,GB\n"
)
BAD_CSV = (
    "email,name,outlet,beats,country\n"
    "ann.archer@times.example.com,Ann Archer,The Times,crime;courts,GB\n"
    "not an address,Bad Row,The Times,crime,GB\n"
    "bob@post.example.com,Bob Baker,Morning Post,health,IE\n"
    "carla@post.example.com,Carla Cole,Morning Post,crime,Great Britain\n"
)


@pytest.fixture
def officer(web_runtime: Runtime, people: dict[Role, str]) -> dict[str, str]:
    return bearer_for(web_runtime, OFFICER)


def contact_count(runtime: Runtime) -> int:
    with runtime.sessions() as session:
        return session.scalar(select(func.count()).select_from(Contact)) or 0


def import_file(
    client: TestClient, headers: dict[str, str], name: str, content: str | bytes, **query: Any
) -> Any:
    data = content.encode() if isinstance(content, str) else content
    return client.post(
        "/api/v1/contacts/import",
        params=query,
        files={"file": (name, data, "application/octet-stream")},
        headers=headers,
    )


def test_a_file_with_bad_rows_is_refused_by_line_and_stores_nothing(
    client: TestClient, web_runtime: Runtime, officer: dict[str, str]
) -> None:
    body = problem_of(import_file(client, officer, "journalists.csv", BAD_CSV), 422)

    assert body["detail"].startswith("2 problem(s) in the file; nothing was imported")
    assert "skip_invalid=true" in body["detail"]
    assert [(e["pointer"], e["line"]) for e in body["errors"]] == [("#/file", 3), ("#/file", 5)]
    assert "not an address" in body["errors"][0]["detail"]
    assert "Great Britain" in body["errors"][1]["detail"]
    assert contact_count(web_runtime) == 0


def test_a_dry_run_counts_and_skip_invalid_imports_the_good_rows(
    client: TestClient, web_runtime: Runtime, officer: dict[str, str]
) -> None:
    checked = import_file(
        client, officer, "journalists.csv", BAD_CSV, dry_run=True, skip_invalid=True
    )
    assert checked.status_code == 200, checked.text
    report = checked.json()
    assert (report["created"], report["updated"], report["dry_run"]) == (2, 0, True)
    assert [p["line"] for p in report["skipped"]] == [3, 5] and report["skipped_total"] == 2
    assert report["read_as"].startswith("CSV")
    assert contact_count(web_runtime) == 0

    done = import_file(client, officer, "journalists.csv", BAD_CSV, skip_invalid=True)
    assert done.status_code == 200 and done.json()["created"] == 2
    assert contact_count(web_runtime) == 2

    records = [
        {"email": "bob@post.example.com", "name": "Bob Baker", "role": "Health editor"},
        {"email": "eve@radio.example.com", "name": "Eve Evans", "outlet": "Radio North"},
    ]
    again = import_file(client, officer, "more.json", json.dumps(records))
    assert again.status_code == 200 and (again.json()["created"], again.json()["updated"]) == (1, 1)
    with web_runtime.sessions() as session:
        actors = session.scalars(
            select(AuditEntry.actor).where(AuditEntry.action == "contacts.imported")
        ).all()
    assert actors == [OFFICER, OFFICER], "the audit trail names the caller"


@pytest.mark.parametrize(
    ("name", "content", "query", "named"),
    [
        ("book.xlsx", b"PK\x03\x04rest", {}, "#/file"),
        ("contacts.csv", b"\xff\xfee\x00m\x00", {}, "#/file"),
        ("contacts.csv", "mail,who\nx,y\n", {}, "#/file"),
        ("contacts.csv", GOOD_CSV, {"delimiter": "ab"}, "delimiter"),
        ("contacts.csv", GOOD_CSV, {"format": "xml"}, "format"),
        ("contacts.csv", GOOD_CSV, {"legal_basis": "whim"}, "legal_basis"),
        ("contacts.csv", GOOD_CSV, {"dry_run": "perhaps"}, "dry_run"),
    ],
)
def test_a_file_that_cannot_be_read_is_a_problem_naming_the_field(
    client: TestClient,
    web_runtime: Runtime,
    officer: dict[str, str],
    name: str,
    content: str | bytes,
    query: dict[str, str],
    named: str,
) -> None:
    body = problem_of(import_file(client, officer, name, content, **query), 422)
    assert named in blamed(body)
    assert contact_count(web_runtime) == 0


def test_an_import_without_a_file_or_by_a_viewer_is_refused(
    client: TestClient, web_runtime: Runtime, officer: dict[str, str]
) -> None:
    missing = problem_of(client.post("/api/v1/contacts/import", headers=officer), 422)
    assert "#/file" in blamed(missing)
    viewer = bearer_for(web_runtime, PEOPLE[Role.VIEWER])
    refused = problem_of(import_file(client, viewer, "a.csv", GOOD_CSV), 403)
    assert "only a press officer, an approver or an admin may do this" in refused["detail"]
    assert contact_count(web_runtime) == 0


def test_contacts_are_found_a_page_at_a_time_and_read_in_full(
    client: TestClient, web_runtime: Runtime, officer: dict[str, str]
) -> None:
    assert import_file(client, officer, "journalists.csv", GOOD_CSV).status_code == 200
    viewer = bearer_for(web_runtime, PEOPLE[Role.VIEWER])

    everyone = client.get("/api/v1/contacts?per_page=2", headers=viewer).json()
    assert [c["email"] for c in everyone["items"]] == [
        "ann.archer@times.example.com",
        "bob@post.example.com",
    ]
    assert (everyone["total"], everyone["pages"]) == (3, 2)
    found = client.get("/api/v1/contacts", params={"q": "post"}, headers=viewer).json()
    assert [c["name"] for c in found["items"]] == ["Bob Baker", "Carla Cole"]
    crime = client.get(
        "/api/v1/contacts", params={"q": "post", "matching": 'beat = "crime"'}, headers=viewer
    ).json()
    assert [c["email"] for c in crime["items"]] == ["carla@post.example.com"]
    assert crime["items"][0] == {
        "email": "carla@post.example.com",
        "name": "Carla Cole",
        "outlet": "Morning Post",
        "role": "",
        "country": "GB",
        "suppressed": False,
    }

    bad = problem_of(
        client.get("/api/v1/contacts", params={"matching": "beat ="}, headers=viewer), 422
    )
    assert blamed(bad) == ["matching"] and "at character" in bad["detail"]

    ann = client.get("/api/v1/contacts/Ann.Archer@times.example.com", headers=viewer)
    assert ann.status_code == 200, ann.text
    detail = ann.json()
    assert detail["name"] == "Ann Archer" and detail["beats"] == ["courts", "crime"]
    assert detail["outlet"]["name"] == "The Times" and detail["suppression"] is None
    assert detail["deliveries"] == [] and detail["lists"] == []
    missing = problem_of(client.get("/api/v1/contacts/nobody@example.com", headers=viewer), 404)
    assert "nobody@example.com" in missing["detail"]

    outlets = client.get("/api/v1/outlets", params={"q": "post"}, headers=viewer).json()
    assert outlets["items"] == [
        {
            "name": "Morning Post",
            "journalists": 2,
            "embargo_vetted": False,
            "embargo_breaker": False,
        }
    ]
