"""Turning a local embargo time and an IANA zone into one UTC instant, and refusing bad ones."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from distributor.embargo import resolve_embargo
from distributor.errors import InvalidEmbargoError

# A fixed "now": these tests never read the wall clock.
NOW = datetime(2026, 6, 15, 12, 0, tzinfo=UTC)
LONG_AGO = datetime(2019, 1, 1, tzinfo=UTC)

ZONES = [
    "Europe/London",
    "America/New_York",
    "America/Sao_Paulo",  # dropped DST in 2019
    "Australia/Lord_Howe",  # a 30-minute DST shift
    "Asia/Kolkata",  # a half-hour offset, no DST
    "Pacific/Chatham",  # a 45-minute offset with DST
    "UTC",
]


def refused(text: str, zone: str, *, now: datetime = NOW) -> str:
    with pytest.raises(InvalidEmbargoError) as caught:
        resolve_embargo(text, zone, now=now)
    return str(caught.value)


# --- times that exist -----------------------------------------------------------------------


def test_london_winter_time_is_gmt() -> None:
    assert resolve_embargo("2027-11-10 09:00", "Europe/London", now=NOW) == datetime(
        2027, 11, 10, 9, 0, tzinfo=UTC
    )


def test_london_summer_time_is_bst_one_hour_ahead_of_utc() -> None:
    assert resolve_embargo("2027-07-01 09:00", "Europe/London", now=NOW) == datetime(
        2027, 7, 1, 8, 0, tzinfo=UTC
    )


@pytest.mark.parametrize(
    "text", ["2027-07-01 09:00", "2027-07-01 09:00:00", "2027-07-01T09:00", " 2027-07-01 09:00 "]
)
def test_accepted_spellings_give_the_same_instant(text: str) -> None:
    assert resolve_embargo(text, "Europe/London", now=NOW) == datetime(2027, 7, 1, 8, tzinfo=UTC)


def test_new_york_summer_time() -> None:
    assert resolve_embargo("2027-07-01 09:00", "America/New_York", now=NOW) == datetime(
        2027, 7, 1, 13, 0, tzinfo=UTC
    )


def test_the_instant_is_timezone_aware_utc() -> None:
    instant = resolve_embargo("2027-01-05 10:15", "Asia/Kolkata", now=NOW)
    assert instant.utcoffset() == timedelta(0)
    assert instant == datetime(2027, 1, 5, 4, 45, tzinfo=UTC)


# --- times a DST change skips or repeats -----------------------------------------------------


def test_london_spring_forward_gap_is_refused_naming_both_readings() -> None:
    message = refused("2027-03-28 01:30", "Europe/London")
    assert "2027-03-28 01:30 does not exist in Europe/London" in message
    # Read with GMT it is 01:30 UTC (02:30 BST); read with BST it is 00:30 UTC (00:30 GMT).
    assert "02:30 BST (01:30 UTC)" in message
    assert "00:30 GMT (00:30 UTC)" in message


def test_new_york_spring_forward_gap_is_refused_naming_both_readings() -> None:
    message = refused("2027-03-14 02:30", "America/New_York")
    assert "does not exist in America/New_York" in message
    assert "03:30 EDT (07:30 UTC)" in message
    assert "01:30 EST (06:30 UTC)" in message


def test_gap_with_seconds_is_refused_too() -> None:
    message = refused("2027-03-28 01:59:59", "Europe/London")
    assert "does not exist" in message


def test_half_hour_gap_is_refused() -> None:
    # Lord Howe Island moves its clocks from 02:00 to 02:30.
    message = refused("2027-10-03 02:15", "Australia/Lord_Howe")
    assert "does not exist in Australia/Lord_Howe" in message
    assert "(15:45 UTC)" in message
    assert "(15:15 UTC)" in message


def test_london_autumn_repeated_hour_is_refused_naming_both_instants() -> None:
    message = refused("2027-10-31 01:30", "Europe/London")
    assert "2027-10-31 01:30 happens twice in Europe/London" in message
    assert "01:30 BST (00:30 UTC)" in message
    assert "01:30 GMT (01:30 UTC)" in message


def test_new_york_autumn_repeated_hour_is_refused_naming_both_instants() -> None:
    message = refused("2027-11-07 01:30", "America/New_York")
    assert "happens twice in America/New_York" in message
    assert "01:30 EDT (05:30 UTC)" in message
    assert "01:30 EST (06:30 UTC)" in message


def test_the_minutes_next_to_a_change_are_accepted() -> None:
    assert resolve_embargo("2027-03-28 00:59", "Europe/London", now=NOW) == datetime(
        2027, 3, 28, 0, 59, tzinfo=UTC
    )
    assert resolve_embargo("2027-03-28 02:00", "Europe/London", now=NOW) == datetime(
        2027, 3, 28, 1, 0, tzinfo=UTC
    )
    assert resolve_embargo("2027-10-31 02:00", "Europe/London", now=NOW) == datetime(
        2027, 10, 31, 2, 0, tzinfo=UTC
    )


# --- other bad input -------------------------------------------------------------------------


def test_past_embargo_is_refused_showing_both_times() -> None:
    message = refused("2026-06-15 12:59", "Europe/London")  # 11:59 UTC, a minute ago
    assert "in the past" in message
    assert "2026-06-15 12:59 BST (11:59 UTC)" in message
    assert "2026-06-15 13:00 BST (12:00 UTC)" in message


def test_embargo_exactly_now_is_refused() -> None:
    assert "in the past" in refused("2026-06-15 13:00", "Europe/London")


def test_embargo_a_minute_ahead_is_accepted() -> None:
    assert resolve_embargo("2026-06-15 13:01", "Europe/London", now=NOW) == NOW + timedelta(
        minutes=1
    )


def test_empty_zone_is_refused_asking_for_one() -> None:
    message = refused("2027-07-01 09:00", "")
    assert "needs a time zone" in message
    assert "Europe/London" in message


@pytest.mark.parametrize(
    "zone", ["Europe/Londn", "BST", "Mars/Olympus_Mons", "Europe", "../../etc/passwd", "+01:00"]
)
def test_unknown_zone_is_refused_naming_it(zone: str) -> None:
    message = refused("2027-07-01 09:00", zone)
    assert f"unknown time zone {zone!r}" in message
    assert "IANA" in message


@pytest.mark.parametrize(
    "text", ["", "tomorrow at nine", "01/07/2027 09:00", "2027-07-01", "2027-02-30 09:00"]
)
def test_unparseable_text_is_refused_showing_the_format(text: str) -> None:
    message = refused(text, "Europe/London")
    assert "cannot read the embargo time" in message
    assert "YYYY-MM-DD HH:MM" in message


@pytest.mark.parametrize(
    "text", ["2027-07-01 09:00+01:00", "2027-07-01T09:00:00Z", "2027-07-01 09:00 +0100"]
)
def test_text_with_an_offset_is_refused_asking_for_local_time_and_a_zone(text: str) -> None:
    message = refused(text, "Europe/London")
    assert "local time" in message
    assert "zone separately" in message


# --- properties ------------------------------------------------------------------------------


def readings(local: datetime, zone: ZoneInfo) -> set[datetime]:
    """Every UTC instant whose wall time in `zone` is `local`, found without `fold`."""
    probe = local.replace(tzinfo=UTC)
    offsets = {
        (probe + timedelta(hours=hours)).astimezone(zone).utcoffset() for hours in (-30, 0, 30)
    }
    found = set()
    for offset in offsets:
        assert offset is not None
        candidate = probe - offset
        if candidate.astimezone(zone).replace(tzinfo=None) == local:
            found.add(candidate)
    return found


instants = st.datetimes(min_value=datetime(2020, 1, 1), max_value=datetime(2035, 12, 31)).map(
    lambda naive: naive.replace(microsecond=0, tzinfo=UTC)
)


# The property tests look from 2019 at embargoes up to 2035.
SPAN = timedelta(days=20 * 366)


@given(instant=instants, zone_name=st.sampled_from(ZONES))
@example(instant=datetime(2027, 10, 31, 0, 30, tzinfo=UTC), zone_name="Europe/London")
@example(instant=datetime(2027, 10, 31, 1, 30, tzinfo=UTC), zone_name="Europe/London")
@example(instant=datetime(2027, 3, 28, 1, 0, tzinfo=UTC), zone_name="Europe/London")
@example(instant=datetime(2027, 11, 7, 5, 59, 59, tzinfo=UTC), zone_name="America/New_York")
def test_local_wall_time_resolves_back_to_the_instant(instant: datetime, zone_name: str) -> None:
    zone = ZoneInfo(zone_name)
    wall = instant.astimezone(zone).replace(tzinfo=None)
    text = f"{wall:%Y-%m-%d %H:%M:%S}"
    if len(readings(wall, zone)) == 1:
        assert resolve_embargo(text, zone_name, now=LONG_AGO, max_ahead=SPAN) == instant
    else:
        with pytest.raises(InvalidEmbargoError, match="happens twice"):
            resolve_embargo(text, zone_name, now=LONG_AGO, max_ahead=SPAN)


@given(
    wall=st.datetimes(min_value=datetime(2020, 1, 1), max_value=datetime(2035, 12, 31)).map(
        lambda naive: naive.replace(second=0, microsecond=0)
    ),
    zone_name=st.sampled_from(ZONES),
)
@example(wall=datetime(2027, 3, 28, 1, 30), zone_name="Europe/London")
@example(wall=datetime(2027, 10, 31, 1, 30), zone_name="Europe/London")
@example(wall=datetime(2027, 3, 14, 2, 0), zone_name="America/New_York")
@example(wall=datetime(2027, 4, 4, 1, 45), zone_name="Australia/Lord_Howe")
@example(wall=datetime(2027, 9, 26, 2, 45), zone_name="Pacific/Chatham")
def test_any_wall_time_resolves_to_its_only_reading_or_is_refused(
    wall: datetime, zone_name: str
) -> None:
    found = readings(wall, ZoneInfo(zone_name))
    text = f"{wall:%Y-%m-%d %H:%M}"
    if len(found) == 1:
        assert resolve_embargo(text, zone_name, now=LONG_AGO, max_ahead=SPAN) == found.pop()
        return
    with pytest.raises(InvalidEmbargoError) as caught:
        resolve_embargo(text, zone_name, now=LONG_AGO, max_ahead=SPAN)
    expected = "does not exist" if not found else "happens twice"
    assert expected in str(caught.value)
