"""Media lists and segments through the API: created, filled, read a page at a time and
deleted by press officers, read by viewers, each refusal a problem naming the field, and the
audit trail naming the caller, against the real database (SQLite and PostgreSQL)."""

from __future__ import annotations

from urllib.parse import quote

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from distributor.actors import Role
from distributor.models import AuditEntry
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
LIST = "Crime/policing desks"
LIST_PATH = f"/api/v1/lists/{quote(LIST, safe='')}"
CONTACTS_CSV = (
    "email,name,outlet,beats\n"
    "ann@times.example.com,Ann,Times,crime\n"
    "bob@post.example.com,Bob,Post,health\n"
    "cy@post.example.com,Cy,Post,crime\n"
)


@pytest.fixture
def officer(client: TestClient, web_runtime: Runtime, people: dict[Role, str]) -> dict[str, str]:
    """A press officer's token, after importing three journalists."""
    headers = bearer_for(web_runtime, OFFICER)
    imported = client.post(
        "/api/v1/contacts/import",
        files={"file": ("journalists.csv", CONTACTS_CSV.encode(), "text/csv")},
        headers=headers,
    )
    assert imported.status_code == 200, imported.text
    return headers


def audit_actors(runtime: Runtime, prefix: str) -> list[tuple[str, str]]:
    with runtime.sessions() as session:
        return [
            (action, actor)
            for action, actor in session.execute(
                select(AuditEntry.action, AuditEntry.actor)
                .where(AuditEntry.action.startswith(prefix))
                .order_by(AuditEntry.id)
            )
        ]


def test_a_list_is_created_filled_read_and_deleted(
    client: TestClient, web_runtime: Runtime, officer: dict[str, str]
) -> None:
    created = client.post("/api/v1/lists", json={"name": LIST}, headers=officer)
    assert created.status_code == 201 and created.json() == {"name": LIST, "contacts": 0}

    added = client.post(
        f"{LIST_PATH}/members", json={"emails": ["Ann@Times.example.com"]}, headers=officer
    )
    assert added.status_code == 200 and added.json() == {"list": LIST, "added": 1}
    by_filter = client.post(
        f"{LIST_PATH}/members", json={"matching": 'beat = "crime"'}, headers=officer
    )
    assert by_filter.json()["added"] == 1, "Ann was on it already; Cy is added"

    viewer = bearer_for(web_runtime, PEOPLE[Role.VIEWER])
    page = client.get(f"{LIST_PATH}/members?per_page=1", headers=viewer).json()
    assert page["items"] == [{"email": "ann@times.example.com", "name": "Ann"}]
    assert (page["total"], page["pages"]) == (2, 2)
    lists = client.get("/api/v1/lists", headers=viewer).json()
    assert lists["items"] == [{"name": LIST, "contacts": 2}]

    removed = client.post(
        f"{LIST_PATH}/members/remove", json={"emails": ["cy@post.example.com"]}, headers=officer
    )
    assert removed.json() == {"list": LIST, "removed": 1}
    deleted = client.delete(LIST_PATH, headers=officer)
    assert deleted.status_code == 204 and deleted.content == b""
    problem_of(client.delete(LIST_PATH, headers=officer), 404)
    assert client.get("/api/v1/lists", headers=viewer).json()["items"] == []
    assert audit_actors(web_runtime, "list.") == [
        ("list.created", OFFICER),
        ("list.members_added", OFFICER),
        ("list.members_added", OFFICER),
        ("list.members_removed", OFFICER),
        ("list.deleted", OFFICER),
    ]


