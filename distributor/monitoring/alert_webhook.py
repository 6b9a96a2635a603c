"""Telling another system when an alert starts and when it ends: a JSON POST to
DISTRIBUTOR_ALERT_WEBHOOK_URL, signed with HMAC-SHA256 under DISTRIBUTOR_ALERT_WEBHOOK_SECRET.

The receiver checks `X-Distributor-Signature: sha256=<hex>`, the HMAC of
`<X-Distributor-Timestamp>.<body>`, and refuses an old timestamp (a replayed request).
A post that fails (no answer, a 5xx, a 429) is tried again with a doubling wait, in a thread
of its own, so the process watching the alerts never waits on the receiver. Only changes
are posted, never the same alert twice in a row: one watcher keeps what it last saw, so a
restarted watcher posts the alerts still on as starting again (receivers key them by `key`).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import queue
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal
from urllib.parse import urlsplit

from sqlalchemy.orm import Session, sessionmaker

from distributor.engine.dbclock import DatabaseClock, read_database_time
from distributor.monitoring.alerts import Alert, AlertThresholds, evaluate_alerts
from distributor.settings import Settings

log = logging.getLogger(__name__)

SIGNATURE_HEADER = "X-Distributor-Signature"
TIMESTAMP_HEADER = "X-Distributor-Timestamp"
# How often the watcher looks at the alerts; a scheduler silent for 10 s is told within 15.
WATCH_PERIOD_SECONDS = 5.0
ATTEMPTS = 5
FIRST_BACKOFF_SECONDS = 1.0
TIMEOUT_SECONDS = 5.0
RETRIED_STATUSES = frozenset({408, 425, 429})

Change = Literal["started", "ended"]


@dataclass(frozen=True, slots=True)
class WebhookTarget:
    url: str
    secret: str


def webhook_target(settings: Settings) -> WebhookTarget | None:
    """Where the alerts go, as DISTRIBUTOR_ALERT_WEBHOOK_URL and _SECRET say (checked when
    the settings were read); None when no URL is set."""
    if not settings.alert_webhook_url:
        return None
    return WebhookTarget(url=settings.alert_webhook_url, secret=settings.alert_webhook_secret)


def signature(secret: str, timestamp: str, body: bytes) -> str:
    digest = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return f"sha256={digest.hexdigest()}"


def signature_matches(secret: str, timestamp: str, body: bytes, presented: str) -> bool:
    """For a receiver written in Python: the post is ours and unchanged."""
    return hmac.compare_digest(signature(secret, timestamp, body), presented)


@dataclass(frozen=True, slots=True)
class AlertChange:
    change: Change
    alert: Alert
    at: datetime

    def payload(self) -> dict[str, Any]:
        alert = self.alert
        return {
            "event": f"alert.{self.change}",
            "key": alert.key,
            "code": alert.code.value,
            "severity": alert.severity.value,
            "message": alert.message,
            "send_ids": list(alert.send_ids),
            "since": alert.since.isoformat() if alert.since else None,
            "at": self.at.isoformat(),
        }


class AlertChanges:
    """Which alerts started and which ended since the last look."""

    def __init__(self) -> None:
        self._on: dict[str, Alert] = {}

    def update(self, alerts: Sequence[Alert], *, now: datetime) -> list[AlertChange]:
        current = {a.key: a for a in alerts}
        changes = [AlertChange("ended", a, now) for k, a in self._on.items() if k not in current]
        changes += [AlertChange("started", a, now) for k, a in current.items() if k not in self._on]
        # An alert that goes on keeps its latest words for the post of its end.
        self._on = current
        return changes


Post = Callable[[urllib.request.Request, float], int]


def _post_with_urllib(request: urllib.request.Request, timeout: float) -> int:
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 - http(s)
            status: int = response.status
            return status
    except urllib.error.HTTPError as exc:
        return exc.code


class AlertWebhook:
    """Posts alert changes to the target from a thread of its own, retrying each."""

    def __init__(
        self,
        target: WebhookTarget,
        *,
        attempts: int = ATTEMPTS,
        first_backoff: float = FIRST_BACKOFF_SECONDS,
        timeout: float = TIMEOUT_SECONDS,
        clock: Callable[[], float] = time.time,
        post: Post = _post_with_urllib,
    ) -> None:
        self.target = target
        self.attempts = attempts
        self.first_backoff = first_backoff
        self.timeout = timeout
        self._clock = clock
        self._post = post
        self._queue: queue.Queue[AlertChange | None] = queue.Queue()
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="alert-webhook", daemon=True)
        self._thread.start()

    def send(self, change: AlertChange) -> None:
        """Queue the post; it goes out in order, after those queued before it."""
        self._queue.put(change)

    def close(self, *, wait: float = 10.0) -> None:
        """Post what is queued (up to `wait` seconds), then stop."""
        self._queue.put(None)
        self._thread.join(wait)
        self._stopping.set()

    def deliver(self, change: AlertChange) -> bool:
        """Post one change, trying again after 1, 2, 4, ... s; True once the receiver took it."""
        body = json.dumps(change.payload(), separators=(",", ":")).encode()
        where = urlsplit(self.target.url).hostname
        for attempt in range(1, self.attempts + 1):
            timestamp = str(int(self._clock()))
            request = urllib.request.Request(  # noqa: S310 - http(s) only (webhook_target)
                self.target.url,
                data=body,
                method="POST",
                headers={
                    "Content-Type": "application/json",
                    "User-Agent": "distributor-alerts",
                    TIMESTAMP_HEADER: timestamp,
                    SIGNATURE_HEADER: signature(self.target.secret, timestamp, body),
                },
            )
            try:
                status = self._post(request, self.timeout)
            except OSError as exc:  # refused, unreachable, timed out
                outcome, retry = f"no answer ({exc})", True
            else:
                if 200 <= status < 300:
                    log.info("alert %s %s posted to %s", change.alert.key, change.change, where)
                    return True
                outcome, retry = f"HTTP {status}", status >= 500 or status in RETRIED_STATUSES
            if not retry or attempt == self.attempts:
                log.error(
                    "alert %s %s not posted to %s: %s after %d attempt(s)",
                    change.alert.key,
                    change.change,
                    where,
                    outcome,
                    attempt,
                )
                return False
            wait = self.first_backoff * 2 ** (attempt - 1)
            log.warning("alert webhook at %s: %s; trying again in %g s", where, outcome, wait)
            if self._stopping.wait(wait):
                return False
        return False

    def _run(self) -> None:
        while True:
            change = self._queue.get()
            if change is None:
                return
            try:
                self.deliver(change)
            except Exception:  # a bug must not end the thread and silence every later alert
                log.exception("alert webhook failed on %s", change.alert.key)


@dataclass
class AlertWatch:
    """Looks at the alerts and posts what changed."""

    sessions: sessionmaker[Session]
    database_clock: DatabaseClock
    thresholds: AlertThresholds
    webhook: AlertWebhook
    changes: AlertChanges

    def check(self) -> list[AlertChange]:
        with self.sessions() as session:
            now = read_database_time(session, self.database_clock)
            alerts = evaluate_alerts(session, now=now, thresholds=self.thresholds)
        changed = self.changes.update(alerts, now=now)
        for change in changed:
            self.webhook.send(change)
        return changed


def watch_alerts(
    watch: AlertWatch, *, stop: threading.Event, period: float = WATCH_PERIOD_SECONDS
) -> None:
    """Check every `period` seconds until `stop`; a database out of reach is logged and
    tried again, and ends no alert."""
    while not stop.is_set():
        try:
            watch.check()
        except Exception as exc:
            log.warning("alerts not checked (%s: %s)", type(exc).__name__, exc)
        stop.wait(period)
    watch.webhook.close()


def start_alert_watch(
    sessions: sessionmaker[Session],
    database_clock: DatabaseClock,
    thresholds: AlertThresholds,
    *,
    stop: threading.Event,
    settings: Settings | None = None,
) -> threading.Thread | None:
    """The webhook's watcher in a thread of its own, if the settings name a webhook (read
    from the environment when not given)."""
    target = webhook_target(settings if settings is not None else Settings())
    if target is None:
        return None
    watch = AlertWatch(
        sessions=sessions,
        database_clock=database_clock,
        thresholds=thresholds,
        webhook=AlertWebhook(target),
        changes=AlertChanges(),
    )
    thread = threading.Thread(
        target=watch_alerts, args=(watch,), kwargs={"stop": stop}, name="alert-watch", daemon=True
    )
    thread.start()
    log.info("alerts posted to %s on their start and end", urlsplit(target.url).hostname)
    return thread
