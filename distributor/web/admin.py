"""The admin pages: how the installation is doing, live, and an admin's hands on a send.

`/admin` shows the overview (monitoring.admin_overview) with the alerts on top; its script
polls `/admin/live` every two seconds and moves the progress bars and the alert banner.
Pausing, resuming, cancelling and retrying each have a confirmation page (GET) whose form
posts back with the session's CSRF token and `confirmed=yes`; the post calls the same core
function as the command line does (`distributor send pause|resume`, `distributor release
cancel`, `distributor deliveries retry`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cache
from typing import Annotated, Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Form, Request
from markupsafe import Markup, escape
from sqlalchemy.orm import Session
from starlette.responses import JSONResponse, RedirectResponse, Response

from distributor.embargo_changes import withdraw_release
from distributor.engine.dbclock import read_database_time
from distributor.errors import DistributorError, NotFoundError, page_words
from distributor.monitoring.admin_overview import admin_overview, live_figures
from distributor.monitoring.alerts import (
    Alert,
    duration,
    evaluate_alerts,
    percent,
    thresholds_from,
)
from distributor.monitoring.queue_depths import QUICK_TIMEOUT_SECONDS, queue_depths
from distributor.scheduling import cancel_send, get_send
from distributor.send_control import RETRYABLE, pause_send, resume_send, retry_deliveries
from distributor.states import ACTIVE_SEND_STATES, DeliveryState, SendKind, SendState
from distributor.status import SendStatus, send_statuses
from distributor.web.auth import Admin, Caller
from distributor.web.pages import STATIC_DIR, pages_of
from distributor.web.params import SendId
from distributor.web.problems import status_of
from distributor.web.security import CONTENT_SECURITY_POLICY
from distributor.web.sessions import flash

router = APIRouter(prefix="/admin", include_in_schema=False)

POLL_SECONDS = 2
# The admin pages run one script of this site's own and fetch /admin/live: nothing more.
ADMIN_CSP = "; ".join(
    f"{name} {value}"
    for name, value in {
        **CONTENT_SECURITY_POLICY,
        "script-src": "'self'",
        "connect-src": "'self'",
    }.items()
)
ASSETS = ("admin.css", "admin.js")


@cache
def asset_urls() -> dict[str, str]:
    """The admin stylesheet and script, each with a digest in its URL so no browser keeps
    an old one."""
    return {
        name.replace(".", "_"): (
            f"/static/{name}?v={hashlib.sha256((STATIC_DIR / name).read_bytes()).hexdigest()[:12]}"
        )
        for name in ASSETS
    }


def render(
    request: Request,
    caller: Caller,
    name: str,
    context: dict[str, Any],
    *,
    alerts: list[Alert],
    status_code: int = 200,
) -> Response:
    zone = ZoneInfo(caller.account.time_zone)

    def local_time(at: datetime | None) -> str:
        """'09:00:05', or '3 Mar 09:00:05' on another day than today's (UTC)."""
        if at is None:
            return ""
        local = at.astimezone(zone)
        return (
            f"{local:%H:%M:%S}" if at.date() == caller.now().date() else f"{local:%-d %b %H:%M:%S}"
        )

    return pages_of(request).render(
        request,
        name,
        {
            **context,
            **asset_urls(),
            "alerts": alerts,
            "poll_seconds": POLL_SECONDS,
            "live_url": "/admin/live",
            "ago": lambda seconds: duration(timedelta(seconds=seconds)),
            "local_time": local_time,
            "percent": percent,
            "with_commands": with_commands,
        },
        account=caller.account,
        status_code=status_code,
        headers={"Content-Security-Policy": ADMIN_CSP},
    )


def with_commands(text: str) -> Markup:
    """Escaped text whose `commands` (between backticks, as the CLI writes them) are code."""
    parts = text.split("`")
    if len(parts) % 2 == 0:  # an odd backtick: leave the text as it is
        return escape(text)
    return Markup("").join(
        Markup("<code>{}</code>").format(part) if i % 2 else escape(part)
        for i, part in enumerate(parts)
    )


def _now(session: Session, caller: Caller) -> datetime:
    """The database's time: the clock that decides embargoes, as `status` reads it."""
    return read_database_time(session, caller.runtime.database_clock)


