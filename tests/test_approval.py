"""Approval by a second person, and the audit trail, from the command line and the core.

An organisation that requires approval: its sends wait in `awaiting_approval` (the tick
arms nothing of them) until an approver who neither scheduled the send nor wrote the text
approves; an edit afterwards withdraws the approval and `release diff` shows the approver
what changed. Every step lands in the audit trail, which the database refuses to change.
"""

from __future__ import annotations

import io
import json
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select, text, update
from sqlalchemy.exc import DBAPIError

from distributor.actors import Actor, Role
from distributor.approvals import approve_release
from distributor.contacts_import import import_contacts, parse_contacts_csv
from distributor.engine.dispatch import RecordingDispatcher
from distributor.engine.tick import SchedulerPolicy, tick
from distributor.errors import InvalidStateError, PermissionDeniedError
from distributor.lists import add_to_list, create_list
from distributor.models import AuditEntry, Send
from distributor.organisations import save_organisation
from distributor.releases import create_release, parse_release_markdown
from distributor.runtime import Runtime
from distributor.scheduling import schedule_send
from distributor.settings import Settings
from distributor.states import SendState
from tests.test_cli import EMBARGO, ok, ready_template, run  # noqa: F401 - fixture

RELEASE = """+++
headline = "Charity opens three new refuges"
organisation = "SafeLives"
+++

The charity today opened three new refuges in the north of England.
"""
EDITED = RELEASE.replace("three new refuges in the north", "four new refuges in the north")


def no_files(name: str) -> bytes:
    raise AssertionError(f"the release attaches no files, yet {name} was read")


def refused(data: Path, *args: str) -> str:
    result = run(data, *args)
    assert result.returncode != 0, result.stdout
    assert result.stderr.startswith("error: "), result.stderr
    return result.stderr


def send_states(data: Path) -> dict[int, SendState]:
    rt = Runtime(Settings(data_dir=data))
    try:
        with rt.sessions() as session:
            return {s.id: s.state for s in session.scalars(select(Send).order_by(Send.id))}
    finally:
        rt.close()


@pytest.fixture
def awaiting(ready_template: Path, tmp_path: Path) -> Path:  # noqa: F811
    """Release 2 of SafeLives (which requires approval), scheduled by Pat, awaiting."""
    data = Path(shutil.copytree(ready_template, tmp_path / "var"))
    ok(data, "organisation", "set", "SafeLives", "--require-approval", "--as", "Ada")
    (tmp_path / "release.md").write_text(RELEASE, encoding="utf-8")
    (tmp_path / "edited.md").write_text(EDITED, encoding="utf-8")
    ok(data, "release", "create", "--from", str(tmp_path / "release.md"), "--as", "Pat")
    out = ok(
        data,
        "release",
        "schedule",
        "2",
        "--to",
        "Newsdesks",
        "--embargo",
        EMBARGO,
        "--tz",
        "Europe/London",
        "--as",
        "Pat",
    )
    assert "awaiting approval" in out and "release approve 2" in out
    return data


def test_a_send_awaiting_approval_is_never_armed(awaiting: Path) -> None:
    rt = Runtime(Settings(data_dir=awaiting))
    try:
        with rt.sessions.begin() as session:
            session.execute(
                update(Send).values(embargo_at=datetime.now(UTC) + timedelta(seconds=5))
            )
        policy = SchedulerPolicy(arm_lead=timedelta(minutes=1), redispatch_after=timedelta(hours=1))
        dispatcher = RecordingDispatcher()
        result = tick(rt.sessions, dispatcher, now=datetime.now(UTC), policy=policy)
        assert not result.armed and not dispatcher.dispatched
    finally:
        rt.close()
    assert send_states(awaiting) == {1: SendState.AWAITING_APPROVAL}
    status = ok(awaiting, "status", "1")
    assert "awaiting_approval" in status


