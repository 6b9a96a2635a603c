"""A send's deliveries in the API, a page at a time (reporting/send_deliveries.py)."""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated

from fastapi import APIRouter, Query

from distributor.reporting.send_deliveries import send_deliveries
from distributor.states import DeliveryState
from distributor.web.auth import Reader
from distributor.web.pagination import PageModel, Paging, Slice, page_model
from distributor.web.params import SendId
from distributor.web.problems import PROBLEM_RESPONSES
from distributor.web.schemas_sends import DeliveryOut

router = APIRouter(tags=["sends"], responses=PROBLEM_RESPONSES)


@router.get("/sends/{send_id}/deliveries")
def deliveries(
    caller: Reader,
    send_id: SendId,
    paging: Paging,
    state: Annotated[
        list[DeliveryState] | None, Query(description="Only deliveries in these states.")
    ] = None,
) -> PageModel[DeliveryOut]:
    """Every delivery of the send, a page at a time, with the relay's last reply."""
    with caller.session() as session:
        total, rows = send_deliveries(
            session, send_id, state or [], offset=paging.offset, limit=paging.per_page
        )
    items = [DeliveryOut(**asdict(row)) for row in rows]
    found = Slice(items=items, page=paging.page, per_page=paging.per_page, total=total)
    return page_model(found, lambda item: item)
