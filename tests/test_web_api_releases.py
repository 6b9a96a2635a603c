"""Releases through the API: a draft written and edited, scheduled under embargo, the embargo
moved, lifted or the release cancelled; every refusal a problem naming the field, and the
audit trail naming the caller, against the real database (SQLite and PostgreSQL)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

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
    release_awaiting_approval,
    web_runtime_fixture,  # noqa: F401 - fixture
)

OFFICER = PEOPLE[Role.PRESS_OFFICER]
RELEASE = {
    "headline": "Charity opens three new refuges",
    "dateline": "Leeds",
    "body": "The charity today opened three new refuges.",
    "quotes": [{"text": "A safe place matters.", "name": "Jo Bloggs", "role": "Director"}],
    "links": [{"label": "Our report", "url": "https://example.org/report"}],
}
NEWSDESKS_CSV = "email,name\nann@news.example.com,Ann\nbob@news.example.com,Bob\n"


def local(days: int, zone: str = "Europe/London") -> str:
    """Noon, `days` from now, in `zone`: never a time a clock change skips."""
    day = datetime.now(ZoneInfo(zone)) + timedelta(days=days)
    return f"{day:%Y-%m-%d} 12:00"


@pytest.fixture
def officer(client: TestClient, web_runtime: Runtime, people: dict[Role, str]) -> dict[str, str]:
    """A press officer's token, with two journalists on the list Newsdesks."""
    headers = bearer_for(web_runtime, OFFICER)
    files = {"file": ("newsdesks.csv", NEWSDESKS_CSV.encode(), "text/csv")}
    assert client.post("/api/v1/contacts/import", files=files, headers=headers).status_code == 200
    assert client.post("/api/v1/lists", json={"name": "Newsdesks"}, headers=headers).is_success
    emails = ["ann@news.example.com", "bob@news.example.com"]
    added = client.post("/api/v1/lists/Newsdesks/members", json={"emails": emails}, headers=headers)
    assert added.json()["added"] == 2
    return headers


def created(client: TestClient, headers: dict[str, str], **changes: Any) -> int:
    response = client.post("/api/v1/releases", json={**RELEASE, **changes}, headers=headers)
    assert response.status_code == 201, response.text
    return int(response.json()["release_id"])


def schedule(client: TestClient, headers: dict[str, str], release_id: int, **changes: Any) -> Any:
    body = {"embargo": local(1), "zone": "Europe/London", "lists": ["Newsdesks"], **changes}
    return client.post(f"/api/v1/releases/{release_id}/schedule", json=body, headers=headers)


def trail(runtime: Runtime, release_id: int) -> list[tuple[str, str]]:
    with runtime.sessions() as session:
        rows = session.execute(
            select(AuditEntry.action, AuditEntry.actor)
            .where(AuditEntry.release_id == release_id)
            .order_by(AuditEntry.id)
        )
        return [(action, actor) for action, actor in rows]


