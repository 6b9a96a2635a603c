"""Scheduling a release: the audience from lists and segments with its live count, the embargo
in the officer's zone shown back in others, an optional pre-brief; then the embargo as it
stands, with its countdown and the forms to move, lift or cancel it (editor_embargo.py).

Scheduling calls `schedule_send` as `release schedule` does.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import JSONResponse, RedirectResponse, Response

from distributor.errors import DistributorError, page_words
from distributor.lists import list_sizes
from distributor.releases.overview import release_detail
from distributor.scheduling import ScheduledSend, schedule_send
from distributor.segments.store import list_segments
from distributor.states import ACTIVE_SEND_STATES, SendKind, SendState
from distributor.status import SendStatus
from distributor.web.auth import Caller, Changer
from distributor.web.editor_page import render_editor_page, zone_names
from distributor.web.editor_preview import PostedForm
from distributor.web.editor_schedule_form import (
    AudienceCount,
    ScheduleForm,
    count_chosen,
    embargo_readings,
    new_schedule_form,
    prebrief_of,
    schedule_form_from,
    typed_embargo,
)
from distributor.web.editor_zones import Reading, countdown, default_other_zones, readings
from distributor.web.pages import in_zone
from distributor.web.params import ReleaseId
from distributor.web.problems import status_of
from distributor.web.sessions import flash

log = logging.getLogger(__name__)
router = APIRouter(include_in_schema=False)


def schedule_path(release_id: int) -> str:
    return f"/releases/{release_id}/schedule"


@dataclass
class MoveForm:
    embargo: str = ""
    zone: str = ""
    errors: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class CurrentEmbargo:
    """The public send waiting for its embargo, as the officer reads it."""

    send: SendStatus
    readings: list[Reading]
    countdown: str
    prebriefs: list[SendStatus]

    @property
    def awaiting_approval(self) -> bool:
        return self.send.state is SendState.AWAITING_APPROVAL


def current_embargo(
    sends: list[SendStatus], *, own_zone: str, now: datetime
) -> CurrentEmbargo | None:
    public = [s for s in sends if s.kind is SendKind.PUBLIC and s.state in ACTIVE_SEND_STATES]
    if not public:
        return None
    send = public[0]
    prebriefs = [
        s
        for s in sends
        if s.kind is SendKind.PREBRIEF
        and s.parent_send_id == send.send_id
        and s.state in ACTIVE_SEND_STATES
    ]
    zones = [send.embargo_zone, *default_other_zones(own_zone)]
    return CurrentEmbargo(
        send=send,
        readings=readings(send.embargo_at, own_zone=own_zone, others=zones)[:5],
        countdown=countdown(send.embargo_at, now),
        prebriefs=prebriefs,
    )


def schedule_page(
    request: Request,
    caller: Caller,
    release_id: int,
    *,
    form: ScheduleForm | None = None,
    audience: AudienceCount | None = None,
    shown: list[Reading] | None = None,
    countdown_text: str = "",
    move: MoveForm | None = None,
    status: int = 200,
) -> Response:
    own_zone = caller.account.time_zone
    now = caller.now()
    with caller.session() as session:
        detail = release_detail(session, release_id)
        lists = list_sizes(session)
        segments = [(s.name, s.filter_text) for s in list_segments(session)]
    context: dict[str, Any] = {
        "release": detail,
        "summary": detail.summary,
        "current": current_embargo(detail.sends, own_zone=own_zone, now=now),
        "lists": lists,
        "segments": segments,
        "form": form or new_schedule_form(own_zone),
        "audience": audience,
        "readings": shown or [],
        "countdown_text": countdown_text,
        "move": move or MoveForm(zone=own_zone),
        "zones": zone_names(),
        "now": now,
    }
    return render_editor_page(
        request, caller, "editor_schedule.html.j2", context, status_code=status
    )


@router.get("/releases/{release_id}/schedule")
def schedule_form(request: Request, caller: Changer, release_id: ReleaseId) -> Response:
    return schedule_page(request, caller, release_id)


@router.post("/releases/{release_id}/schedule/check")
def check_schedule(caller: Changer, release_id: ReleaseId, posted: PostedForm) -> Response:
    """The live part of the form, as JSON: the audience count after de-duplication and
    suppression, the embargo read back in other zones, and any problem by its field.
    A field not filled in yet is no problem here."""
    form = schedule_form_from(posted, own_zone=caller.account.time_zone)
    settings = caller.runtime.settings
    now = caller.now()
    with caller.session() as session:
        audience = count_chosen(session, form, required=False)
    typed = typed_embargo(form, now=now, max_ahead=settings.max_embargo_ahead, required=False)
    shown = embargo_readings(form, typed.at)
    prebrief_of(form, now=now, max_ahead=settings.max_embargo_ahead, required=False)
    return JSONResponse(
        {
            "recipients": audience.recipients if audience else None,
            "left_out": audience.left_out if audience else None,
            "readings": [{"zone": r.zone, "text": r.text, "own": r.own} for r in shown],
            "countdown": countdown(typed.at, now) if typed.at else "",
            "errors": form.errors,
        }
    )


@router.post("/releases/{release_id}/schedule")
def schedule(
    request: Request, caller: Changer, release_id: ReleaseId, posted: PostedForm
) -> Response:
    """Schedule the send, or (the "Check" button, for browsers without script) show the
    count and the embargo read back without scheduling."""
    form = schedule_form_from(posted, own_zone=caller.account.time_zone)
    checking = posted.get("action") == "check"
    settings = caller.runtime.settings
    now = caller.now()
    with caller.session() as session:
        audience = count_chosen(session, form, required=not checking)
    typed = typed_embargo(form, now=now, max_ahead=settings.max_embargo_ahead, required=True)
    shown = embargo_readings(form, typed.at)
    prebrief = prebrief_of(form, now=now, max_ahead=settings.max_embargo_ahead, required=True)
    if checking or form.errors or typed.at is None:
        return schedule_page(
            request,
            caller,
            release_id,
            form=form,
            audience=audience,
            shown=shown,
            countdown_text=countdown(typed.at, now) if typed.at else "",
            status=200 if checking else 422,
        )
    try:
        with caller.transaction() as session:
            scheduled = schedule_send(
                session,
                release_id=release_id,
                list_names=form.lists,
                segment_names=form.segments,
                embargo_at=typed.at,
                embargo_zone=form.zone,
                now=now,
                batch_size=settings.batch_size,
                again=form.again,
                prebrief=prebrief,
            )
    except DistributorError as exc:
        form.error(_field_of_refusal(exc, prebrief_asked=prebrief is not None), page_words(exc))
        return schedule_page(
            request,
            caller,
            release_id,
            form=form,
            audience=audience,
            shown=shown,
            status=status_of(exc),
        )
    log.info("send scheduled from the dashboard", extra={"send_id": scheduled.send_id})
    flash(request, _scheduled_message(scheduled, form))
    return RedirectResponse(schedule_path(release_id), status_code=303)


def _field_of_refusal(exc: DistributorError, *, prebrief_asked: bool) -> str:
    text = str(exc)
    if "pre-brief" in text or (prebrief_asked and "embargoed copy" in text):
        return "prebrief_at"
    if "audience" in text or "lists and segments" in text or "no list" in text:
        return "audience"
    if "embargo" in text:
        return "embargo"
    return "form"


def _scheduled_message(scheduled: ScheduledSend, form: ScheduleForm) -> str:
    at = scheduled.embargo_at
    parts = [
        f"Scheduled send {scheduled.send_id} to {scheduled.recipients:,} recipient(s) as the "
        f"lists stand now, at {in_zone(at, form.zone)} ({at:%Y-%m-%d %H:%M} UTC); the lists "
        "are read again just before the lift."
    ]
    if scheduled.prebrief is not None:
        parts.append(
            f"Pre-brief send {scheduled.prebrief.send_id}: the embargoed copy to "
            f"{scheduled.prebrief.recipients:,} vetted journalist(s) at "
            f"{in_zone(scheduled.prebrief.at, form.zone)}."
        )
    if scheduled.state is SendState.AWAITING_APPROVAL:
        parts.append("Nothing goes out until an approver other than you approves it.")
    if scheduled.left_out:
        parts.append(f"{scheduled.left_out:,} suppressed or forgotten contact(s) are left out.")
    return " ".join(parts)
