"""Releases in the API: list and read them, write a draft, edit it, approve it.

Each route calls the core function its command calls: `release list`, `release show`,
`release create`, `release edit`, `release approve`.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated

from fastapi import APIRouter, Body, Request, Response

from distributor.approvals import approve_release
from distributor.errors import DistributorError
from distributor.releases import InvalidReleaseError, create_release, get_release
from distributor.releases.content import draft_of
from distributor.releases.draft import ReleaseDraft
from distributor.releases.editing import edit_release
from distributor.releases.overview import release_detail, release_summaries
from distributor.web.auth import Approver, Caller, Changer, Reader
from distributor.web.editor_form import GENERAL, form_of
from distributor.web.editor_problems import field_of_problem, problem_lines
from distributor.web.pagination import PageModel, Paging, page_model, page_of
from distributor.web.params import ReleaseId
from distributor.web.problems import (
    PROBLEM_RESPONSES,
    FieldProblem,
    FieldRefusal,
    refusal,
    status_of,
)
from distributor.web.schemas import (
    ApprovalOut,
    ApproveIn,
    ReleaseDetailOut,
    ReleaseSummaryOut,
    approval_out,
    detail_out,
    summary_out,
)
from distributor.web.schemas_releases import (
    ReleaseChangesIn,
    ReleaseIn,
    SavedReleaseOut,
    changed_draft,
    new_draft,
)

router = APIRouter(tags=["releases"], responses=PROBLEM_RESPONSES)

# The editor's field keys, for the fields whose JSON name differs or that are numbered.
NUMBERED_FIELDS = {"quote": "quotes", "contact": "press_contacts", "link": "links"}


@router.get("/releases")
def list_releases(caller: Reader, paging: Paging) -> PageModel[ReleaseSummaryOut]:
    """Releases, newest first, with their state, embargo and progress."""
    with caller.session() as session:
        summaries = release_summaries(session)
    return page_model(page_of(summaries, paging), summary_out)


@router.get("/releases/{release_id}")
def show_release(caller: Reader, release_id: ReleaseId) -> ReleaseDetailOut:
    """A release's content, and the status of each of its sends."""
    with caller.session() as session:
        return detail_out(release_detail(session, release_id))


def _pointer(field: str) -> str:
    """The JSON pointer of the editor's field `field` ("quote-2", "headline", ...)."""
    if field == GENERAL or field.startswith(("file-", "new_file")):
        return "#"
    kind, _, number = field.partition("-")
    if number.isdigit() and kind in NUMBERED_FIELDS:
        return f"#/{NUMBERED_FIELDS[kind]}/{int(number) - 1}"
    return f"#/{field}"


@contextmanager
def release_problems(draft: ReleaseDraft) -> Iterator[None]:
    """The core's problems with a draft, each at the field it names, as the editor places
    them next to its fields."""
    try:
        yield
    except DistributorError as exc:
        # An organisation named in the body that does not exist is the body's problem.
        status = 422 if status_of(exc) == 404 else status_of(exc)
        messages = exc.problems if isinstance(exc, InvalidReleaseError) else [str(exc)]
        form = form_of(draft, release_id=None)
        errors = [
            FieldProblem(detail=line, pointer=_pointer(field_of_problem(line, form)))
            for line in problem_lines(messages)
        ]
        raise FieldRefusal(status, str(exc), errors) from exc


def _saved(caller: Caller, release_id: int, warnings: list[str]) -> SavedReleaseOut:
    with caller.session() as session:
        detail = detail_out(release_detail(session, release_id))
    return SavedReleaseOut(**detail.model_dump(), warnings=warnings)


@router.post("/releases", status_code=201)
def create(
    caller: Changer, given: ReleaseIn, request: Request, response: Response
) -> SavedReleaseOut:
    """Store a new release (a draft until it is scheduled), checked and rendered through its
    templates first, as `release create` does."""
    draft = new_draft(given)
    warnings: list[str] = []
    with release_problems(draft), caller.transaction() as session:
        release = create_release(
            session,
            draft,
            now=caller.now(),
            max_asset_bytes=caller.runtime.settings.max_attachment_bytes,
            on_warning=warnings.append,
        )
        release_id = release.id
    response.headers["Location"] = f"{request.url.path.rstrip('/')}/{release_id}"
    return _saved(caller, release_id, warnings)


@router.patch("/releases/{release_id}")
def edit(caller: Changer, release_id: ReleaseId, changes: ReleaseChangesIn) -> SavedReleaseOut:
    """Change the fields given, until a send of the release is armed, as `release edit`
    does. Editing after approval withdraws it: the sends wait for approval again."""
    if not changes.model_fields_set:
        raise refusal(422, "give at least one field to change", pointer="#")
    warnings: list[str] = []
    with caller.transaction() as session:
        draft = changed_draft(draft_of(get_release(session, release_id)), changes)
        with release_problems(draft):
            edit_release(
                session,
                release_id,
                draft,
                now=caller.now(),
                max_asset_bytes=caller.runtime.settings.max_attachment_bytes,
                on_warning=warnings.append,
            )
    return _saved(caller, release_id, warnings)


@router.post("/releases/{release_id}/approve")
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
