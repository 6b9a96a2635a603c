"""Reading the pre-brief options of `release schedule`."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from distributor.embargo import resolve_embargo
from distributor.errors import DistributorError, NotFoundError
from distributor.lists import get_lists
from distributor.prebriefs import PrebriefRequest
from distributor.segments.store import get_segments


def prebrief_request(
    session: Session,
    *,
    at: str,
    now_flag: bool,
    narrowed_to: list[str],
    tz: str,
    now: datetime,
    max_ahead: timedelta,
) -> PrebriefRequest | None:
    """The pre-brief asked for, or None; --prebrief-to names lists or segments."""
    if at and now_flag:
        raise DistributorError("give --prebrief-at or --prebrief-now, not both")
    if not at and not now_flag:
        if narrowed_to:
            raise DistributorError("--prebrief-to narrows a pre-brief: add --prebrief-at TIME")
        return None
    when = now if now_flag else resolve_embargo(at, tz, now=now, max_ahead=max_ahead)
    lists, segments = [], []
    for name in narrowed_to:
        try:
            get_lists(session, [name])
            lists.append(name)
            continue
        except NotFoundError:
            pass
        try:
            get_segments(session, [name])
            segments.append(name)
        except NotFoundError:
            raise DistributorError(
                f"--prebrief-to {name!r}: no list or segment has that name; see "
                "`distributor lists show` and `distributor segments show`"
            ) from None
    return PrebriefRequest(at=when, list_names=tuple(lists), segment_names=tuple(segments))
