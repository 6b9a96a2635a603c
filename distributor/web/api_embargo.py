"""Sending a release under embargo from the API: schedule it, move the embargo, lift it now,
or cancel the release, with the core functions `release schedule`, `release move`,
`release lift` and `release cancel` call. Times are local times in an IANA zone, read with
the rules the command line and the pages use."""

from __future__ import annotations

from datetime import datetime, timedelta

from fastapi import APIRouter

from distributor.embargo_changes import lift_embargo, move_embargo, withdraw_release
from distributor.lists import get_lists
from distributor.prebriefs import PrebriefRequest
from distributor.releases import get_release
from distributor.scheduling import schedule_send
from distributor.segments.store import get_segments
from distributor.web.auth import Caller, Changer
from distributor.web.editor_zones import TypedEmbargo, read_embargo
from distributor.web.params import ReleaseId
from distributor.web.problems import PROBLEM_RESPONSES, blaming, refusal
from distributor.web.schemas_embargo import (
    EmbargoChangeOut,
    MoveIn,
    ScheduledOut,
    ScheduleIn,
    WithdrawalOut,
    change_out,
    scheduled_out,
    withdrawal_out,
)

router = APIRouter(tags=["embargo"], responses=PROBLEM_RESPONSES)


def _instant(caller: Caller, text: str, zone: str, *, at: str, zone_at: str) -> TypedEmbargo:
    """The local time `text` in `zone` as an instant; a problem names the time's field
    (`at`) or the zone's (`zone_at`)."""
    typed = read_embargo(
        text, zone, now=caller.now(), max_ahead=caller.runtime.settings.max_embargo_ahead
    )
    if typed.zone_error:
        raise refusal(422, typed.zone_error, pointer=zone_at)
    if typed.time_error or typed.at is None:
        raise refusal(422, typed.time_error or "give the date and the time", pointer=at)
    return typed


def _prebrief(caller: Caller, given: ScheduleIn, now: datetime) -> PrebriefRequest | None:
    if given.prebrief is None:
        return None
    at = now
    if not given.prebrief.now:
        typed = _instant(
            caller, given.prebrief.at, given.zone, at="#/prebrief/at", zone_at="#/zone"
        )
        assert typed.at is not None
        at = typed.at
    return PrebriefRequest(
        at=at,
        list_names=tuple(given.prebrief.lists),
        segment_names=tuple(given.prebrief.segments),
    )


@router.post("/releases/{release_id}/schedule", status_code=201)
def schedule(caller: Changer, release_id: ReleaseId, given: ScheduleIn) -> ScheduledOut:
    """Schedule the release to lists and segments at the embargo, as `release schedule`
    does. The audience is counted now and read again just before the lift. Where the
    organisation requires approval, the send waits for a second person."""
    now = caller.now()
    typed = _instant(caller, given.embargo, given.zone, at="#/embargo", zone_at="#/zone")
    assert typed.at is not None
    prebrief = _prebrief(caller, given, now)
    settings = caller.runtime.settings
    with caller.transaction() as session:
        get_release(session, release_id)
        # Each name looked up first, so that one naming nothing is blamed on its field.
        with blaming(pointer="#/lists"):
            get_lists(session, given.lists)
        with blaming(pointer="#/segments"):
            get_segments(session, given.segments)
        if given.prebrief is not None:
            with blaming(pointer="#/prebrief/lists"):
                get_lists(session, given.prebrief.lists)
            with blaming(pointer="#/prebrief/segments"):
                get_segments(session, given.prebrief.segments)
        with blaming(pointer="#"):
            scheduled = schedule_send(
                session,
                release_id=release_id,
                list_names=given.lists,
                segment_names=given.segments,
                embargo_at=typed.at,
                embargo_zone=typed.zone,
                now=now,
                batch_size=settings.batch_size,
                again=given.again,
                prebrief=prebrief,
            )
    return scheduled_out(scheduled)


@router.post("/releases/{release_id}/move")
def move(caller: Changer, release_id: ReleaseId, given: MoveIn) -> EmbargoChangeOut:
    """Move the embargo, earlier or later, while nothing of the public send has gone out;
    journalists who hold the embargoed copy are told at once."""
    typed = _instant(caller, given.embargo, given.zone, at="#/embargo", zone_at="#/zone")
    assert typed.at is not None
    settings = caller.runtime.settings
    with caller.transaction() as session:
        change = move_embargo(
            session,
            release_id=release_id,
            embargo_at=typed.at,
            embargo_zone=typed.zone,
            now=caller.now(),
            arm_lead=timedelta(seconds=settings.arm_lead_seconds),
            batch_size=settings.batch_size,
        )
    return change_out(change)


@router.post("/releases/{release_id}/lift")
def lift(caller: Changer, release_id: ReleaseId) -> EmbargoChangeOut:
    """Lift the embargo now: the release goes to everyone within seconds."""
    settings = caller.runtime.settings
    with caller.transaction() as session:
        change = lift_embargo(
            session,
            release_id=release_id,
            now=caller.now(),
            arm_lead=timedelta(seconds=settings.arm_lead_seconds),
        )
    return change_out(change)


@router.post("/releases/{release_id}/cancel")
def cancel(caller: Changer, release_id: ReleaseId) -> WithdrawalOut:
    """Withdraw the release: every send of it that has not gone out stops, and journalists
    who hold the embargoed copy are told at once not to publish."""
    with caller.transaction() as session:
        stopped, change = withdraw_release(
            session,
            release_id=release_id,
            now=caller.now(),
            batch_size=caller.runtime.settings.batch_size,
        )
    return withdrawal_out(stopped, change)
