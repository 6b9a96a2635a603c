"""The scheduling form: the audience, the embargo, the pre-brief, as typed, and the checks
the core makes of them (the count after de-duplication and suppression, the embargo)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session
from starlette.datastructures import FormData

from distributor.audience import choose_audience, count_audience, member_ids
from distributor.errors import DistributorError, page_words
from distributor.prebriefs import PrebriefRequest
from distributor.web.editor_zones import (
    Reading,
    TypedEmbargo,
    checked_zone,
    default_other_zones,
    read_embargo,
    readings,
)

PREBRIEF_CHOICES = ("none", "now", "at")


@dataclass
class ScheduleForm:
    lists: list[str] = field(default_factory=list)
    segments: list[str] = field(default_factory=list)
    embargo: str = ""
    zone: str = "UTC"
    prebrief: str = "none"
    prebrief_at: str = ""
    prebrief_lists: list[str] = field(default_factory=list)
    prebrief_segments: list[str] = field(default_factory=list)
    again: bool = False
    other_zones: list[str] = field(default_factory=list)
    errors: dict[str, str] = field(default_factory=dict)

    def error(self, key: str, message: str) -> None:
        self.errors[key] = message


def _text(form: FormData, name: str) -> str:
    value = form.get(name)
    return value.strip() if isinstance(value, str) else ""


def _names(form: FormData, name: str) -> list[str]:
    return list(dict.fromkeys(v for v in form.getlist(name) if isinstance(v, str) and v))


def schedule_form_from(form: FormData, *, own_zone: str) -> ScheduleForm:
    prebrief = _text(form, "prebrief")
    others = [_text(form, "other_zone_1"), _text(form, "other_zone_2")]
    return ScheduleForm(
        lists=_names(form, "lists"),
        segments=_names(form, "segments"),
        embargo=_text(form, "embargo"),
        zone=_text(form, "zone") or own_zone,
        prebrief=prebrief if prebrief in PREBRIEF_CHOICES else "none",
        prebrief_at=_text(form, "prebrief_at"),
        prebrief_lists=_names(form, "prebrief_lists"),
        prebrief_segments=_names(form, "prebrief_segments"),
        again=bool(_text(form, "again")),
        other_zones=others if all(others) else default_other_zones(own_zone),
    )


def new_schedule_form(own_zone: str) -> ScheduleForm:
    return ScheduleForm(zone=own_zone, other_zones=default_other_zones(own_zone))


@dataclass(frozen=True, slots=True)
class AudienceCount:
    """Who the send would go to as the lists stand now: each address once, suppressed and
    forgotten contacts left out (`left_out` of them)."""

    recipients: int
    left_out: int


def count_chosen(session: Session, form: ScheduleForm, *, required: bool) -> AudienceCount | None:
    if not form.lists and not form.segments:
        if required:
            form.error("audience", "choose at least one media list or segment to send to")
        return None
    try:
        choice = choose_audience(session, list_names=form.lists, segment_names=form.segments)
    except DistributorError as exc:
        form.error("audience", page_words(exc))
        return None
    recipients = count_audience(session, choice)
    members = session.scalar(select(func.count()).select_from(member_ids(choice).subquery())) or 0
    return AudienceCount(recipients=recipients, left_out=members - recipients)


def typed_embargo(
    form: ScheduleForm, *, now: datetime, max_ahead: timedelta, required: bool
) -> TypedEmbargo:
    typed = read_embargo(form.embargo, form.zone, now=now, max_ahead=max_ahead, required=required)
    if typed.zone_error:
        form.error("zone", typed.zone_error)
    elif typed.time_error:
        form.error("embargo", typed.time_error)
    return typed


def embargo_readings(form: ScheduleForm, at: datetime | None) -> list[Reading]:
    for number, zone in enumerate(form.other_zones, start=1):
        problem = checked_zone(zone)
        if problem:
            form.error(f"other_zone_{number}", problem)
    if at is None:
        return []
    others = [z for n, z in enumerate(form.other_zones, 1) if f"other_zone_{n}" not in form.errors]
    return readings(at, own_zone=form.zone, others=others)


def prebrief_of(
    form: ScheduleForm, *, now: datetime, max_ahead: timedelta, required: bool
) -> PrebriefRequest | None:
    """The pre-brief asked for (its time in the embargo's zone), or None."""
    if form.prebrief == "none":
        return None
    at = now
    if form.prebrief == "at":
        typed = read_embargo(
            form.prebrief_at, form.zone, now=now, max_ahead=max_ahead, required=required
        )
        if typed.error:
            if not typed.zone_error:
                form.error("prebrief_at", typed.error)
            return None
        if typed.at is None:
            return None
        at = typed.at
    return PrebriefRequest(
        at=at,
        list_names=tuple(form.prebrief_lists),
        segment_names=tuple(form.prebrief_segments),
    )
