"""Sends in the API: where each stands, as `distributor status` shows it, and a person's
hands on one in flight: put failed deliveries back in line (`deliveries retry`), and, for
admins, pause and resume it (`send pause`, `send resume`)."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Body, Query

from distributor.engine.dbclock import read_database_time
from distributor.errors import NotFoundError
from distributor.send_control import pause_send, resume_send, retry_deliveries
from distributor.states import DeliveryState, SendState
from distributor.status import send_statuses
from distributor.web.auth import Admin, Caller, Changer, Reader
from distributor.web.pagination import PageModel, Paging, page_model, page_of
from distributor.web.params import MAX_ID, SendId
from distributor.web.problems import PROBLEM_RESPONSES
from distributor.web.schemas import SendOut, SendStatusOut, send_out, send_status_out
from distributor.web.schemas_sends import RetriedOut, RetryIn

router = APIRouter(tags=["sends"], responses=PROBLEM_RESPONSES)


@router.get("/sends")
def list_sends(
    caller: Reader,
    paging: Paging,
    release_id: Annotated[
        int | None, Query(ge=1, le=MAX_ID, description="Only this release's sends.")
    ] = None,
    state: Annotated[
        list[SendState] | None, Query(description="Only sends in these states.")
    ] = None,
) -> PageModel[SendStatusOut]:
    """Every send, oldest first, with its deliveries by state and failures by reason."""
    with caller.session() as session:
        statuses = send_statuses(session)
    chosen = [
        s
        for s in statuses
        if (release_id is None or s.release_id == release_id) and (not state or s.state in state)
    ]
    return page_model(page_of(chosen, paging), send_status_out)


def _status(caller: Caller, send_id: int) -> SendOut:
    with caller.session() as session:
        statuses = send_statuses(session, send_id, with_phases=True)
    main = next((s for s in statuses if s.send_id == send_id), None)
    if main is None:
        raise NotFoundError(f"no send with id {send_id}")
    return send_out(main, [s for s in statuses if s.send_id != send_id])


@router.get("/sends/{send_id}")
def send_status(caller: Reader, send_id: SendId) -> SendOut:
    """Where a send stands: deliveries by state, timings, failures by reason, and its
    pre-brief and notices."""
    return _status(caller, send_id)


@router.post("/sends/{send_id}/retry")
def retry(
    caller: Changer, send_id: SendId, body: Annotated[RetryIn | None, Body()] = None
) -> RetriedOut:
    """Put failed and/or bounced deliveries back in line; suppressed addresses stay
    suppressed."""
    states = [DeliveryState(s) for s in (body or RetryIn()).states]
    with caller.transaction() as session:
        count = retry_deliveries(
            session,
            send_id=send_id,
            states=states,
            now=read_database_time(session, caller.runtime.database_clock),
        )
    return RetriedOut(send_id=send_id, retried=count)


@router.post("/sends/{send_id}/pause")
def pause(caller: Admin, send_id: SendId) -> SendOut:
    """Stop further claims: workers finish the message in hand and claim nothing more."""
    with caller.transaction() as session:
        pause_send(
            session, send_id=send_id, now=read_database_time(session, caller.runtime.database_clock)
        )
    return _status(caller, send_id)


@router.post("/sends/{send_id}/resume")
def resume(caller: Admin, send_id: SendId) -> SendOut:
    """Carry on with a paused send, or send a held one however late it is."""
    with caller.transaction() as session:
        resume_send(
            session,
            send_id=send_id,
            now=read_database_time(session, caller.runtime.database_clock),
            arm_lead=timedelta(seconds=caller.runtime.settings.arm_lead_seconds),
        )
    return _status(caller, send_id)