def test_approval_by_the_scheduler_or_a_press_officer_is_refused(awaiting: Path) -> None:
    err = refused(awaiting, "release", "approve", "2", "--as", "Pat", "--role", "approver")
    assert "Pat scheduled send 1, so another person must approve it" in err
    err = refused(awaiting, "release", "approve", "2", "--as", "Sam", "--role", "press_officer")
    assert "Sam is a press officer and only an approver or an admin may approve" in err
    assert send_states(awaiting) == {1: SendState.AWAITING_APPROVAL}


def test_another_approver_approves_and_an_edit_withdraws_it(awaiting: Path) -> None:
    out = ok(awaiting, "release", "approve", "2", "--as", "Ada", "--note", "checked figures")
    assert "approved version 1 of release 2: send(s) 1 scheduled" in out
    assert send_states(awaiting) == {1: SendState.SCHEDULED}
    refused(awaiting, "release", "approve", "2", "--as", "Ada")  # nothing left to approve

    edited = ok(
        awaiting,
        "release",
        "edit",
        "2",
        "--from",
        str(awaiting.parent / "edited.md"),
        "--as",
        "Pat",
    )
    assert "send(s) 1 await approval of this text" in edited
    assert send_states(awaiting) == {1: SendState.AWAITING_APPROVAL}

    diff = ok(awaiting, "release", "diff", "2")
    assert "version 2 since version 1 (approval withdrawn, by Ada (approver))" in diff
    assert "-The charity today opened three new refuges in the north of England." in diff
    assert "+The charity today opened four new refuges in the north of England." in diff

    out = ok(awaiting, "release", "approve", "2", "--as", "Ada")
    assert "approved version 2" in out
    assert send_states(awaiting) == {1: SendState.SCHEDULED}

    trail = json.loads(ok(awaiting, "audit", "--release", "2", "--json"))
    assert [(e["action"], e["actor"]) for e in trail] == [
        ("release.created", "Pat"),
        ("send.scheduled", "Pat"),
        ("send.approved", "Ada"),
        ("release.edited", "Pat"),
        ("send.approval_withdrawn", "Pat"),
        ("send.approved", "Ada"),
    ]
    scheduled = trail[1]["after"]
    assert scheduled["state"] == "awaiting_approval" and scheduled["lists"] == ["Newsdesks"]
    assert trail[2]["detail"] == "checked figures"
    assert trail[3]["before"] == {"version": 1} and trail[3]["after"] == {"version": 2}
    assert "changed: body" in trail[3]["detail"]
    table = ok(awaiting, "audit", "--release", "2", "--actor", "Ada")
    assert table.count("send.approved") == 2 and "Pat" not in table


def test_the_author_of_the_latest_text_may_not_approve_it(awaiting: Path) -> None:
    ok(
        awaiting,
        "release",
        "edit",
        "2",
        "--from",
        str(awaiting.parent / "edited.md"),
        "--as",
        "Ada",
    )
    err = refused(awaiting, "release", "approve", "2", "--as", "Ada")
    assert "Ada wrote the latest version of release 2" in err
    ok(awaiting, "release", "approve", "2", "--as", "Bea", "--role", "admin")
    assert send_states(awaiting) == {1: SendState.SCHEDULED}


def test_a_prebrief_waits_for_the_approval_with_its_public_send(
    ready_template: Path,  # noqa: F811
    tmp_path: Path,
) -> None:
    data = Path(shutil.copytree(ready_template, tmp_path / "var"))
    ok(data, "organisation", "set", "SafeLives", "--require-approval")
    ok(data, "contacts", "flag", "ann@example.com", "--vetted")
    (tmp_path / "release.md").write_text(RELEASE, encoding="utf-8")
    ok(data, "release", "create", "--from", str(tmp_path / "release.md"), "--as", "Pat")
    prebrief_at = (datetime.strptime(EMBARGO, "%Y-%m-%d %H:%M") - timedelta(days=1)).strftime(
        "%Y-%m-%d %H:%M"
    )
    ok(
        data,
        *("release", "schedule", "2", "--to", "Newsdesks", "--embargo", EMBARGO),
        *("--tz", "Europe/London", "--prebrief-at", prebrief_at, "--as", "Pat"),
    )
    states = send_states(data)
    assert set(states.values()) == {SendState.AWAITING_APPROVAL} and len(states) == 3
    refused(data, "release", "lift", "2", "--as", "Pat")  # nothing goes before approval
    ok(data, "release", "approve", "2", "--as", "Ada")
    assert set(send_states(data).values()) == {SendState.SCHEDULED}


