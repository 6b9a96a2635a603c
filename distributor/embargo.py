"""Turning what a press officer types (a local time and an IANA zone) into one UTC instant."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from functools import cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from distributor.errors import InvalidEmbargoError

ACCEPTED_FORMATS = ("%Y-%m-%d %H:%M", "%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S")
# How far ahead an embargo may lie unless the installation says otherwise
# (DISTRIBUTOR_MAX_EMBARGO_DAYS): further is most likely a mistyped year.
DEFAULT_MAX_AHEAD = timedelta(days=730)
# Names the zone database answers to that are no place: the host's own setting, whose
# meaning changes with the machine that reads it, and tzdata's placeholders.
NOT_PLACES = frozenset({"localtime", "posixrules", "Factory"})
# UTC offsets stay within a day, so a wall time this far out is out whatever the zone.
WIDEST_OFFSET = timedelta(days=1)


@cache
def _known_zones() -> frozenset[str]:
    return frozenset(available_timezones()) - NOT_PLACES


def load_zone(name: str) -> ZoneInfo:
    """The IANA zone of that name; host-dependent names and file paths are refused."""
    if not name:
        raise InvalidEmbargoError(
            "an embargo needs a time zone: give an IANA name such as Europe/London"
        )
    if name not in _known_zones():
        raise InvalidEmbargoError(
            f"unknown time zone {name!r}: give an IANA name such as Europe/London or UTC"
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


def _too_far(shown: str, zone: ZoneInfo, *, now: datetime, max_ahead: timedelta) -> str:
    furthest = (now + max_ahead).astimezone(zone)
    return (
        f"the embargo {shown} in {zone.key} is more than {max_ahead.days} days ahead (the "
        f"latest allowed is {furthest:%Y-%m-%d %H:%M}): check the year; an installation "
        "that plans further ahead raises DISTRIBUTOR_MAX_EMBARGO_DAYS"
    )


def resolve_embargo(
    text: str, zone_name: str, *, now: datetime, max_ahead: timedelta = DEFAULT_MAX_AHEAD
) -> datetime:
    """Validate and convert an embargo given as local text plus zone; it must lie in the
    future, and no further ahead than `max_ahead`."""
    zone = load_zone(zone_name)
    local = parse_local_time(text)
    # Judged on the wall clock first: a time near the year 1 or 9999 cannot be converted.
    here = now.astimezone(zone).replace(tzinfo=None)
    shown = f"{local:%Y-%m-%d %H:%M}"
    if local < here - WIDEST_OFFSET:
        raise InvalidEmbargoError(
            f"the embargo {shown} in {zone.key} is in the past "
            f"(it is now {_describe(now, zone)}): choose a later time"
        )
    if local > here + max_ahead + WIDEST_OFFSET:
        raise InvalidEmbargoError(_too_far(shown, zone, now=now, max_ahead=max_ahead))
    instant = localize(local, zone)
    if instant <= now:
        raise InvalidEmbargoError(
            f"the embargo {_describe(instant, zone)} is in the past "
            f"(it is now {_describe(now, zone)}): choose a later time"
        )
    if instant > now + max_ahead:
        raise InvalidEmbargoError(_too_far(shown, zone, now=now, max_ahead=max_ahead))
    return instant
