"""The REST API under /api/v1: JSON in and out, errors as problem details (RFC 9457) that
name the field at fault, lists in pages.

Each concept has its module (api_*.py), whose routes call the same core functions as the
command line and the pages; this one gathers them under the prefix.
"""

from __future__ import annotations

from fastapi import APIRouter

from distributor.web import (
    api_contacts,
    api_deliveries,
    api_embargo,
    api_lists,
    api_releases,
    api_segments,
    api_sends,
    api_suppressions,
)
from distributor.web.auth import Reader
from distributor.web.problems import PROBLEM_RESPONSES
from distributor.web.schemas import AccountOut, account_out

API_PREFIX = "/api/v1"

router = APIRouter(prefix=API_PREFIX, responses=PROBLEM_RESPONSES)


@router.get("/me", tags=["accounts"])
def who_am_i(caller: Reader) -> AccountOut:
    """The account the token or session belongs to."""
    return account_out(caller.account)


for part in (
    api_releases,
    api_embargo,
    api_sends,
    api_deliveries,
    api_contacts,
    api_lists,
    api_segments,
    api_suppressions,
):
    router.include_router(part.router)