def test_a_viewer_changes_nothing(awaiting: Path) -> None:
    err = refused(awaiting, "release", "cancel", "2", "--as", "Vic", "--role", "viewer")
    assert "Vic is a viewer and may not" in err
    assert send_states(awaiting) == {1: SendState.AWAITING_APPROVAL}
    err = refused(awaiting, "lists", "create", "Viewers", "--as", "Vic", "--role", "viewer")
    assert "viewer" in err
    assert "Viewers" not in ok(awaiting, "lists", "show")
    assert "Newsdesks" in ok(awaiting, "lists", "show")  # reading stays open to a viewer


# --- the core, on SQLite and PostgreSQL ---


def test_approval_after_the_embargo_passed_is_refused(runtime: Runtime) -> None:
    now = datetime.now(UTC)
    runtime.act_as(Actor("Pat", Role.PRESS_OFFICER))
    with runtime.sessions.begin() as session:
        save_organisation(session, name="SafeLives", now=now, require_approval=True)
        import_contacts(
            session,
            parse_contacts_csv(io.StringIO("email,name\nann@example.com,Ann Archer\n")),
            now=now,
        )
        create_list(session, "Desk", now=now)
        add_to_list(session, "Desk", ["ann@example.com"])
        release = create_release(
            session, parse_release_markdown(RELEASE, read_file=no_files), now=now
        )
        scheduled = schedule_send(
            session,
            release_id=release.id,
            list_names=["Desk"],
            embargo_at=now + timedelta(minutes=5),
            embargo_zone="Europe/London",
            now=now,
            batch_size=10,
        )
    runtime.act_as(Actor("Ada", Role.APPROVER))
    with runtime.sessions.begin() as session, pytest.raises(InvalidStateError, match="passed"):
        approve_release(session, release_id=release.id, now=now + timedelta(minutes=6))
    with runtime.sessions.begin() as session:
        assert session.get(Send, scheduled.send_id).state == SendState.AWAITING_APPROVAL
        approve_release(session, release_id=release.id, now=now + timedelta(minutes=1))
    runtime.act_as(Actor("Pat", Role.PRESS_OFFICER))
    with runtime.sessions.begin() as session, pytest.raises(PermissionDeniedError):
        approve_release(session, release_id=release.id, now=now)


def test_the_database_refuses_to_change_or_delete_audit_entries(runtime: Runtime) -> None:
    runtime.act_as(Actor("Pat", Role.PRESS_OFFICER))
    with runtime.sessions.begin() as session:
        create_list(session, "Desk", now=datetime.now(UTC))
    with runtime.sessions() as session:
        (entry,) = session.scalars(select(AuditEntry)).all()
        assert (entry.action, entry.actor) == ("list.created", "Pat") and "Desk" in entry.target
    for statement in (
        "UPDATE audit_entries SET actor = 'Mallory'",
        "DELETE FROM audit_entries",
    ):
        with runtime.sessions() as session, pytest.raises(DBAPIError, match="append-only"):
            session.execute(text(statement))
            session.commit()
    if runtime.engine.dialect.name == "postgresql":
        with runtime.sessions() as session, pytest.raises(DBAPIError, match="append-only"):
            session.execute(text("TRUNCATE audit_entries"))
            session.commit()
    with runtime.sessions() as session:
        assert session.scalars(select(AuditEntry.actor)).all() == ["Pat"]
