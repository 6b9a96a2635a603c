"""Moving, lifting and cancelling an embargo from the dashboard, each after a confirmation
step, with the core functions `release move`, `release lift` and `release cancel` call."""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import RedirectResponse, Response

from distributor.embargo_changes import EmbargoChange, lift_embargo, move_embargo, withdraw_release
from distributor.errors import DistributorError, page_words
from distributor.releases.overview import release_detail
from distributor.states import ACTIVE_SEND_STATES
from distributor.web.auth import Caller, Changer
from distributor.web.editor_page import render_editor_page
from distributor.web.editor_preview import PostedForm
from distributor.web.editor_schedule import (
    MoveForm,
    current_embargo,
    schedule_page,
    schedule_path,
)
from distributor.web.editor_zones import read_embargo, readings
from distributor.web.pages import in_zone
from distributor.web.params import ReleaseId
from distributor.web.problems import status_of
from distributor.web.sessions import flash

log = logging.getLogger(__name__)
router = APIRouter(include_in_schema=False)

NOTHING_WAITING = (
    "this release has no send waiting for its embargo: schedule it first, or see its page "
    "for the sends it has"
)


def _confirmed(posted: PostedForm) -> bool:
    return posted.get("confirmed") == "yes"


def _text(posted: PostedForm, name: str) -> str:
    value = posted.get(name)
    return value.strip() if isinstance(value, str) else ""


def _refused(
    request: Request, caller: Caller, release_id: int, move: MoveForm, status: int
) -> Response:
    return schedule_page(request, caller, release_id, move=move, status=status)


def _confirmation(request: Request, caller: Caller, release_id: int, **context: Any) -> Response:
    with caller.session() as session:
        detail = release_detail(session, release_id)
    current = current_embargo(detail.sends, own_zone=caller.account.time_zone, now=caller.now())
    values: dict[str, Any] = {
        "summary": detail.summary,
        "current": current,
        "hidden": {},
        "after": [],
        "danger": False,
        "now": caller.now(),
    }
    values.update(context)
    return render_editor_page(request, caller, "editor_confirm.html.j2", values)


def _waiting(caller: Caller, release_id: int, *, any_kind: bool = False) -> bool:
    with caller.session() as session:
        sends = release_detail(session, release_id).sends
    if any_kind:
        return any(s.state in ACTIVE_SEND_STATES for s in sends)
    return current_embargo(sends, own_zone=caller.account.time_zone, now=caller.now()) is not None


def _notices(change: EmbargoChange, what: str) -> str:
    parts = []
    if change.notice_send_id is not None:
        parts.append(
            f"A notice that the embargo was {what} is going now to the {change.notified:,} "
            "journalist(s) who hold the embargoed copy."
        )
    for send_id in change.cancelled_prebriefs:
        parts.append(f"Pre-brief send {send_id} is cancelled: it could not go out before the lift.")
    return " ".join(parts)


@router.post("/releases/{release_id}/move")
def move(request: Request, caller: Changer, release_id: ReleaseId, posted: PostedForm) -> Response:
    form = MoveForm(embargo=_text(posted, "embargo"), zone=_text(posted, "zone"))
    settings = caller.runtime.settings
    now = caller.now()
    typed = read_embargo(form.embargo, form.zone, now=now, max_ahead=settings.max_embargo_ahead)
    if typed.zone_error:
        form.errors["zone"] = typed.zone_error
    elif typed.time_error:
        form.errors["embargo"] = typed.time_error
    elif not _waiting(caller, release_id):
        form.errors["embargo"] = NOTHING_WAITING
    if form.errors or typed.at is None:
        return _refused(request, caller, release_id, form, 409 if typed.at else 422)
    if not _confirmed(posted):
        own = caller.account.time_zone
        return _confirmation(
            request,
            caller,
            release_id,
            action=f"/releases/{release_id}/move",
            title="Move the embargo?",
            button="Move the embargo",
            explanation="Journalists who already hold the embargoed copy are told of the new "
            "time at once. The release goes out at the new time instead.",
            hidden={"embargo": form.embargo, "zone": form.zone},
            after=readings(typed.at, own_zone=own, others=[form.zone]),
        )
    try:
        with caller.transaction() as session:
            change = move_embargo(
                session,
                release_id=release_id,
                embargo_at=typed.at,
                embargo_zone=form.zone,
                now=now,
                arm_lead=timedelta(seconds=settings.arm_lead_seconds),
                batch_size=settings.batch_size,
            )
    except DistributorError as exc:
        form.errors["embargo"] = page_words(exc)
        return _refused(request, caller, release_id, form, status_of(exc))
    log.info("embargo moved from the dashboard", extra={"release_id": release_id})
    moved_to = in_zone(change.embargo_at, form.zone)
    flash(request, f"Embargo moved to {moved_to}. {_notices(change, 'moved')}".strip())
    return RedirectResponse(schedule_path(release_id), status_code=303)