@router.get("")
def overview_page(request: Request, caller: Admin) -> Response:
    settings = caller.runtime.settings
    thresholds = thresholds_from(settings)
    with caller.session() as session:
        overview = admin_overview(session, now=_now(session, caller), thresholds=thresholds)
    return render(
        request,
        caller,
        "admin.html.j2",
        {
            "overview": overview,
            "queues": queue_depths(settings, timeout=QUICK_TIMEOUT_SECONDS),
            "worker_window": thresholds.worker_silent_after.total_seconds(),
            "actions_for": actions_for,
            "delivery_states": list(DeliveryState),
        },
        alerts=overview.alerts,
    )


@router.get("/live")
def live(caller: Admin) -> JSONResponse:
    """What moves on the page: each send's progress, the alerts, the heartbeats' age."""
    with caller.session() as session:
        now = _now(session, caller)
        figures = live_figures(
            session, now=now, thresholds=thresholds_from(caller.runtime.settings)
        )
    return JSONResponse(
        {
            "now": now.isoformat(),
            "sends": [
                {
                    "id": s.send_id,
                    "state": s.state.value,
                    "total": s.total,
                    "done": s.done,
                    "sent": s.sent,
                    "percent": round(s.percent, 1),
                    "per_second": round(s.per_second, 1),
                    "counts": {state.value: n for state, n in s.counts.items()},
                }
                for s in figures.sends
            ],
            "alerts": [
                {
                    "key": a.key,
                    "code": a.code.value,
                    "severity": a.severity.value,
                    "message": a.message,
                }
                for a in figures.alerts
            ],
            "last_tick_seconds_ago": (
                None if figures.last_tick is None else (now - figures.last_tick).total_seconds()
            ),
            "workers_alive": figures.workers_alive,
        }
    )


# --- actions ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SendAction:
    name: str
    # The link's words on the overview; the confirmation page's question and button, with
    # {id} for the send's id.
    label: str
    question: str
    button: str
    # What the confirmation page says will happen.
    explain: Callable[[SendStatus], str]
    # Which sends the pages offer it for, by state and failed or bounced deliveries; the
    # core decides in the end.
    offered: Callable[[SendState, int], bool]
    dangerous: bool = False


def _pause_words(s: SendStatus) -> str:
    return (
        "Workers stop claiming its deliveries at once: each finishes the message it is "
        "sending and hands the rest back. Nothing more goes out until it is resumed."
    )


def _resume_words(s: SendStatus) -> str:
    late = "" if s.state is SendState.PAUSED else " It goes out however late it now is."
    return f"It carries on from where it stopped: what is due is handed to workers.{late}"


def _cancel_words(s: SendStatus) -> str:
    if s.kind is SendKind.PUBLIC:
        return (
            f"This withdraws release {s.release_id}, as `distributor release cancel` does: every "
            "send of it that has not gone out is cancelled, and journalists who hold the "
            "embargoed copy are told not to publish. It cannot be undone."
        )
    return (
        "Its deliveries not yet sent are cancelled; those a worker is sending finish. "
        "It cannot be undone."
    )


def _retry_words(s: SendStatus) -> str:
    return (
        "The failed and bounced deliveries you choose are put back in line with a new retry "
        "window. Suppressed addresses stay suppressed: they are checked again before sending."
    )


ACTIONS = {
    action.name: action
    for action in (
        SendAction(
            "pause",
            "Pause",
            "Pause send {id}?",
            "Pause send {id}",
            _pause_words,
            lambda state, _failed: state in (SendState.SCHEDULED, SendState.ARMED),
        ),
        SendAction(
            "resume",
            "Resume",
            "Resume send {id}?",
            "Resume send {id}",
            _resume_words,
            lambda state, _failed: state in (SendState.PAUSED, SendState.HELD),
        ),
        SendAction(
            "retry",
            "Retry failed",
            "Send again what send {id} could not deliver?",
            "Put them back in line",
            _retry_words,
            lambda state, failed: state is not SendState.CANCELLED and failed > 0,
        ),
        SendAction(
            "cancel",
            "Cancel",
            "Cancel send {id}?",
            "Cancel send {id}",
            _cancel_words,
            lambda state, _failed: state in ACTIVE_SEND_STATES,
            dangerous=True,
        ),
    )
}


