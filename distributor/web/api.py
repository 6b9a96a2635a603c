"""The REST API under /api/v1: JSON in and out, errors as problem details, lists in pages.

Each route calls the same core function as its command: `release list`, `release show`,
`status`, `release approve`.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body

from distributor.approvals import approve_release
from distributor.errors import NotFoundError
from distributor.releases.overview import release_detail, release_summaries
from distributor.status import send_statuses
from distributor.web.auth import Approver, Reader
from distributor.web.pagination import PageModel, Paging, page_of
from distributor.web.params import ReleaseId, SendId
from distributor.web.problems import PROBLEM_RESPONSES
from distributor.web.schemas import (
    AccountOut,
    ApprovalOut,
    ApproveIn,
    ReleaseDetailOut,
    ReleaseSummaryOut,
    SendOut,
    account_out,
    approval_out,
    detail_out,
    send_out,
    summary_out,
)

API_PREFIX = "/api/v1"

router = APIRouter(prefix=API_PREFIX, responses=PROBLEM_RESPONSES)


@router.get("/me", tags=["accounts"])
def who_am_i(caller: Reader) -> AccountOut:
    """The account the token or session belongs to."""
    return account_out(caller.account)


@router.get("/releases", tags=["releases"])
def list_releases(caller: Reader, paging: Paging) -> PageModel[ReleaseSummaryOut]:
    """Releases, newest first, with their state, embargo and progress."""
    with caller.session() as session:
        summaries = release_summaries(session)
    found = page_of(summaries, paging)
    return PageModel[ReleaseSummaryOut](
        items=[summary_out(s) for s in found.items],
        page=found.page,
        per_page=found.per_page,
        total=found.total,
        pages=found.pages,
    )


@router.get("/releases/{release_id}", tags=["releases"])
def show_release(caller: Reader, release_id: ReleaseId) -> ReleaseDetailOut:
    """A release's content, and the status of each of its sends."""
    with caller.session() as session:
        return detail_out(release_detail(session, release_id))


@router.post("/releases/{release_id}/approve", tags=["releases"])
def approve(
    caller: Approver,
    release_id: ReleaseId,
    body: Annotated[ApproveIn | None, Body()] = None,
) -> ApprovalOut:
    """Approve the release's latest text and every send of it awaiting approval. The
    approver must be neither the one who scheduled a send nor the author of the text."""
    note = " ".join((body.note if body else "").split())
    with caller.transaction() as session:
        approval = approve_release(session, release_id=release_id, now=caller.now(), note=note)
    return approval_out(approval)


@router.get("/sends/{send_id}", tags=["sends"])
def send_status(caller: Reader, send_id: SendId) -> SendOut:
    """Where a send stands: deliveries by state, timings, failures by reason, and its
    pre-brief and notices."""
    with caller.session() as session:
        statuses = send_statuses(session, send_id, with_phases=True)
    main = next((s for s in statuses if s.send_id == send_id), None)
    if main is None:
        raise NotFoundError(f"no send with id {send_id}")
    return send_out(main, [s for s in statuses if s.send_id != send_id])
