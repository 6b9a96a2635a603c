"""What a release's report shows of each send, gathered from the core for the pages and for
the live counts the page polls."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from distributor.models import Send
from distributor.reporting.chart import LAYOUTS, Chart, build_chart
from distributor.reporting.failure_reasons import ReasonGroup, reasons_not_delivered
from distributor.reporting.timeline import Timeline, send_timeline
from distributor.states import (
    ACTIVE_SEND_STATES,
    FINAL_DELIVERY_STATES,
    DeliveryState,
    SendState,
)
from distributor.status import SendStatus, send_statuses

DELIVERY_STATES = list(DeliveryState)


@dataclass(frozen=True, slots=True)
class SendReport:
    status: SendStatus
    counts: dict[str, int]
    finished: int
    timeline: Timeline | None
    # The chart for a wide page and the one for a phone; empty before the send is armed.
    charts: list[Chart]
    reasons: list[ReasonGroup]

    @property
    def send_id(self) -> int:
        return self.status.send_id

    @property
    def active(self) -> bool:
        return self.status.state in ACTIVE_SEND_STATES


def clock_time(moment: datetime, zone: str) -> str:
    """'09:00:00 BST': an instant to the second, in the reader's zone."""
    local = moment.astimezone(ZoneInfo(zone))
    return f"{local:%H:%M:%S} {local.tzname()}"


def precise_time(moment: datetime, zone: str) -> str:
    """'4 Mar 09:00:01.234 GMT': an event in a recipient's history, to the millisecond."""
    local = moment.astimezone(ZoneInfo(zone))
    return (
        f"{local.day} {local:%b} {local:%H:%M:%S}.{local.microsecond // 1000:03d} {local.tzname()}"
    )


def release_send_statuses(session: Session, release_id: int) -> list[SendStatus]:
    """Each send of the release, in the order they were made."""
    send_ids = session.scalars(
        select(Send.id).where(Send.release_id == release_id).order_by(Send.id)
    ).all()
    return [status for send_id in send_ids for status in send_statuses(session, send_id)]


def _counts(status: SendStatus) -> dict[str, int]:
    return {state.value: status.counts.get(state, 0) for state in DELIVERY_STATES}


def _finished(status: SendStatus) -> int:
    return sum(n for state, n in status.counts.items() if state in FINAL_DELIVERY_STATES)


def send_charts(session: Session, status: SendStatus, zone: str) -> tuple[Timeline, list[Chart]]:
    _, timeline = send_timeline(session, status.send_id)
    label = f"embargo {clock_time(status.embargo_at, zone)}"
    return timeline, [
        build_chart(timeline, embargo_label=label, layout=layout) for layout in LAYOUTS
    ]


def charted(status: SendStatus) -> bool:
    """A chart says something once the send could have sent: armed or later."""
    return status.total > 0 and status.state not in (
        SendState.AWAITING_APPROVAL,
        SendState.SCHEDULED,
    )


def send_reports(session: Session, release_id: int, zone: str) -> list[SendReport]:
    reports = []
    for status in release_send_statuses(session, release_id):
        timeline, charts = send_charts(session, status, zone) if charted(status) else (None, [])
        reports.append(
            SendReport(
                status=status,
                counts=_counts(status),
                finished=_finished(status),
                timeline=timeline,
                charts=charts,
                reasons=reasons_not_delivered(session, status.send_id),
            )
        )
    return reports


def live_charts(session: Session, statuses: list[SendStatus], zone: str) -> dict[int, list[Chart]]:
    """The charts of the sends still moving, drawn anew."""
    return {
        status.send_id: send_charts(session, status, zone)[1]
        for status in statuses
        if status.state in ACTIVE_SEND_STATES and charted(status)
    }


def live_counts(statuses: list[SendStatus]) -> dict[str, Any]:
    """The polled document: each send's state and counts, and whether any may still change."""
    return {
        "active": any(s.state in ACTIVE_SEND_STATES for s in statuses),
        "sends": [
            {
                "send_id": s.send_id,
                "state": s.state.value,
                "counts": _counts(s),
                "total": s.total,
                "finished": _finished(s),
            }
            for s in statuses
        ],
    }