def actions_for(state: SendState, counts: dict[DeliveryState, int]) -> list[SendAction]:
    failed = sum(counts.get(s, 0) for s in RETRYABLE)
    return [a for a in ACTIONS.values() if a.offered(state, failed)]


def _run(caller: Caller, action: str, send_id: int, states: list[DeliveryState]) -> str:
    """The core function the command line calls for `action`; returns what happened."""
    runtime = caller.runtime
    with caller.transaction() as session:
        if action == "pause":
            pause_send(session, send_id=send_id, now=_now(session, caller))
            return f"Send {send_id} paused: workers finish the message in hand and claim no more."
        if action == "resume":
            state = resume_send(
                session,
                send_id=send_id,
                now=_now(session, caller),
                arm_lead=timedelta(seconds=runtime.settings.arm_lead_seconds),
            )
            return f"Send {send_id} resumed ({state.value})."
        if action == "retry":
            count = retry_deliveries(
                session, send_id=send_id, states=states or RETRYABLE, now=_now(session, caller)
            )
            return f"{count} deliveries of send {send_id} put back in line."
        send = get_send(session, send_id)
        if send.kind is SendKind.PUBLIC:
            stopped, change = withdraw_release(
                session,
                release_id=send.release_id,
                now=runtime.clock.now(),
                batch_size=runtime.settings.batch_size,
            )
            told = (
                f"; {change.notified} journalist(s) told not to publish" if change.notified else ""
            )
            listed = ", ".join(f"send {i} ({n} not sent)" for i, n in sorted(stopped.items()))
            return f"Release {send.release_id} withdrawn: cancelled {listed}{told}."
        count = cancel_send(session, send_id=send_id, now=runtime.clock.now())
        return f"Send {send_id} cancelled: {count} deliveries will not be sent."


def _confirmation(
    request: Request,
    caller: Caller,
    action: SendAction,
    send_id: int,
    *,
    error: str = "",
    status_code: int = 200,
) -> Response:
    with caller.session() as session:
        found = send_statuses(session, send_id)
        if not found:
            raise NotFoundError(f"no send with id {send_id}; see the overview at /admin")
        alerts = evaluate_alerts(
            session, now=_now(session, caller), thresholds=thresholds_from(caller.runtime.settings)
        )
    return render(
        request,
        caller,
        "admin_confirm.html.j2",
        {
            "action": action,
            "send": found[0],
            "error": error,
            "retryable": list(RETRYABLE),
            "delivery_states": list(DeliveryState),
        },
        alerts=alerts,
        status_code=status_code,
    )


def _confirm_route(action: SendAction) -> Callable[..., Response]:
    def confirm(request: Request, caller: Admin, send_id: SendId) -> Response:
        return _confirmation(request, caller, action, send_id)

    confirm.__name__ = f"confirm_{action.name}"
    return confirm


def _act_route(action: SendAction) -> Callable[..., Response]:
    def act(
        request: Request,
        caller: Admin,
        send_id: SendId,
        confirmed: Annotated[str, Form(max_length=10)] = "",
        state: Annotated[list[DeliveryState] | None, Form()] = None,
    ) -> Response:
        if confirmed != "yes":
            # Straight from a link or a script: the person has not seen what it will do.
            return RedirectResponse(f"/admin/sends/{send_id}/{action.name}", status_code=303)
        try:
            done = _run(caller, action.name, send_id, state or [])
        except DistributorError as exc:
            return _confirmation(
                request, caller, action, send_id, error=page_words(exc), status_code=status_of(exc)
            )
        flash(request, done)
        return RedirectResponse("/admin", status_code=303)

    act.__name__ = action.name
    return act


for _action in ACTIONS.values():
    router.add_api_route(
        f"/sends/{{send_id}}/{_action.name}", _confirm_route(_action), methods=["GET"]
    )
    router.add_api_route(
        f"/sends/{{send_id}}/{_action.name}", _act_route(_action), methods=["POST"]
    )
