"""An embargo typed on a form: read with the core's rules (`distributor.embargo`), and shown
back in the officer's zone, in UTC and in two other zones.

A local time that a DST change skips or repeats, or one in the past, is refused by the core
with a message naming the candidate instants; the form shows that message by its field.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from distributor.cli.status_view import until
from distributor.embargo import load_zone, resolve_embargo
from distributor.errors import InvalidEmbargoError, page_words
from distributor.web.pages import in_zone

UTC_ZONE = "UTC"
# Where a press office's readers most often are, after its own zone: shown unless the
# officer picks others.
USUAL_OTHER_ZONES = ("Europe/London", "America/New_York", "Asia/Tokyo")


@dataclass(frozen=True, slots=True)
class Reading:
    """An instant as a person in `zone` reads it."""

    zone: str
    text: str
    own: bool = False


def default_other_zones(own_zone: str) -> list[str]:
    return [z for z in USUAL_OTHER_ZONES if z not in (own_zone, UTC_ZONE)][:2]


def readings(instant: datetime, *, own_zone: str, others: list[str]) -> list[Reading]:
    """The officer's zone first, then UTC, then the others (each once)."""
    shown = [Reading(own_zone, in_zone(instant, own_zone), own=True)]
    for zone in (UTC_ZONE, *others):
        if zone and zone not in {r.zone for r in shown}:
            shown.append(Reading(zone, in_zone(instant, zone)))
    return shown


def countdown(instant: datetime, now: datetime) -> str:
    return until(instant, now)


@dataclass
class TypedEmbargo:
    """A local time and zone as typed, with what the core made of them."""

    text: str
    zone: str
    at: datetime | None = None
    time_error: str = ""
    zone_error: str = ""

    @property
    def error(self) -> str:
        return self.zone_error or self.time_error


def read_embargo(
    text: str, zone: str, *, now: datetime, max_ahead: timedelta, required: bool = True
) -> TypedEmbargo:
    """Resolve the typed time; a problem is kept on the zone or the time, whichever it is.

    With `required` False, an empty time is no problem (the officer has not typed it yet).
    """
    typed = TypedEmbargo(text=text.strip(), zone=zone.strip())
    try:
        load_zone(typed.zone)
    except InvalidEmbargoError as exc:
        typed.zone_error = page_words(exc)
        return typed
    if not typed.text:
        if required:
            typed.time_error = "give the date and the time, in the zone beside it"
        return typed
    try:
        typed.at = resolve_embargo(typed.text, typed.zone, now=now, max_ahead=max_ahead)
    except InvalidEmbargoError as exc:
        typed.time_error = page_words(exc)
    return typed


def checked_zone(zone: str) -> str:
    """An error for a zone that is not an IANA zone, else an empty string."""
    try:
        load_zone(zone.strip())
    except InvalidEmbargoError as exc:
        return page_words(exc)
    return ""
