"""Segments in the API: saved filters, with how many contacts each reaches now; a filter
previewed (its count and a sample) before it is saved; saving and deleting, as `distributor
segments` does."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from distributor.audience import choose_audience, count_audience
from distributor.segments.parser import parse_filter
from distributor.segments.store import delete_segment, list_segments, preview_filter, save_segment
from distributor.web.auth import Changer, Reader
from distributor.web.contacts_common import MAX_FILTER
from distributor.web.pagination import PageModel, Paging, page_model, page_of
from distributor.web.params import SegmentName
from distributor.web.problems import PROBLEM_RESPONSES, blaming
from distributor.web.schemas_segments import PreviewOut, SegmentIn, SegmentOut, preview_out

router = APIRouter(tags=["segments"], responses=PROBLEM_RESPONSES)

MAX_SAMPLE = 100


@router.get("/segments")
def segments(caller: Reader, paging: Paging) -> PageModel[SegmentOut]:
    """Every segment, by name, with its filter and how many contacts it reaches now."""
    with caller.session() as session:
        found = page_of(list_segments(session), paging)
        reaches = {
            s.name: count_audience(session, choose_audience(session, segment_names=[s.name]))
            for s in found.items
        }
    return page_model(
        found, lambda s: SegmentOut(name=s.name, filter=s.filter_text, reach=reaches[s.name])
    )


@router.get("/segments/preview")
def preview(
    caller: Reader,
    filter: Annotated[
        str,
        Query(
            min_length=1,
            max_length=MAX_FILTER,
            description="The filter to try.",
            examples=['beat = "crime"'],
        ),
    ],
    sample: Annotated[int, Query(ge=0, le=MAX_SAMPLE, description="Contacts to list.")] = 10,
) -> PreviewOut:
    """How many contacts a filter matches now, how many of those are suppressed, and the
    first few, before it is saved."""
    with caller.session() as session, blaming(parameter="filter", location="query"):
        return preview_out(preview_filter(session, filter, sample_size=sample))


@router.post("/segments", status_code=201)
def save(caller: Changer, given: SegmentIn) -> SegmentOut:
    """Save a filter as a segment to send to (with replace, change an existing one's)."""
    with caller.transaction() as session:
        with blaming(pointer="#/filter"):
            parse_filter(given.filter)
        with blaming(pointer="#/name"):
            segment = save_segment(
                session,
                name=given.name,
                filter_text=given.filter,
                actor=caller.actor,
                now=caller.now(),
                replace=given.replace,
            )
        name, text = segment.name, segment.filter_text
        reach = count_audience(session, choose_audience(session, segment_names=[name]))
    return SegmentOut(name=name, filter=text, reach=reach)


@router.delete("/segments/{name:path}", status_code=204)
def delete(caller: Changer, name: SegmentName) -> None:
    """Delete a segment that no send went to."""
    with caller.transaction() as session:
        delete_segment(session, name=name)
