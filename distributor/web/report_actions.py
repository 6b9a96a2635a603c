"""What a person does from a release's report: put failed deliveries back in line, all of a
state or those of one reason (after a confirmation), look up one recipient's history, and
download every delivery as CSV."""

from __future__ import annotations

import logging
from typing import Annotated, Literal

from fastapi import APIRouter, Form, Query, Request
from sqlalchemy import select
from starlette.responses import RedirectResponse, Response, StreamingResponse

from distributor.delivery_history import recipient_history
from distributor.engine.dbclock import read_database_time
from distributor.errors import DistributorError, NotFoundError, page_words
from distributor.models import Send
from distributor.releases.overview import release_detail
from distributor.reporting.delivery_export import csv_text, delivery_rows
from distributor.reporting.failure_reasons import reasons_not_delivered
from distributor.send_control import retry_deliveries
from distributor.states import DeliveryState
from distributor.status import SendStatus, send_statuses
from distributor.web.auth import Caller, Changer, Reader
from distributor.web.pages import pages_of
from distributor.web.params import MAX_ID, ReleaseId
from distributor.web.problems import status_of
from distributor.web.report_assets import static_url
from distributor.web.report_reasons import MAX_REASON, group_delivery_ids
from distributor.web.report_view import precise_time
from distributor.web.sessions import flash

router = APIRouter(include_in_schema=False)
log = logging.getLogger(__name__)

RetryState = Literal["failed", "bounced"]
SendChoice = Annotated[int, Query(ge=1, le=MAX_ID, description="The send.")]
MAX_EMAIL = 320


def _report(release_id: int) -> str:
    return f"/releases/{release_id}/report"


def _send_of(caller: Caller, release_id: int, send_id: int) -> SendStatus:
    with caller.session() as session:
        found = send_statuses(session, send_id)
    if not found or found[0].release_id != release_id:
        raise NotFoundError(f"release {release_id} has no send {send_id}")
    return found[0]


@router.get("/releases/{release_id}/report/retry")
def retry_confirmation(
    request: Request,
    caller: Changer,
    release_id: ReleaseId,
    send_id: SendChoice,
    state: Annotated[RetryState, Query()],
    reason: Annotated[str | None, Query(max_length=MAX_REASON)] = None,
) -> Response:
    """Ask before putting deliveries back in line: how many, and why they failed; with a
    reason, only those of the report's group with that reason."""
    status = _send_of(caller, release_id, send_id)
    with caller.session() as session:
        reasons = [r for r in reasons_not_delivered(session, send_id) if r.state.value == state]
        if reason is None:
            count = status.counts.get(DeliveryState(state), 0)
        else:
            reasons = [r for r in reasons if r.reason == reason]
            count = len(
                group_delivery_ids(
                    session, send_id=send_id, state=DeliveryState(state), reason=reason
                )
            )
    return pages_of(request).render(
        request,
        "report_retry.html.j2",
        {
            "status": status,
            "state": state,
            "reason": reason,
            "count": count,
            "reasons": reasons,
            "back": f"{_report(release_id)}#send-{send_id}",
            "report_css": static_url("report.css"),
        },
        account=caller.account,
    )


@router.post("/releases/{release_id}/report/retry")
def retry(
    request: Request,
    caller: Changer,
    release_id: ReleaseId,
    send_id: Annotated[int, Form(ge=1, le=MAX_ID)],
    state: Annotated[RetryState, Form()],
    reason: Annotated[str | None, Form(max_length=MAX_REASON)] = None,
) -> Response:
    """The same as `distributor deliveries retry --send N --state STATE`; with a reason, for
    the deliveries of the report's group with that reason only."""
    _send_of(caller, release_id, send_id)
    with caller.transaction() as session:
        chosen = (
            None
            if reason is None
            else group_delivery_ids(
                session, send_id=send_id, state=DeliveryState(state), reason=reason
            )
        )
        count = retry_deliveries(
            session,
            send_id=send_id,
            states=[DeliveryState(state)],
            now=read_database_time(session, caller.runtime.database_clock),
            delivery_ids=chosen,
        )
    noun = "delivery" if count == 1 else "deliveries"
    why = f" (“{reason}”)" if reason is not None else ""
    flash(
        request,
        f"{count} {state} {noun} of send {send_id}{why} put back in line; the workers send "
        "them within a few seconds (suppressed addresses stay suppressed)."
        if count
        else f"No {state} delivery of send {send_id}{why} was left to retry.",
    )
    return RedirectResponse(f"{_report(release_id)}#send-{send_id}", status_code=303)


@router.get("/releases/{release_id}/report/recipient")
def recipient(
    request: Request,
    caller: Reader,
    release_id: ReleaseId,
    email: Annotated[str, Query(max_length=MAX_EMAIL)] = "",
) -> Response:
    """Every delivery of this release to one address, each step and the relay's replies."""
    zone = caller.account.time_zone
    error, status = "", 200
    with caller.session() as session:
        summary = release_detail(session, release_id).summary
        send_ids = set(session.scalars(select(Send.id).where(Send.release_id == release_id)))
        history = []
        if email.strip():
            try:
                history = [
                    d
                    for d in recipient_history(session, email=email.strip())
                    if d.send_id in send_ids
                ]
            except DistributorError as exc:
                error, status = page_words(exc), status_of(exc)
    return pages_of(request).render(
        request,
        "report_recipient.html.j2",
        {
            "release": summary,
            "email": email.strip(),
            "history": history,
            "error": error,
            "clock_time": lambda moment: precise_time(moment, zone),
            "report_css": static_url("report.css"),
        },
        account=caller.account,
        status_code=status,
    )


@router.get("/releases/{release_id}/report/deliveries.csv")
def deliveries_csv(caller: Reader, release_id: ReleaseId) -> Response:
    """Every delivery of the release, streamed a chunk at a time."""
    with caller.session() as session:
        release_detail(session, release_id)  # a 404 before the download starts
    log.info("delivery export started", extra={"release_id": release_id})
    return StreamingResponse(
        csv_text(delivery_rows(caller.session, release_id)),
        media_type="text/csv; charset=utf-8",
        headers={
            "Content-Disposition": (f'attachment; filename="release-{release_id}-deliveries.csv"')
        },
    )