def test_a_draft_is_written_edited_and_read_back(
    client: TestClient, web_runtime: Runtime, officer: dict[str, str]
) -> None:
    response = client.post("/api/v1/releases", json=RELEASE, headers=officer)

    assert response.status_code == 201, response.text
    release = response.json()
    assert response.headers["location"] == f"/api/v1/releases/{release['release_id']}"
    assert release["state"] == "draft" and release["headline"] == RELEASE["headline"]
    assert release["quotes"] == RELEASE["quotes"] and release["links"] == RELEASE["links"]
    assert isinstance(release["warnings"], list)

    path = f"/api/v1/releases/{release['release_id']}"
    edited = client.patch(path, json={"standfirst": "Three towns get a refuge."}, headers=officer)
    assert edited.status_code == 200, edited.text
    assert edited.json()["standfirst"] == "Three towns get a refuge."
    assert edited.json()["headline"] == RELEASE["headline"], "fields not given are kept"
    assert edited.json()["quotes"] == RELEASE["quotes"]
    shown = client.get(path, headers=bearer_for(web_runtime, PEOPLE[Role.VIEWER])).json()
    assert shown["standfirst"] == "Three towns get a refuge."
    assert trail(web_runtime, release["release_id"]) == [
        ("release.created", OFFICER),
        ("release.edited", OFFICER),
    ]


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"headline": ""}, "#/headline"),
        ({"headline": "x" * 301}, "#/headline"),
        ({"headline": "Refuges\u202e open"}, "#/headline"),
        ({"headline": 5}, "#/headline"),
        ({"body": "  "}, "#/body"),
        ({"body": None}, "#/body"),
        ({"dateline": "x" * 101}, "#/dateline"),
        ({"quotes": [*RELEASE["quotes"], {"text": "", "name": "Ann"}]}, "#/quotes/1"),
        ({"press_contacts": [{"name": "Jo", "email": "not-an-address"}]}, "#/press_contacts/0"),
        ({"links": [{"label": "Site", "url": "ftp://example.org"}]}, "#/links/0"),
        ({"organisation": "Nobody Ltd"}, "#/organisation"),
        ({"template": "Not A Name"}, "#/template"),
        ({"body_format": "html"}, "#/body_format"),
    ],
)
def test_a_bad_draft_is_a_problem_naming_its_field(
    client: TestClient, officer: dict[str, str], changes: dict[str, Any], field: str
) -> None:
    response = client.post("/api/v1/releases", json={**RELEASE, **changes}, headers=officer)
    assert field in blamed(problem_of(response, 422))
    assert client.get("/api/v1/releases", headers=officer).json()["total"] == 0


def test_edits_are_refused_with_a_reason(
    client: TestClient, web_runtime: Runtime, officer: dict[str, str]
) -> None:
    release_id = created(client, officer)
    path = f"/api/v1/releases/{release_id}"
    nothing = problem_of(client.patch(path, json={}, headers=officer), 422)
    assert nothing["detail"] == "give at least one field to change"
    assert blamed(problem_of(client.patch(path, json={"headline": ""}, headers=officer), 422)) == [
        "#/headline"
    ]
    problem_of(client.patch("/api/v1/releases/4242", json={"headline": "X"}, headers=officer), 404)
    viewer = bearer_for(web_runtime, PEOPLE[Role.VIEWER])
    problem_of(client.patch(path, json={"headline": "X"}, headers=viewer), 403)
    problem_of(client.post("/api/v1/releases", json=RELEASE, headers=viewer), 403)
    assert client.get(path, headers=officer).json()["headline"] == RELEASE["headline"]


def test_a_release_is_scheduled_moved_and_lifted_or_cancelled(
    client: TestClient, web_runtime: Runtime, officer: dict[str, str]
) -> None:
    release_id = created(client, officer)

    scheduled = schedule(client, officer, release_id)

    assert scheduled.status_code == 201, scheduled.text
    send = scheduled.json()
    assert (send["state"], send["recipients"], send["left_out"]) == ("scheduled", 2, 0)
    assert send["prebrief"] is None
    again = problem_of(schedule(client, officer, release_id), 409)
    assert "already have release" in again["detail"]

    base = f"/api/v1/releases/{release_id}"
    moved = client.post(
        f"{base}/move",
        json={"embargo": local(2, "Asia/Tokyo"), "zone": "Asia/Tokyo"},
        headers=officer,
    )
    assert moved.status_code == 200, moved.text
    assert moved.json()["embargo_zone"] == "Asia/Tokyo"
    assert moved.json()["moved_sends"] == [send["send_id"]]
    status = client.get(f"/api/v1/sends/{send['send_id']}", headers=officer).json()
    assert (
        status["embargo_zone"] == "Asia/Tokyo"
        and status["embargo_at"] == moved.json()["embargo_at"]
    )

    lifted = client.post(f"{base}/lift", headers=officer)
    assert lifted.status_code == 200, lifted.text
    assert lifted.json()["moved_sends"] == [send["send_id"]]

    other = created(client, officer, headline="Second release")
    assert schedule(client, officer, other, again=True).status_code == 201
    cancelled = client.post(f"/api/v1/releases/{other}/cancel", headers=officer)
    assert cancelled.status_code == 200, cancelled.text
    assert cancelled.json()["cancelled"][0]["deliveries_stopped"] == 2
    problem_of(client.post(f"/api/v1/releases/{other}/cancel", headers=officer), 409)

    assert trail(web_runtime, release_id) == [
        ("release.created", OFFICER),
        ("send.scheduled", OFFICER),
        ("embargo.moved", OFFICER),
        ("embargo.lifted", OFFICER),
    ]
    assert ("release.withdrawn", OFFICER) in trail(web_runtime, other)