def test_list_refusals_name_the_field(
    client: TestClient, web_runtime: Runtime, officer: dict[str, str]
) -> None:
    assert client.post("/api/v1/lists", json={"name": LIST}, headers=officer).status_code == 201
    twice = problem_of(client.post("/api/v1/lists", json={"name": LIST}, headers=officer), 422)
    assert blamed(twice) == ["#/name"] and "exists already" in twice["detail"]
    hidden = problem_of(
        client.post("/api/v1/lists", json={"name": "Desk\u202e"}, headers=officer), 422
    )
    assert blamed(hidden) == ["#/name"]
    assert blamed(problem_of(client.post("/api/v1/lists", json={}, headers=officer), 422)) == [
        "#/name"
    ]
    unknown = problem_of(
        client.post(f"{LIST_PATH}/members", json={"emails": ["zed@x.example"]}, headers=officer),
        422,
    )
    assert blamed(unknown) == ["#/emails"] and "zed@x.example" in unknown["detail"]
    nothing = problem_of(client.post(f"{LIST_PATH}/members", json={}, headers=officer), 422)
    assert "give the addresses" in nothing["detail"]
    bad_filter = problem_of(
        client.post(f"{LIST_PATH}/members", json={"matching": "beat =="}, headers=officer), 422
    )
    assert blamed(bad_filter) == ["#/matching"]
    no_list = problem_of(
        client.post(
            "/api/v1/lists/Nowhere/members",
            json={"emails": ["ann@times.example.com"]},
            headers=officer,
        ),
        404,
    )
    assert "no media list named 'Nowhere'" in no_list["detail"]
    problem_of(client.get("/api/v1/lists/Nowhere/members", headers=officer), 404)
    viewer = bearer_for(web_runtime, PEOPLE[Role.VIEWER])
    problem_of(client.post("/api/v1/lists", json={"name": "Mine"}, headers=viewer), 403)
    problem_of(client.delete(LIST_PATH, headers=viewer), 403)


def test_a_segment_is_previewed_saved_listed_and_deleted(
    client: TestClient, web_runtime: Runtime, officer: dict[str, str]
) -> None:
    crime = 'beat = "crime"'
    viewer = bearer_for(web_runtime, PEOPLE[Role.VIEWER])
    preview = client.get(
        "/api/v1/segments/preview", params={"filter": crime, "sample": 1}, headers=viewer
    )
    assert preview.json() == {
        "count": 2,
        "suppressed": 0,
        "sample": [{"email": "ann@times.example.com", "name": "Ann"}],
    }

    saved = client.post(
        "/api/v1/segments", json={"name": "Crime", "filter": crime}, headers=officer
    )
    assert saved.status_code == 201 and saved.json() == {
        "name": "Crime",
        "filter": crime,
        "reach": 2,
    }
    replaced = client.post(
        "/api/v1/segments",
        json={"name": "Crime", "filter": 'outlet = "Post"', "replace": True},
        headers=officer,
    )
    assert replaced.json()["reach"] == 2
    listed = client.get("/api/v1/segments", headers=viewer).json()
    assert listed["items"] == [{"name": "Crime", "filter": 'outlet = "Post"', "reach": 2}]

    assert client.delete("/api/v1/segments/Crime", headers=officer).status_code == 204
    problem_of(client.delete("/api/v1/segments/Crime", headers=officer), 404)
    assert audit_actors(web_runtime, "segment.") == [
        ("segment.saved", OFFICER),
        ("segment.saved", OFFICER),
        ("segment.deleted", OFFICER),
    ]


def test_segment_refusals_name_the_field(
    client: TestClient, web_runtime: Runtime, officer: dict[str, str]
) -> None:
    bad = problem_of(
        client.get("/api/v1/segments/preview", params={"filter": "beat in ("}, headers=officer),
        422,
    )
    assert blamed(bad) == ["filter"] and "at character" in bad["detail"]
    problem_of(client.get("/api/v1/segments/preview", headers=officer), 422)
    unsaved = problem_of(
        client.post(
            "/api/v1/segments", json={"name": "X", "filter": "colour = 1"}, headers=officer
        ),
        422,
    )
    assert blamed(unsaved) == ["#/filter"]
    saved = {"name": "Crime", "filter": 'beat = "crime"'}
    assert client.post("/api/v1/segments", json=saved, headers=officer).status_code == 201
    twice = problem_of(client.post("/api/v1/segments", json=saved, headers=officer), 422)
    assert blamed(twice) == ["#/name"] and "exists already" in twice["detail"]
    nameless = problem_of(
        client.post("/api/v1/segments", json={**saved, "name": "  "}, headers=officer), 422
    )
    assert blamed(nameless) == ["#/name"]
    viewer = bearer_for(web_runtime, PEOPLE[Role.VIEWER])
    problem_of(client.post("/api/v1/segments", json=saved, headers=viewer), 403)
    problem_of(client.delete("/api/v1/segments/Crime", headers=viewer), 403)
