"""The admin pages through the app's own routes (TestClient) on a real database: only an
admin gets in, the page follows a send as workers deliver it, the alert banner comes and
goes with the scheduler's heartbeat, and pausing, resuming, retrying and cancelling happen
only after a confirmation, with the session's CSRF token, through the core."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from distributor.actors import Role
from distributor.contacts_import import ContactRow, ParsedContacts, import_contacts
from distributor.engine.dbclock import ClockOffset
from distributor.engine.dispatch import BatchRef
from distributor.engine.heartbeats import beat
from distributor.engine.leases import release_batch
from distributor.engine.outcomes import Outcome, OutcomeRecorder
from distributor.lists import add_to_list, create_list
from distributor.models import AuditEntry, Delivery, MediaList
from distributor.releases import create_release
from distributor.runtime import Runtime
from distributor.scheduling import schedule_send
from distributor.states import DeliveryState, SendState
from tests.conftest import SAMPLE_DRAFT
from tests.support.engine import TEST_OWNER, claim_for_test, run_tick, send_row
from tests.support.web import (
    PEOPLE,
    client_fixture,  # noqa: F401 - fixture
    csrf_in,
    log_in,
    people_fixture,  # noqa: F401 - fixture
    web_runtime_fixture,  # noqa: F401 - fixture
)

ADMIN = PEOPLE[Role.ADMIN]
IN_STEP = ClockOffset(timedelta(0))
SQLITE_ONLY = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


def live_send(rt: Runtime, count: int, *, embargo_in: timedelta = timedelta(seconds=-5)) -> int:
    """A send to `count` journalists of a list of their own, its embargo `embargo_in` from
    now; armed by a tick if that is within the arming lead."""
    now = datetime.now(UTC)
    with rt.sessions.begin() as session:
        desk = f"Desk {session.scalar(select(func.count()).select_from(MediaList)) or 0}"
        rows = [
            ContactRow(line=i + 2, email=f"{i}.{desk.split()[1]}@daily.example.com")
            for i in range(count)
        ]
        import_contacts(session, ParsedContacts(rows=rows), now=now)
        create_list(session, desk, now=now)
        add_to_list(session, desk, [r.email for r in rows])
        release_id = create_release(session, SAMPLE_DRAFT, now=now).id
        embargo = now + embargo_in
        send_id = schedule_send(
            session,
            release_id=release_id,
            list_names=[desk],
            embargo_at=embargo,
            embargo_zone="Europe/London",
            now=embargo - timedelta(minutes=1),
            batch_size=100,
        ).send_id
    if embargo_in < timedelta(seconds=10):
        assert send_id in run_tick(rt, embargo - timedelta(seconds=10)).armed
    return send_id


def deliver(
    rt: Runtime, send_id: int, count: int, state: DeliveryState = DeliveryState.SENT
) -> None:
    """A worker claims `count` due deliveries of the send and records what the relay said."""
    now = datetime.now(UTC)
    with rt.sessions.begin() as session:
        beat(session, name=TEST_OWNER, kind="worker", now=now, offset=IN_STEP)
        claimed = claim_for_test(session, send_id, 0, now, count)
    reply = (250, "250 2.0.0 queued") if state is DeliveryState.SENT else (550, "550 5.7.1 no")
    recorder = OutcomeRecorder(rt.engine, owner=TEST_OWNER)
    try:
        recorder.record_many([Outcome(c.delivery_id, state, now, *reply) for c in claimed])
    finally:
        recorder.close()
    with rt.sessions.begin() as session:
        release_batch(session, batch=BatchRef(send_id, 0), owner=TEST_OWNER)


def scheduler_beats(rt: Runtime, *, ago: timedelta = timedelta(0)) -> None:
    with rt.sessions.begin() as session:
        beat(
            session,
            name="scheduler:test-host:1",
            kind="scheduler",
            now=datetime.now(UTC) - ago,
            offset=IN_STEP,
        )


def progress_of(html: str, send_id: int) -> tuple[int, int]:
    card = html[html.index(f'data-send-id="{send_id}"') :]
    found = re.search(r'max="(\d+)" value="(\d+)" data-send-progress', card)
    assert found, "the send has no progress bar"
    return int(found.group(2)), int(found.group(1))


@SQLITE_ONLY
def test_only_an_admin_gets_in(
    client: TestClient, people: dict[Role, str], web_runtime: Runtime
) -> None:
    send_id = live_send(web_runtime, 3, embargo_in=timedelta(days=1))
    pages = ["/admin", "/admin/live", f"/admin/sends/{send_id}/pause"]
    for path in pages:
        response = client.get(path)
        assert response.status_code == 303
        assert response.headers["location"].startswith("/login?next=/admin")

    for role in (Role.VIEWER, Role.PRESS_OFFICER, Role.APPROVER):
        token = log_in(client, people[role])
        for path in pages:
            refused = client.get(path)
            assert refused.status_code == 403, path
            assert "only an admin may do this" in refused.text
        # Not even with the form's token.
        posted = client.post(
            f"/admin/sends/{send_id}/pause", data={"csrf_token": token, "confirmed": "yes"}
        )
        assert posted.status_code == 403
        client.cookies.clear()
    assert send_row(web_runtime, send_id).state is SendState.SCHEDULED

    log_in(client, ADMIN)
    page = client.get("/admin")
    assert page.status_code == 200
    assert "<h1>Operations</h1>" in page.text
    policy = page.headers["content-security-policy"]
    assert "script-src 'self'" in policy and "connect-src 'self'" in policy
    assert "'unsafe-inline'" not in policy
    assert re.search(r'<script src="/static/admin\.js\?v=[0-9a-f]{12}" defer>', page.text)
    assert client.get("/static/admin.js").status_code == 200


@SQLITE_ONLY
def test_the_page_follows_a_send_and_the_banner_follows_the_scheduler(
    client: TestClient, people: dict[Role, str], web_runtime: Runtime
) -> None:
    send_id = live_send(web_runtime, 10)
    log_in(client, ADMIN)

    # Nothing sent yet, and no scheduler has ever ticked.
    page = client.get("/admin").text
    assert progress_of(page, send_id) == (0, 10)
    assert re.search(r'<section class="alerts"[^>]* data-alerts>', page)  # shown, not hidden
    assert "no scheduler has ticked in the last hour" in page

    deliver(web_runtime, send_id, 4)
    deliver(web_runtime, send_id, 1, DeliveryState.FAILED)
    live = client.get("/admin/live").json()
    (send,) = live["sends"]
    assert send | {"per_second": None} == {
        "id": send_id,
        "state": "armed",
        "total": 10,
        "done": 5,
        "sent": 4,
        "percent": 50.0,
        "per_second": None,
        "counts": {"pending": 5, "sent": 4, "failed": 1},
    }
    assert send["per_second"] == 0.4  # four in the last ten seconds
    assert [a["code"] for a in live["alerts"]] == ["scheduler_silent"]
    assert live["workers_alive"] == 1

    page = client.get("/admin").text
    assert progress_of(page, send_id) == (5, 10)
    assert TEST_OWNER in page and "250 2.0.0 queued" in page and "550 5.7.1 no" in page
    assert f'href="/admin/sends/{send_id}/retry"' in page

    # The scheduler ticks: the banner goes, from the page and from what the page polls.
    scheduler_beats(web_runtime)
    assert client.get("/admin/live").json()["alerts"] == []
    page = client.get("/admin").text
    assert "data-alerts hidden" in page
    assert "scheduler silent" not in page

    # It stops: eleven seconds later the banner is back, naming the send it holds up.
    scheduler_beats(web_runtime, ago=timedelta(seconds=11))
    (alert,) = client.get("/admin/live").json()["alerts"]
    assert (alert["code"], alert["severity"]) == ("scheduler_silent", "critical")
    assert f"send {send_id} will not be armed" in alert["message"]


def test_each_action_needs_a_confirmation_and_the_csrf_token_and_acts_through_the_core(
    client: TestClient, people: dict[Role, str], web_runtime: Runtime
) -> None:
    upcoming = live_send(web_runtime, 3, embargo_in=timedelta(days=1))
    token = log_in(client, ADMIN)

    confirm = client.get(f"/admin/sends/{upcoming}/pause")
    assert confirm.status_code == 200
    assert f"Pause send {upcoming}?" in confirm.text
    assert "Workers stop claiming its deliveries at once" in confirm.text
    assert csrf_in(confirm.text) == token

    # Straight from a link or a script, without the confirmation: shown what it would do.
    unconfirmed = client.post(f"/admin/sends/{upcoming}/pause", data={"csrf_token": token})
    assert unconfirmed.status_code == 303
    assert unconfirmed.headers["location"] == f"/admin/sends/{upcoming}/pause"
    # Confirmed, but from another site (no token): refused.
    forged = client.post(f"/admin/sends/{upcoming}/pause", data={"confirmed": "yes"})
    assert forged.status_code == 403
    assert send_row(web_runtime, upcoming).state is SendState.SCHEDULED

    def act(action: str, send_id: int, **fields: str | list[str]) -> str:
        response = client.post(
            f"/admin/sends/{send_id}/{action}",
            data={"csrf_token": token, "confirmed": "yes", **fields},
        )
        assert response.status_code == 303, response.text
        assert response.headers["location"] == "/admin"
        flashed = re.search(r'notice-ok" role="status">([^<]+)<', client.get("/admin").text)
        assert flashed
        return flashed.group(1)

    assert "paused" in act("pause", upcoming)
    assert send_row(web_runtime, upcoming).state is SendState.PAUSED
    assert act("resume", upcoming) == f"Send {upcoming} resumed (scheduled)."
    assert send_row(web_runtime, upcoming).state is SendState.SCHEDULED

    # A send past its embargo where the relay refused two messages for good.
    lifted = live_send(web_runtime, 6)
    deliver(web_runtime, lifted, 2, DeliveryState.FAILED)
    retry_page = client.get(f"/admin/sends/{lifted}/retry").text
    assert 'name="state" value="failed" checked' in retry_page
    assert act("retry", lifted, state=["failed"]) == (
        f"2 deliveries of send {lifted} put back in line."
    )
    with web_runtime.sessions() as session:
        states = session.scalars(select(Delivery.state).where(Delivery.send_id == lifted)).all()
    assert sorted(states) == [DeliveryState.PENDING] * 6

    cancel_page = client.get(f"/admin/sends/{upcoming}/cancel").text
    assert "This withdraws release" in cancel_page and "button-danger" in cancel_page
    assert "withdrawn: cancelled send" in act("cancel", upcoming)
    assert send_row(web_runtime, upcoming).state is SendState.CANCELLED

    # What the core refuses is shown on the confirmation page, with the reason.
    again = client.post(
        f"/admin/sends/{upcoming}/pause", data={"csrf_token": token, "confirmed": "yes"}
    )
    assert again.status_code == 409
    assert f"send {upcoming} is cancelled; only a scheduled or armed send can be paused" in (
        again.text
    )
    assert client.get("/admin/sends/999999/pause").status_code == 404

    # Recorded in the admin's name, as the command line records its user.
    with web_runtime.sessions() as session:
        actions = session.scalars(
            select(AuditEntry.action).where(AuditEntry.actor == ADMIN).order_by(AuditEntry.id)
        ).all()
    assert actions[:3] == ["send.paused", "send.resumed", "deliveries.retried"]
    assert "send.cancelled" in actions
