"""Embargo breaches: recorded, the breaker kept from embargoed copies, the flag cleared by an
admin on the record, and --lift-now letting the release out for everyone."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from distributor.actors import Actor, Role
from distributor.breaches import BREACH, CLEARED, breach_history, clear_breaker, record_breach
from distributor.contacts.editing import get_contact
from distributor.embargo_changes import lift_embargo
from distributor.engine.dispatch import RecordingDispatcher
from distributor.engine.tick import tick
from distributor.errors import PermissionDeniedError
from distributor.models import Send
from distributor.runtime import Runtime
from distributor.states import DeliveryState, SendKind, SendState
from tests.conftest import now
from tests.test_cli import EMBARGO, ok, ready_template, run  # noqa: F401 - fixture
from tests.test_prebriefs import POLICY, mark_sent, schedule, states, vet

MakeAudience = Callable[..., tuple[int, list[str]]]
PRESS_OFFICER = Actor("Pat", Role.PRESS_OFFICER)
ADMIN = Actor("Ada", Role.ADMIN)


def test_a_breach_is_recorded_and_keeps_the_breaker_from_the_next_prebrief(
    runtime: Runtime, make_audience: MakeAudience
) -> None:
    release_id, emails = make_audience(3)
    vet(runtime, emails[0], emails[1])
    with runtime.sessions.begin() as session:
        recorded = record_breach(
            session,
            email=emails[0],
            release_id=release_id,
            actor=PRESS_OFFICER,
            now=now(),
            outlet_too=True,
            note="published at 22:00 the night before",
        )
    assert recorded.outlet == "Outlet 0"
    with runtime.sessions() as session:
        contact = get_contact(session, emails[0])
        assert contact.embargo_breaker
        (record,) = breach_history(session, contact_id=contact.id)
        assert (record.action, record.release_id, record.recorded_by) == (
            BREACH,
            release_id,
            "Pat (press_officer)",
        )
        assert record.note == "published at 22:00 the night before"
    scheduled = schedule(runtime, release_id)
    assert scheduled.prebrief is not None
    # emails[1] works at Outlet 1, which is not marked: it alone is pre-briefed
    assert set(states(runtime, scheduled.prebrief.send_id)) == {emails[1]}


def test_only_an_admin_clears_the_flag_and_the_clearing_is_recorded(
    runtime: Runtime, make_audience: MakeAudience
) -> None:
    release_id, emails = make_audience(1)
    with runtime.sessions.begin() as session:
        record_breach(session, email=emails[0], release_id=release_id, actor=ADMIN, now=now())
    with pytest.raises(PermissionDeniedError), runtime.sessions.begin() as session:
        clear_breaker(session, actor=PRESS_OFFICER, now=now(), email=emails[0])
    with runtime.sessions.begin() as session:
        clear_breaker(session, actor=ADMIN, now=now(), email=emails[0], note="apologised")
    with runtime.sessions() as session:
        contact = get_contact(session, emails[0])
        assert not contact.embargo_breaker
        assert [r.action for r in breach_history(session, contact_id=contact.id)] == [
            BREACH,
            CLEARED,
        ]


def test_a_breach_during_a_prebrief_with_lift_now_lets_the_release_out_to_everyone(
    runtime: Runtime, make_audience: MakeAudience
) -> None:
    release_id, emails = make_audience(4)
    vet(runtime, emails[0], emails[1])
    scheduled = schedule(runtime, release_id)
    assert scheduled.prebrief is not None
    tick(runtime.sessions, RecordingDispatcher(), now=now(), policy=POLICY)
    mark_sent(runtime, scheduled.prebrief.send_id)
    # emails[1] breaks the embargo; the press office lifts it for everyone
    with runtime.sessions.begin() as session:
        record_breach(session, email=emails[1], release_id=release_id, actor=ADMIN, now=now())
        lift_embargo(session, release_id=release_id, now=now(), arm_lead=timedelta(seconds=10))
    report = tick(runtime.sessions, RecordingDispatcher(), now=now(), policy=POLICY)
    assert scheduled.send_id in report.armed
    public = states(runtime, scheduled.send_id)
    assert {e for e, s in public.items() if s is DeliveryState.PENDING} == set(emails[2:])
    with runtime.sessions() as session:
        notice = session.scalar(select(Send).where(Send.kind == SendKind.LIFT_NOTICE))
        assert notice is not None and notice.state is SendState.ARMED
        assert notice.embargo_at <= now()


def test_breach_from_the_command_line_with_lift_now(
    ready_template: Path,  # noqa: F811
    tmp_path: Path,
) -> None:
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
    out = ok(
        data,
        "contacts",
        "breach",
        "ann@example.com",
        "--release",
        "1",
        "--outlet",
        "--note",
        "ran it early",
        "--lift-now",
        "--as",
        "Pat",
    )
    assert "ann@example.com and The Times marked an embargo breaker" in out
    assert "release 1: embargo lifted now for everyone" in out
    refused = run(data, "contacts", "clear-breach", "ann@example.com")
    assert refused.returncode == 1 and "only an admin" in refused.stderr
    cleared = ok(data, "contacts", "clear-breach", "ann@example.com", "--role", "admin")
    assert "breaker flag of ann@example.com cleared" in cleared
