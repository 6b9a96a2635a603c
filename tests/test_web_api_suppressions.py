"""The suppression list through the API: everyone reads it, press officers add to it, only an
admin takes an address off it, and the audit trail names who did, against the real database
(SQLite and PostgreSQL)."""

from __future__ import annotations

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
ADMIN = PEOPLE[Role.ADMIN]


def test_officers_add_everyone_reads_and_only_an_admin_removes(
    client: TestClient, web_runtime: Runtime, people: dict[Role, str]
) -> None:
    officer = bearer_for(web_runtime, OFFICER)
    viewer = bearer_for(web_runtime, PEOPLE[Role.VIEWER])
    admin = bearer_for(web_runtime, ADMIN)
    new = {"email": " Jo@News.example.com ", "note": "asked by phone"}

    added = client.post("/api/v1/suppressions", json=new, headers=officer)
    assert added.status_code == 200 and added.json() == {
        "email": "Jo@News.example.com",
        "added": True,
    }
    again = client.post("/api/v1/suppressions", json=new, headers=officer)
    assert again.json()["added"] is False
    bounced = {"email": "gone@news.example.com", "reason": "hard_bounced"}
    assert client.post("/api/v1/suppressions", json=bounced, headers=officer).status_code == 200

    listed = client.get("/api/v1/suppressions", headers=viewer).json()
    assert [e["email"] for e in listed["items"]] == ["gone@news.example.com", "jo@news.example.com"]
    first = listed["items"][1]
    assert first["reason"] == "do_not_contact" and first["note"] == "asked by phone"
    assert first["source"] == f"added by {OFFICER} (press_officer)"
    only = client.get("/api/v1/suppressions?reason=hard_bounced", headers=viewer).json()
    assert only["total"] == 1

    problem_of(client.post("/api/v1/suppressions", json=new, headers=viewer), 403)
    refused = problem_of(
        client.delete("/api/v1/suppressions/jo@news.example.com", headers=officer), 403
    )
    assert "only an admin may do this" in refused["detail"]
    removed = client.delete("/api/v1/suppressions/JO@news.example.com", headers=admin)
    assert removed.status_code == 204
    gone = problem_of(client.delete("/api/v1/suppressions/jo@news.example.com", headers=admin), 404)
    assert gone["detail"] == "jo@news.example.com is not on the suppression list"
    assert client.get("/api/v1/suppressions", headers=viewer).json()["total"] == 1

    with web_runtime.sessions() as session:
        trail = session.execute(
            select(AuditEntry.action, AuditEntry.actor)
            .where(AuditEntry.action.startswith("suppression."))
            .order_by(AuditEntry.id)
        ).all()
    assert [tuple(row) for row in trail] == [
        ("suppression.added", OFFICER),
        ("suppression.added", OFFICER),
        ("suppression.lifted", ADMIN),
    ]


def test_a_bad_suppression_is_a_problem_naming_the_field(
    client: TestClient, web_runtime: Runtime, people: dict[Role, str]
) -> None:
    officer = bearer_for(web_runtime, OFFICER)
    for body, field in [
        ({"email": "not an address"}, "#/email"),
        ({"email": "a@"}, "#/email"),
        ({"email": ""}, "#/email"),
        ({}, "#/email"),
        ({"email": "a@b.example", "reason": "whim"}, "#/reason"),
        ({"email": "a@b.example", "note": "x" * 201}, "#/note"),
    ]:
        problem = problem_of(client.post("/api/v1/suppressions", json=body, headers=officer), 422)
        assert blamed(problem) == [field], body
    bad_reason = client.get("/api/v1/suppressions?reason=whim", headers=officer)
    assert blamed(problem_of(bad_reason, 422)) == ["reason"]
    assert client.get("/api/v1/suppressions", headers=officer).json()["total"] == 0
