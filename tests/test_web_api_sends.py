"""Sends through the API: where each stands, its deliveries a page at a time (by state),
failed deliveries put back in line by press officers, and pausing and resuming by admins,
against the real database (SQLite and PostgreSQL)."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy import select, update

from distributor.actors import Role
from distributor.models import AuditEntry, Delivery
from distributor.runtime import Runtime
from distributor.states import DeliveryState
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
ADMIN = PEOPLE[Role.ADMIN]


def fail_first_delivery(runtime: Runtime, send_id: int) -> None:
    with runtime.sessions() as session, session.begin():
        first = session.scalar(
            select(Delivery.id).where(Delivery.send_id == send_id).order_by(Delivery.id).limit(1)
        )
        session.execute(
            update(Delivery)
            .where(Delivery.id == first)
            .values(state=DeliveryState.FAILED, smtp_code=550, smtp_reply="550 no such user")
        )


def test_sends_are_listed_and_their_deliveries_read_a_page_at_a_time(
    client: TestClient, web_runtime: Runtime, people: dict[Role, str]
) -> None:
    first = release_awaiting_approval(web_runtime, headline="First")
    second = release_awaiting_approval(web_runtime, headline="Second")
    viewer = bearer_for(web_runtime, PEOPLE[Role.VIEWER])

    every = client.get("/api/v1/sends", headers=viewer).json()
    assert [s["release_id"] for s in every["items"]] == [first, second]
    assert every["items"][0]["counts"] == {"pending": 2}
    only = client.get(f"/api/v1/sends?release_id={second}", headers=viewer).json()
    assert [s["headline"] for s in only["items"]] == ["Second"]
    none = client.get("/api/v1/sends?state=completed", headers=viewer).json()
    assert none["total"] == 0
    send_id = every["items"][0]["send_id"]
    fail_first_delivery(web_runtime, send_id)

    page = client.get(f"/api/v1/sends/{send_id}/deliveries?per_page=1", headers=viewer).json()
    assert (page["total"], page["pages"]) == (2, 2)
    assert page["items"][0]["email"] == "ann@news.example.com"
    assert page["items"][0]["state"] == "failed" and page["items"][0]["smtp_code"] == 550
    pending = client.get(
        f"/api/v1/sends/{send_id}/deliveries?state=pending&state=sent", headers=viewer
    ).json()
    assert [d["email"] for d in pending["items"]] == ["bob@news.example.com"]

    for path, field in [
        ("/api/v1/sends?state=lost", "state.0"),
        ("/api/v1/sends?release_id=0", "release_id"),
        (f"/api/v1/sends/{send_id}/deliveries?state=sent&state=lost", "state.1"),
        (f"/api/v1/sends/{send_id}/deliveries?per_page=0", "per_page"),
        ("/api/v1/sends/abc/deliveries", "send_id"),
    ]:
        assert blamed(problem_of(client.get(path, headers=viewer), 422)) == [field], path
    problem_of(client.get("/api/v1/sends/4242/deliveries", headers=viewer), 404)


def test_failed_deliveries_are_retried_and_sends_paused_by_admins(
    client: TestClient, web_runtime: Runtime, people: dict[Role, str]
) -> None:
    release_id = release_awaiting_approval(web_runtime)
    approver = bearer_for(web_runtime, PEOPLE[Role.APPROVER])
    (send_id,) = client.post(f"/api/v1/releases/{release_id}/approve", headers=approver).json()[
        "send_ids"
    ]
    fail_first_delivery(web_runtime, send_id)
    officer = bearer_for(web_runtime, OFFICER)
    admin = bearer_for(web_runtime, ADMIN)
    viewer = bearer_for(web_runtime, PEOPLE[Role.VIEWER])

    problem_of(client.post(f"/api/v1/sends/{send_id}/retry", headers=viewer), 403)
    bad = client.post(f"/api/v1/sends/{send_id}/retry", json={"states": ["sent"]}, headers=officer)
    assert blamed(problem_of(bad, 422)) == ["#/states/0"]
    retried = client.post(
        f"/api/v1/sends/{send_id}/retry", json={"states": ["failed"]}, headers=officer
    )
    assert retried.status_code == 200 and retried.json() == {"send_id": send_id, "retried": 1}
    assert client.post(f"/api/v1/sends/{send_id}/retry", headers=officer).json()["retried"] == 0

    refused = problem_of(client.post(f"/api/v1/sends/{send_id}/pause", headers=officer), 403)
    assert "only an admin may do this" in refused["detail"]
    paused = client.post(f"/api/v1/sends/{send_id}/pause", headers=admin)
    assert paused.status_code == 200 and paused.json()["state"] == "paused"
    twice = problem_of(client.post(f"/api/v1/sends/{send_id}/pause", headers=admin), 409)
    assert "only a scheduled or armed send can be paused" in twice["detail"]
    resumed = client.post(f"/api/v1/sends/{send_id}/resume", headers=admin)
    assert resumed.status_code == 200 and resumed.json()["state"] == "scheduled"
    problem_of(client.post(f"/api/v1/sends/{send_id}/resume", headers=admin), 409)
    problem_of(client.post("/api/v1/sends/4242/pause", headers=admin), 404)

    with web_runtime.sessions() as session:
        trail = session.execute(
            select(AuditEntry.action, AuditEntry.actor)
            .where(AuditEntry.action.in_(["deliveries.retried", "send.paused", "send.resumed"]))
            .order_by(AuditEntry.id)
        ).all()
    assert [tuple(row) for row in trail] == [
        ("deliveries.retried", OFFICER),
        ("send.paused", ADMIN),
        ("send.resumed", ADMIN),
    ]
