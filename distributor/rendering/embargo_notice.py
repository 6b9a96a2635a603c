"""How an embargo is written for journalists: "00:01 GMT, Tuesday 14 November 2017".

In the zone the press officer scheduled in, with the abbreviation in force on that date
(GMT in winter, BST in summer), again in UTC, and in the recipient's own zone when known.
Names of days and months are written out here, not taken from the process's locale.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

DAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
MONTHS = (
    "January", "February", "March", "April", "May", "June",
    "July", "August", "September", "October", "November", "December",
)  # fmt: skip


@lru_cache(maxsize=256)
def known_zone(name: str | None) -> ZoneInfo | None:
    """The zone of that IANA name, or None for an empty or unknown one."""
    if not name:
        return None
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return None


def zone_abbreviation(local: datetime) -> str:
    """GMT, BST, CET, EST ...; zones without a letter abbreviation get UTC+hh[:mm]."""
    name = local.tzname() or ""
    if name and name[0] not in "+-":
        return name
    offset = local.utcoffset() or timedelta(0)
    minutes = int(offset.total_seconds() // 60)
    sign = "+" if minutes >= 0 else "-"
    hours, rest = divmod(abs(minutes), 60)
    return f"UTC{sign}{hours:02d}" + (f":{rest:02d}" if rest else "")


def describe_instant(instant: datetime, zone: ZoneInfo | None) -> str:
    local = instant.astimezone(zone or UTC)
    abbreviation = "UTC" if zone is None else zone_abbreviation(local)
    return (
        f"{local:%H:%M} {abbreviation}, {DAYS[local.weekday()]} "
        f"{local.day} {MONTHS[local.month - 1]} {local.year}"
    )


@dataclass(frozen=True)
class EmbargoNotice:
    """The wording of one send's embargo."""

    at: datetime
    zone_name: str
    _local: dict[str, str] = field(default_factory=dict, compare=False, repr=False)

    @property
    def zone(self) -> ZoneInfo | None:
        return known_zone(self.zone_name)

    @property
    def in_release_zone(self) -> str:
        return describe_instant(self.at, self.zone)

    @property
    def in_utc(self) -> str:
        """The instant in UTC; empty when the release's own zone already says UTC."""
        utc = describe_instant(self.at, None)
        return "" if utc == self.in_release_zone else utc

    @property
    def subject_prefix(self) -> str:
        return f"EMBARGOED UNTIL {self.in_release_zone}"

    def is_embargoed(self, now: datetime) -> bool:
        return now < self.at

    def in_zone_of(self, zone_name: str | None) -> str:
        """The instant in a recipient's zone; empty when unknown or already shown above."""
        if not zone_name:
            return ""
        cached = self._local.get(zone_name)
        if cached is None:
            zone = known_zone(zone_name)
            cached = describe_instant(self.at, zone) if zone else ""
            if cached in (self.in_release_zone, describe_instant(self.at, None)):
                cached = ""
            self._local[zone_name] = cached
        return cached
