"""An admin's commands on a send in flight, as a real process on a SQLite file: status with
retries and failures by reason, pause and resume, a held late send, retries and one
recipient's history."""

from __future__ import annotations

import json
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select, update

from distributor.engine.dispatch import RecordingDispatcher
from distributor.engine.tick import tick
from distributor.models import Contact, Delivery, DeliveryEvent, Send
from distributor.runtime import Runtime
from distributor.settings import Settings
from distributor.states import DeliveryState, SendState
from tests.test_cli import EMBARGO, fails, ok, ready_template  # noqa: F401 - fixture

REFUSED = "relay refused the recipient: 550 5.7.1 Message rejected as spam"


@pytest.fixture
def scheduled(ready_template: Path, tmp_path: Path) -> Path:  # noqa: F811
    """Three contacts on Newsdesks and release 1 scheduled for next summer (send 1)."""
    data = Path(shutil.copytree(ready_template, tmp_path / "var"))
    ok(
        data,
        "release",
        "schedule",
        "1",
        "--to",
        "Newsdesks",
        "--embargo",
        EMBARGO,
        "--tz",
        "Europe/London",
    )
    return data


def runtime_for(data: Path) -> Runtime:
    return Runtime(Settings(data_dir=data))


def now() -> datetime:
    return datetime.now(UTC)


def test_pause_and_resume_from_the_command_line(scheduled: Path) -> None:
    assert "send 1 paused" in ok(scheduled, "send", "pause", "1")
    status = ok(scheduled, "status", "1")
    assert "(release 1, paused)" in status
    assert "paused: paused by an admin" in status
    # a paused send cannot be paused again, and says why
    assert "only a scheduled or armed send can be paused" in fails(scheduled, "send", "pause", "1")
    assert "send 1 resumed (scheduled)" in ok(scheduled, "send", "resume", "1")
    assert "(release 1, scheduled)" in ok(scheduled, "status", "1")
    assert "no send with id 99" in fails(scheduled, "send", "pause", "99")


def test_status_shows_retries_and_failures_by_reason_then_retry_puts_them_back(
    scheduled: Path,
) -> None:
    rt = runtime_for(scheduled)
    next_try = now() + timedelta(minutes=5)
    try:
        with rt.sessions.begin() as session:
            session.execute(update(Send).values(state=SendState.ARMED, armed_at=now()))
            ann, bob, _ = session.scalars(select(Delivery.id).order_by(Delivery.id)).all()
            session.execute(
                update(Delivery)
                .where(Delivery.id == ann)
                .values(
                    state=DeliveryState.FAILED,
                    attempts=1,
                    smtp_code=550,
                    error=REFUSED,
                    first_claimed_at=now(),
                    finished_at=now(),
                )
            )
            session.add(
                DeliveryEvent(delivery_id=ann, at=now(), state=DeliveryState.FAILED, detail=REFUSED)
            )
            session.execute(
                update(Delivery)
                .where(Delivery.id == bob)
                .values(
                    state=DeliveryState.DEFERRED,
                    attempts=1,
                    smtp_code=451,
                    error="relay refused the recipient: 451 4.3.0 Try again later",
                    next_attempt_at=next_try,
                    first_claimed_at=now(),
                )
            )
    finally:
        rt.close()

    status = ok(scheduled, "status", "1")
    assert "pending 1, deferred 1, failed 1" in status
    assert f"next retry: {next_try:%Y-%m-%d %H:%M:%S} UTC" in status
    assert f"1  {REFUSED}" in status
    assert "451 4.3.0 Try again later" in status
    assert "scheduler: no heartbeat" in status  # nothing is running in this test

    history = ok(scheduled, "deliveries", "show", "ann@example.com")
    assert "failed, 1 attempt(s): " + REFUSED in history
    assert "pending" in history and REFUSED in history.splitlines()[-1]

    # the same facts for scripts
    (send,) = json.loads(ok(scheduled, "status", "1", "--json"))["sends"]
    assert send["counts"] == {"pending": 1, "deferred": 1, "failed": 1}
    assert send["next_retry_at"].startswith(f"{next_try:%Y-%m-%dT%H:%M:%S}")
    assert send["failures_by_reason"][0][0] in (
        REFUSED,
        "relay refused the recipient: 451 4.3.0 Try again later",
    )
    (delivery,) = json.loads(ok(scheduled, "deliveries", "show", "ann@example.com", "--json"))
    assert (delivery["state"], delivery["attempts"]) == ("failed", 1)
    assert [e["state"] for e in delivery["events"]][-1] == "failed"

    assert "1 deliveries of send 1 put back in line" in ok(
        scheduled, "deliveries", "retry", "--send", "1", "--state", "failed"
    )
    assert "pending 2, deferred 1" in ok(scheduled, "status", "1")
    assert "only failed and bounced" in fails(
        scheduled, "deliveries", "retry", "--send", "1", "--state", "sent"
    )
    assert "no contact with the address nobody@example.com" in fails(
        scheduled, "deliveries", "show", "nobody@example.com"
    )


def test_a_late_send_is_held_until_an_admin_resumes_it(scheduled: Path) -> None:
    rt = runtime_for(scheduled)
    try:
        # Nothing was running when the embargo passed twenty minutes ago
        with rt.sessions.begin() as session:
            session.execute(update(Send).values(embargo_at=now() - timedelta(minutes=20)))
        report = tick(rt.sessions, RecordingDispatcher(), now=now(), policy=rt.scheduler_policy)
        assert report.held == [1]
    finally:
        rt.close()
    status = ok(scheduled, "status", "1")
    assert "(release 1, held)" in status
    assert "nothing was sent within 15 minutes of the embargo" in status
    assert "send 1 resumed (armed)" in ok(scheduled, "send", "resume", "1")
    rt = runtime_for(scheduled)
    try:
        # and, resumed on purpose, it is not held again however late it is
        report = tick(rt.sessions, RecordingDispatcher(), now=now(), policy=rt.scheduler_policy)
        assert report.held == []
        with rt.sessions() as session:
            assert session.scalar(select(Send.state)) is SendState.ARMED
            assert session.scalar(select(Contact.id).limit(1)) is not None
    finally:
        rt.close()


def test_status_of_a_send_that_does_not_exist_fails(scheduled: Path) -> None:
    assert "no send with id 999" in fails(scheduled, "status", "999")
