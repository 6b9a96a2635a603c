"""Turning what a press officer types (a local time and an IANA zone) into one UTC instant."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from distributor.errors import InvalidEmbargoError

ACCEPTED_FORMATS = ("%Y-%m-%d %H:%M", "%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S")


def load_zone(name: str) -> ZoneInfo:
    if not name:
        raise InvalidEmbargoError(
            "an embargo needs a time zone: give an IANA name such as Europe/London"
        )
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise InvalidEmbargoError(
            f"unknown time zone {name!r}: give an IANA name such as Europe/London or UTC"
        ) from None


def parse_local_time(text: str) -> datetime:
    text = text.strip()
    for fmt in ACCEPTED_FORMATS:
        try:
            return datetime.strptime(text, fmt)  # noqa: DTZ007 - the zone is attached explicitly
        except ValueError:
            continue
    raise InvalidEmbargoError(
        f"cannot read the embargo time {text!r}: write it as YYYY-MM-DD HH:MM in local time "
        "and give the zone separately"
    )


def _describe(instant: datetime, zone: ZoneInfo) -> str:
    local = instant.astimezone(zone)
    return f"{local:%Y-%m-%d %H:%M} {local.tzname()} ({instant:%H:%M} UTC)"


def _jump(start: datetime, zone: ZoneInfo) -> tuple[datetime, timedelta]:
    """The first instant after `start` at which the zone's offset changes, and the old offset."""
    instant = start.replace(second=0, microsecond=0)
    offset = instant.astimezone(zone).utcoffset() or timedelta(0)
    while instant.astimezone(zone).utcoffset() == offset:
        instant += timedelta(minutes=1)
    return instant, offset


def localize(local: datetime, zone: ZoneInfo) -> datetime:
    """The UTC instant of a wall-clock time, refusing times that a DST change skips or repeats."""
    if local.tzinfo is not None:
        raise InvalidEmbargoError("give the embargo as local time without an offset, and a zone")
    early = local.replace(tzinfo=zone, fold=0)
    late = local.replace(tzinfo=zone, fold=1)
    early_utc, late_utc = early.astimezone(UTC), late.astimezone(UTC)
    shown = f"{local:%Y-%m-%d %H:%M}"
    if early_utc == late_utc:
        return early_utc
    if early_utc.astimezone(zone).replace(tzinfo=None) != local:
        # In a gap fold=0 reads the time with the offset before the jump, which lands after it,
        # and fold=1 with the offset after it, which lands before it: name both readings.
        transition, old_offset = _jump(late_utc, zone)
        before = transition.replace(tzinfo=None) + old_offset
        after = transition.astimezone(zone)
        raise InvalidEmbargoError(
            f"{shown} does not exist in {zone.key}: the clocks jump forward from "
            f"{before:%H:%M} to {after:%H:%M} then. It would be either "
            f"{_describe(late_utc, zone)} or {_describe(early_utc, zone)}; "
            "give one of those times instead"
        )
    raise InvalidEmbargoError(
        f"{shown} happens twice in {zone.key}: the clocks go back then. "
        f"It is either {_describe(early_utc, zone)} or {_describe(late_utc, zone)}; "
        "give the time in UTC to say which"
    )


def resolve_embargo(text: str, zone_name: str, *, now: datetime) -> datetime:
    """Validate and convert an embargo given as local text plus zone; it must lie in the future."""
    zone = load_zone(zone_name)
    instant = localize(parse_local_time(text), zone)
    if instant <= now:
        raise InvalidEmbargoError(
            f"the embargo {_describe(instant, zone)} is in the past "
            f"(it is now {_describe(now, zone)}): choose a later time"
        )
    return instant