@pytest.mark.parametrize(
    ("changes", "field", "status"),
    [
        ({"zone": "Mars/Olympus"}, "#/zone", 422),
        ({"zone": "localtime"}, "#/zone", 422),
        ({"embargo": "tomorrow at noon"}, "#/embargo", 422),
        ({"embargo": "2001-01-01 12:00"}, "#/embargo", 422),
        ({"embargo": "9999-12-31 23:59"}, "#/embargo", 422),
        ({"embargo": ""}, "#/embargo", 422),
        ({"lists": ["Nowhere"]}, "#/lists", 422),
        ({"segments": ["Nowhere"]}, "#/segments", 422),
        ({"lists": []}, "#", 422),
        ({"lists": "Newsdesks"}, "#/lists", 422),
        ({"prebrief": {"now": True, "at": "2030-01-01 10:00"}}, "#/prebrief", 422),
        ({"prebrief": {}}, "#/prebrief", 422),
        ({"prebrief": {"at": "soon"}}, "#/prebrief/at", 422),
        ({"prebrief": {"now": True, "lists": ["Nowhere"]}}, "#/prebrief/lists", 422),
        ({"prebrief": {"now": True}}, "#", 422),  # nobody on the list is vetted
    ],
)
def test_a_bad_schedule_is_a_problem_naming_its_field(
    client: TestClient,
    officer: dict[str, str],
    changes: dict[str, Any],
    field: str,
    status: int,
) -> None:
    release_id = created(client, officer)
    assert field in blamed(problem_of(schedule(client, officer, release_id, **changes), status))
    assert client.get("/api/v1/sends", headers=officer).json()["total"] == 0


def test_embargo_changes_are_refused_with_a_reason(
    client: TestClient, web_runtime: Runtime, officer: dict[str, str]
) -> None:
    draft = created(client, officer)
    base = f"/api/v1/releases/{draft}"
    move = {"embargo": local(2), "zone": "Europe/London"}
    nothing = problem_of(client.post(f"{base}/move", json=move, headers=officer), 409)
    assert "no send waiting for its embargo" in nothing["detail"]
    problem_of(client.post(f"{base}/lift", headers=officer), 409)
    problem_of(client.post(f"{base}/cancel", headers=officer), 409)
    bad_zone = client.post(f"{base}/move", json={**move, "zone": "Nowhere"}, headers=officer)
    assert blamed(problem_of(bad_zone, 422)) == ["#/zone"]
    problem_of(client.post("/api/v1/releases/4242/lift", headers=officer), 404)
    problem_of(schedule(client, officer, 4242), 404)

    waiting = release_awaiting_approval(web_runtime)
    held = problem_of(client.post(f"/api/v1/releases/{waiting}/lift", headers=officer), 409)
    assert "awaits approval" in held["detail"]
    viewer = bearer_for(web_runtime, PEOPLE[Role.VIEWER])
    for action in ("lift", "cancel"):
        problem_of(client.post(f"/api/v1/releases/{waiting}/{action}", headers=viewer), 403)
    problem_of(schedule(client, viewer, draft), 403)
