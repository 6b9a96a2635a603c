"""Segments: saved filters, built with a count and a sample of who they match, updated as
the filter is typed (the page asks for the preview fragment; without a script, the Preview
button does the same), and deleted after a confirmation."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Form, Query, Request
from starlette.responses import RedirectResponse, Response

from distributor.audience import choose_audience, count_audience
from distributor.errors import DistributorError, InvalidFilterError, NotFoundError, page_words
from distributor.segments.store import (
    SegmentPreview,
    check_segment_deletable,
    delete_segment,
    list_segments,
    preview_filter,
    save_segment,
)
from distributor.web.auth import Caller, Changer, Reader
from distributor.web.contacts_common import MAX_FILTER, MAX_NAME, render_contacts
from distributor.web.pages import pages_of
from distributor.web.problems import status_of
from distributor.web.sessions import flash

router = APIRouter(include_in_schema=False)

SAMPLE_SIZE = 8
FilterText = Annotated[str, Query(max_length=MAX_FILTER)]


def _preview(caller: Caller, filter_text: str) -> tuple[SegmentPreview | None, str]:
    """The count and sample a filter gives now, or why it cannot be read."""
    if not filter_text.strip():
        return None, ""
    try:
        with caller.session() as session:
            return preview_filter(session, filter_text, sample_size=SAMPLE_SIZE), ""
    except InvalidFilterError as exc:
        return None, page_words(exc)


def _segments_page(
    request: Request,
    caller: Caller,
    *,
    filter_text: str = "",
    name: str = "",
    error: str = "",
    status: int = 200,
) -> Response:
    preview, filter_error = _preview(caller, filter_text)
    with caller.session() as session:
        saved = [
            (
                segment.name,
                segment.filter_text,
                count_audience(session, choose_audience(session, segment_names=[segment.name])),
            )
            for segment in list_segments(session)
        ]
    return render_contacts(
        request,
        caller,
        "contacts_segments.html.j2",
        {
            "saved": saved,
            "filter_text": filter_text,
            "name": name,
            "preview": preview,
            "filter_error": filter_error,
            "error": error,
        },
        tab="Segments",
        status_code=status,
        scripted=True,
    )


@router.get("/contacts/segments")
def segments_page(
    request: Request, caller: Reader, filter: FilterText = "", name: str = ""
) -> Response:
    return _segments_page(request, caller, filter_text=filter, name=name[:MAX_NAME])


@router.get("/contacts/segments/preview")
def preview_fragment(request: Request, caller: Reader, filter: FilterText = "") -> Response:
    """The count and sample alone, for the page to show while the filter is typed."""
    preview, filter_error = _preview(caller, filter)
    return pages_of(request).render(
        request,
        "contacts_segment_preview.html.j2",
        {"preview": preview, "filter_error": filter_error, "filter_text": filter},
        account=caller.account,
        with_forms=False,
    )


@router.post("/contacts/segments")
def save(
    request: Request,
    caller: Changer,
    filter: Annotated[str, Form(max_length=MAX_FILTER)],
    name: Annotated[str, Form(max_length=MAX_NAME)] = "",
    replace: Annotated[bool, Form()] = False,
    intent: Annotated[Literal["save", "preview"], Form()] = "save",
) -> Response:
    """The same as `distributor segments save NAME FILTER --yes [--replace]`; or, with the
    Preview button, the page again with the filter's count and sample."""
    if intent == "preview":
        return _segments_page(request, caller, filter_text=filter, name=name)
    try:
        with caller.transaction() as session:
            segment = save_segment(
                session,
                name=name,
                filter_text=filter,
                actor=caller.actor,
                now=caller.now(),
                replace=replace,
            )
            saved_name = segment.name
    except DistributorError as exc:
        return _segments_page(
            request,
            caller,
            filter_text=filter,
            name=name,
            error=page_words(exc),
            status=status_of(exc),
        )
    flash(request, f"Saved the segment “{saved_name}”.")
    return RedirectResponse("/contacts/segments", status_code=303)


def _delete_page(
    request: Request, caller: Caller, name: str, *, error: str = "", status: int = 200
) -> Response:
    """What deleting the segment would do, or why it is kept."""
    refusal, filter_text = error, ""
    with caller.session() as session:
        try:
            filter_text = check_segment_deletable(session, name=name).filter_text
        except DistributorError as exc:
            refusal = page_words(exc)
            status = status_of(exc) if isinstance(exc, NotFoundError) else status
    return render_contacts(
        request,
        caller,
        "contacts_delete.html.j2",
        {
            "kind": "segment",
            "name": name,
            "filter_text": filter_text,
            "refusal": refusal,
            "action": "/contacts/segments/delete",
            "back": "/contacts/segments",
        },
        tab="Segments",
        status_code=status,
    )


@router.get("/contacts/segments/delete")
def delete_confirmation(
    request: Request, caller: Changer, name: Annotated[str, Query(max_length=MAX_NAME)]
) -> Response:
    return _delete_page(request, caller, name)


@router.post("/contacts/segments/delete")
def delete(
    request: Request, caller: Changer, name: Annotated[str, Form(max_length=MAX_NAME)]
) -> Response:
    """The same as `distributor segments delete NAME`."""
    try:
        with caller.transaction() as session:
            delete_segment(session, name=name)
    except DistributorError as exc:
        return _delete_page(request, caller, name, error=page_words(exc), status=status_of(exc))
    flash(request, f"Deleted the segment “{name}”; no contact was changed.")
    return RedirectResponse("/contacts/segments", status_code=303)
