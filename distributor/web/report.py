"""A release's report: where each send stands, counted live while it sends; deliveries per
second around the embargo; what did not go, by reason. The actions on it (retry, a
recipient's history, the CSV export) are in report_actions.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import JSONResponse, Response

from distributor.releases.overview import release_detail
from distributor.web.auth import Access, Reader
from distributor.web.pages import pages_of
from distributor.web.params import ReleaseId
from distributor.web.report_actions import router as actions_router
from distributor.web.report_assets import scripted_headers, static_url
from distributor.web.report_view import (
    DELIVERY_STATES,
    clock_time,
    live_charts,
    live_counts,
    release_send_statuses,
    send_reports,
)

router = APIRouter(include_in_schema=False)
router.include_router(actions_router)

POLL_MILLISECONDS = 2000
CHART_TEMPLATE = "report_chart.html.j2"


def report_path(release_id: int) -> str:
    return f"/releases/{release_id}/report"


@router.get("/releases/{release_id}/report")
def report_page(request: Request, caller: Reader, release_id: ReleaseId) -> Response:
    zone = caller.account.time_zone
    with caller.session() as session:
        detail = release_detail(session, release_id)
        sends = send_reports(session, release_id, zone)
    return pages_of(request).render(
        request,
        "report.html.j2",
        {
            "release": detail.summary,
            "sends": sends,
            "delivery_states": DELIVERY_STATES,
            "may_retry": caller.may(Access.CHANGE),
            "now": caller.now(),
            "clock_time": lambda moment: clock_time(moment, zone),
            "live_url": f"{report_path(release_id)}/live",
            "poll_ms": POLL_MILLISECONDS,
            "report_css": static_url("report.css"),
            "report_js": static_url("report.js"),
        },
        account=caller.account,
        headers=scripted_headers(),
    )


@router.get("/releases/{release_id}/report/live")
def report_live(request: Request, caller: Reader, release_id: ReleaseId) -> Response:
    """The counts the report page polls while a send may still change, and each moving
    send's chart drawn anew."""
    zone = caller.account.time_zone
    chart_template = pages_of(request).templates.env.get_template(CHART_TEMPLATE)
    with caller.session() as session:
        release_detail(session, release_id)  # a 404 for a release that does not exist
        statuses = release_send_statuses(session, release_id)
        document: dict[str, Any] = live_counts(statuses)
        charts = live_charts(session, statuses, zone)
    document["charts"] = {
        str(send_id): chart_template.render(charts=drawn) for send_id, drawn in charts.items()
    }
    return JSONResponse(document)