@router.post("/releases/{release_id}/lift")
def lift(request: Request, caller: Changer, release_id: ReleaseId, posted: PostedForm) -> Response:
    if not _waiting(caller, release_id):
        return _refused(
            request, caller, release_id, MoveForm(errors={"lift": NOTHING_WAITING}), 409
        )
    if not _confirmed(posted):
        return _confirmation(
            request,
            caller,
            release_id,
            action=f"/releases/{release_id}/lift",
            title="Lift the embargo now?",
            button="Lift the embargo now",
            explanation="The release goes to every recipient within seconds, and it can no "
            "longer be moved or withdrawn before anyone reads it.",
        )
    settings = caller.runtime.settings
    try:
        with caller.transaction() as session:
            change = lift_embargo(
                session,
                release_id=release_id,
                now=caller.now(),
                arm_lead=timedelta(seconds=settings.arm_lead_seconds),
            )
    except DistributorError as exc:
        form = MoveForm(errors={"lift": page_words(exc)})
        return _refused(request, caller, release_id, form, status_of(exc))
    log.info("embargo lifted from the dashboard", extra={"release_id": release_id})
    sends = ", ".join(map(str, change.moved_sends))
    lifted = f"Embargo lifted: send(s) {sends} go out within seconds."
    flash(request, f"{lifted} {_notices(change, 'lifted')}".strip())
    return RedirectResponse(schedule_path(release_id), status_code=303)


@router.post("/releases/{release_id}/cancel")
def cancel(
    request: Request, caller: Changer, release_id: ReleaseId, posted: PostedForm
) -> Response:
    if not _waiting(caller, release_id, any_kind=True):
        form = MoveForm(errors={"cancel": "this release has no send left to cancel"})
        return _refused(request, caller, release_id, form, 409)
    if not _confirmed(posted):
        return _confirmation(
            request,
            caller,
            release_id,
            action=f"/releases/{release_id}/cancel",
            title="Cancel this release?",
            button="Cancel the release",
            explanation="Every send of it that has not gone out stops. Journalists who "
            "already hold the embargoed copy are told at once not to publish it.",
            danger=True,
        )
    settings = caller.runtime.settings
    try:
        with caller.transaction() as session:
            stopped, change = withdraw_release(
                session, release_id=release_id, now=caller.now(), batch_size=settings.batch_size
            )
    except DistributorError as exc:
        form = MoveForm(errors={"cancel": page_words(exc)})
        return _refused(request, caller, release_id, form, status_of(exc))
    log.info("release withdrawn from the dashboard", extra={"release_id": release_id})
    stopped_text = " ".join(
        f"Send {send_id}: {count:,} delivery(ies) will not be sent."
        for send_id, count in stopped.items()
    )
    flash(request, f"Release cancelled. {stopped_text} {_notices(change, 'withdrawn')}".strip())
    return RedirectResponse(schedule_path(release_id), status_code=303)
