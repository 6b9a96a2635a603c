"""Releases from the command line: list, show and edit, with --json, and scheduling twice."""

from __future__ import annotations

import json
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import update

from distributor.engine.dispatch import RecordingDispatcher
from distributor.engine.tick import SchedulerPolicy, tick
from distributor.models import Send
from distributor.runtime import Runtime
from distributor.settings import Settings
from tests.test_cli import EMBARGO, HEADLINE, ok, ready_template, run  # noqa: F401 - fixture

NEW_TEXT = """Charity sets out five steps for police forces

LONDON, 14th November 2017

The charity today set out five steps that every force can take this winter.

Notes to editors
The charity works with victims of domestic abuse.
"""


@pytest.fixture
def scheduled(ready_template: Path, tmp_path: Path) -> Path:  # noqa: F811
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


def refused(data: Path, *args: str) -> str:
    result = run(data, *args)
    assert result.returncode != 0, result.stdout
    assert result.stderr.startswith("error: "), result.stderr
    return result.stderr


def arm_now(data: Path) -> None:
    rt = Runtime(Settings(data_dir=data))
    try:
        with rt.sessions.begin() as session:
            session.execute(
                update(Send).values(embargo_at=datetime.now(UTC) + timedelta(seconds=30))
            )
        policy = SchedulerPolicy(arm_lead=timedelta(minutes=1), redispatch_after=timedelta(hours=1))
        assert tick(rt.sessions, RecordingDispatcher(), now=datetime.now(UTC), policy=policy).armed
    finally:
        rt.close()


def test_release_list_and_show_carry_the_same_facts_as_json(scheduled: Path) -> None:
    table = ok(scheduled, "release", "list")
    assert "scheduled" in table and "Europe/London" in table and "0/3" in table
    assert HEADLINE[:40] in table
    (listed,) = json.loads(ok(scheduled, "release", "list", "--json"))
    assert listed["release_id"] == 1
    assert listed["state"] == "scheduled"
    assert (listed["sent"], listed["recipients"], listed["sends"]) == (0, 3, 1)
    assert listed["embargo_local"] == f"{EMBARGO} Europe/London"
    assert listed["embargo_at"].endswith("+00:00")

    shown = ok(scheduled, "release", "show", "1")
    assert shown.startswith(f"release 1: {HEADLINE}")
    assert "three police forces" in shown.lower() or "police" in shown
    assert "send 1 (release 1, scheduled)" in shown
    assert "audience: 3 when scheduled (an estimate)" in shown
    detail = json.loads(ok(scheduled, "release", "show", "1", "--json"))
    assert detail["summary"]["headline"] == HEADLINE
    assert detail["body"] and detail["body"] in shown
    (send,) = detail["sends"]
    assert (send["send_id"], send["state"], send["estimated_recipients"]) == (1, "scheduled", 3)
    assert send["counts"] == {"pending": 3}


def test_an_empty_database_lists_no_releases_and_an_unknown_one_is_refused(
    tmp_path: Path,
) -> None:
    data = tmp_path / "var"
    ok(data, "db", "upgrade")
    assert "no releases yet" in ok(data, "release", "list")
    assert json.loads(ok(data, "release", "list", "--json")) == []
    assert "no release with id 7" in refused(data, "release", "show", "7")


def test_edit_before_arming_changes_the_text_and_is_refused_once_armed(
    scheduled: Path, tmp_path: Path
) -> None:
    new = tmp_path / "new.txt"
    new.write_text(NEW_TEXT, encoding="utf-8")
    edited = ok(scheduled, "release", "edit", "1", "--from", str(new))
    assert "edited release 1: Charity sets out five steps for police forces" in edited
    assert "goes out " in edited
    detail = json.loads(ok(scheduled, "release", "show", "1", "--json"))
    assert detail["summary"]["headline"] == "Charity sets out five steps for police forces"
    assert "five steps that every force" in detail["body"]
    assert detail["summary"]["edited_at"]
    # what a journalist gets is the new text
    eml = tmp_path / "preview.eml"
    ok(scheduled, "release", "preview", "1", "--eml", str(eml))
    assert b"five steps that every force" in eml.read_bytes()

    # a bad edit is refused and changes nothing
    empty = tmp_path / "empty.txt"
    empty.write_text("Headline only\n", encoding="utf-8")
    assert "no body text" in refused(scheduled, "release", "edit", "1", "--from", str(empty))

    arm_now(scheduled)
    message = refused(scheduled, "release", "edit", "1", "--from", str(new))
    assert "can no longer be edited: send 1 is armed" in message
    assert "five steps" in json.loads(ok(scheduled, "release", "show", "1", "--json"))["body"]


def test_scheduling_the_same_list_twice_needs_again(scheduled: Path) -> None:
    args = (
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
    message = refused(scheduled, *args)
    assert "3 contact(s) of this audience already have release 1" in message
    assert "--again" in message
    assert len(json.loads(ok(scheduled, "release", "list", "--json"))) == 1
    assert "scheduled send 2: 3 recipient(s)" in ok(scheduled, *args, "--again")


def test_a_prebrief_from_the_command_line_and_its_phases_in_status(
    ready_template: Path,  # noqa: F811
    tmp_path: Path,
) -> None:
    data = Path(shutil.copytree(ready_template, tmp_path / "var"))
    ok(data, "contacts", "flag", "ann@example.com", "--vetted")
    scheduled = ok(
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
        "--prebrief-now",
    )
    assert "pre-brief send 2: the embargoed copy to 1 vetted journalist(s)" in scheduled
    assert "lift notice (send 3)" in scheduled
    status = ok(data, "status", "1")
    assert "send 1 (release 1, scheduled)" in status
    assert "pre-brief send 2 (of send 1, scheduled)" in status
    assert "lift notice send 3 (of send 1, scheduled)" in status
    assert "--prebrief-to narrows" in refused(
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
        "--prebrief-to",
        "Newsdesks",
        "--again",
    )
    moved = ok(
        data,
        "release",
        "move",
        "1",
        "--embargo",
        EMBARGO.replace("09:00", "11:00"),
        "--tz",
        "Europe/London",
    )
    assert "embargo moved to 11:00 BST" in moved
