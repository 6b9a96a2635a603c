"""The alert webhook, posting to a real HTTP server on loopback: signed posts a receiver can
verify, only on an alert's start and end, tried again with a growing wait when the receiver
fails, and the watcher that reads the alerts from the database."""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import re
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from distributor.cli.context import load_settings
from distributor.engine.dbclock import ClockOffset, read_database_time
from distributor.engine.heartbeats import beat
from distributor.errors import ConfigurationError
from distributor.monitoring.alert_webhook import (
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    AlertChanges,
    AlertWatch,
    AlertWebhook,
    WebhookTarget,
    signature_matches,
    start_alert_watch,
    webhook_target,
)
from distributor.monitoring.alerts import Alert, AlertCode, AlertThresholds, Severity
from distributor.runtime import Runtime

IN_STEP = ClockOffset(timedelta(0))
SECRET = "shared-with-the-receiver-0123456789"
SILENT = Alert(
    AlertCode.SCHEDULER_SILENT,
    Severity.CRITICAL,
    "the scheduler has not ticked for 12 s",
    (4,),
    datetime(2031, 3, 4, 9, 0, tzinfo=UTC),
)


@dataclass
class Received:
    at: float
    headers: dict[str, str]
    body: bytes

    @property
    def json(self) -> dict[str, Any]:
        parsed: dict[str, Any] = json.loads(self.body)
        return parsed


class Receiver:
    """An HTTP server that records each POST and answers with the statuses it is given,
    then 200."""

    def __init__(self, statuses: list[int] | None = None) -> None:
        self.statuses = list(statuses or [])
        self.received: list[Received] = []
        self.changed = threading.Condition()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                with receiver.changed:
                    receiver.received.append(Received(time.monotonic(), dict(self.headers), body))
                    status = receiver.statuses.pop(0) if receiver.statuses else 200
                    receiver.changed.notify_all()
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/hooks/alerts"

    def wait_for(self, count: int, *, timeout: float = 5.0) -> list[Received]:
        with self.changed:
            if not self.changed.wait_for(lambda: len(self.received) >= count, timeout):
                raise AssertionError(f"{len(self.received)} post(s) arrived, not {count}")
            return list(self.received)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver()
    server.thread.start()
    yield server
    server.server.shutdown()
    server.server.server_close()


@pytest.fixture
def webhook(receiver: Receiver) -> Iterator[AlertWebhook]:
    hook = AlertWebhook(WebhookTarget(receiver.url, SECRET), first_backoff=0.1)
    yield hook
    hook.close(wait=2)


def test_an_alert_is_posted_signed_when_it_starts_and_when_it_ends_only(
    receiver: Receiver, webhook: AlertWebhook
) -> None:
    changes = AlertChanges()
    moments = [datetime(2031, 3, 4, 9, 0, 12 + n, tzinfo=UTC) for n in range(3)]
    for alerts, at in zip(([SILENT], [SILENT], []), moments, strict=True):
        for change in changes.update(alerts, now=at):
            webhook.send(change)

    # Closing posts whatever is queued first: the alert still on at the second look was not.
    webhook.close(wait=5)
    started, ended = receiver.received

    for post in (started, ended):
        # What the receiver computes with the shared secret, by the standard library alone.
        timestamp = post.headers[TIMESTAMP_HEADER]
        expected = hmac.new(SECRET.encode(), f"{timestamp}.".encode() + post.body, hashlib.sha256)
        assert post.headers[SIGNATURE_HEADER] == f"sha256={expected.hexdigest()}"
        assert abs(int(timestamp) - time.time()) < 60
        assert post.headers["Content-Type"] == "application/json"
        assert signature_matches(SECRET, timestamp, post.body, post.headers[SIGNATURE_HEADER])
        assert not signature_matches("another secret", timestamp, post.body, expected.hexdigest())
    assert started.json == {
        "event": "alert.started",
        "key": "scheduler_silent",
        "code": "scheduler_silent",
        "severity": "critical",
        "message": "the scheduler has not ticked for 12 s",
        "send_ids": [4],
        "since": "2031-03-04T09:00:00+00:00",
        "at": "2031-03-04T09:00:12+00:00",
    }
    assert ended.json["event"] == "alert.ended"
    assert ended.json["key"] == "scheduler_silent"
    assert ended.json["at"] == "2031-03-04T09:00:14+00:00"


def test_a_failing_receiver_is_tried_again_after_a_growing_wait(receiver: Receiver) -> None:
    receiver.statuses = [500, 503]
    hook = AlertWebhook(WebhookTarget(receiver.url, SECRET), first_backoff=0.1)
    try:
        (change,) = AlertChanges().update([SILENT], now=datetime.now(UTC))
        assert hook.deliver(change) is True
    finally:
        hook.close(wait=2)
    first, second, third = receiver.received
    assert first.body == second.body == third.body
    assert second.at - first.at >= 0.1
    assert third.at - second.at >= 0.2

    # A receiver that refuses the post itself (a 4xx) would refuse it again: no retry.
    receiver.statuses = [400]
    hook = AlertWebhook(WebhookTarget(receiver.url, SECRET), first_backoff=0.1)
    try:
        assert hook.deliver(change) is False
    finally:
        hook.close(wait=2)
    assert len(receiver.received) == 4


def test_no_receiver_at_all_gives_up_after_the_attempts(receiver: Receiver) -> None:
    url = receiver.url
    receiver.server.shutdown()
    receiver.server.server_close()
    hook = AlertWebhook(WebhookTarget(url, SECRET), attempts=3, first_backoff=0.05, timeout=1)
    try:
        (change,) = AlertChanges().update([SILENT], now=datetime.now(UTC))
        started = time.monotonic()
        assert hook.deliver(change) is False
        assert time.monotonic() - started >= 0.15  # waited 0.05 s, then 0.1 s
    finally:
        hook.close(wait=2)


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_the_watch_posts_the_scheduler_falling_silent_and_coming_back(
    runtime: Runtime, receiver: Receiver, webhook: AlertWebhook
) -> None:
    watch = AlertWatch(
        sessions=runtime.sessions,
        database_clock=runtime.database_clock,
        thresholds=AlertThresholds(),
        webhook=webhook,
        changes=AlertChanges(),
    )
    # No scheduler has ever ticked.
    assert [c.change for c in watch.check()] == ["started"]
    assert watch.check() == []
    (started,) = receiver.wait_for(1)
    assert started.json["code"] == "scheduler_silent"

    with runtime.sessions.begin() as session:
        now = read_database_time(session, runtime.database_clock)
        beat(
            session,
            name="scheduler:h:1",
            kind="scheduler",
            now=now,
            offset=ClockOffset(timedelta(0)),
        )
    assert [c.change for c in watch.check()] == ["ended"]
    _, ended = receiver.wait_for(2)
    assert (ended.json["event"], ended.json["code"]) == ("alert.ended", "scheduler_silent")


@pytest.fixture
def environment(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """An environment with no DISTRIBUTOR_ variable but those the test sets."""
    for name in list(os.environ):
        if name.startswith("DISTRIBUTOR_"):
            monkeypatch.delenv(name)
    return monkeypatch


def test_the_webhook_is_one_of_the_typed_settings(
    environment: pytest.MonkeyPatch, runtime: Runtime
) -> None:
    assert webhook_target(load_settings()) is None
    stop = threading.Event()
    # Without a URL nothing watches the alerts.
    assert (
        start_alert_watch(
            runtime.sessions,
            runtime.database_clock,
            AlertThresholds(),
            stop=stop,
            settings=load_settings(),
        )
        is None
    )
    environment.setenv("DISTRIBUTOR_ALERT_WEBHOOK_URL", "https://alerts.example.org/hook")
    environment.setenv("DISTRIBUTOR_ALERT_WEBHOOK_SECRET", SECRET)
    assert webhook_target(load_settings()) == WebhookTarget(
        "https://alerts.example.org/hook", SECRET
    )


@pytest.mark.parametrize(
    ("variables", "complaint"),
    [
        (
            {"URL": "https://alerts.example.org/hook"},
            "DISTRIBUTOR_ALERT_WEBHOOK_URL is set without DISTRIBUTOR_ALERT_WEBHOOK_SECRET",
        ),
        (
            {"URL": "file:///etc/passwd", "SECRET": SECRET},
            "DISTRIBUTOR_ALERT_WEBHOOK_URL must be an http(s) address",
        ),
        (
            {"URL": "alerts.example.org/hook", "SECRET": SECRET},
            "DISTRIBUTOR_ALERT_WEBHOOK_URL must be an http(s) address",
        ),
        (
            {"URL": "https://alerts.example.org/hook", "SECRET": "short"},
            "DISTRIBUTOR_ALERT_WEBHOOK_SECRET is 5 characters long; give it at least 16",
        ),
        (
            {"SECRET": SECRET},
            "DISTRIBUTOR_ALERT_WEBHOOK_SECRET is set without DISTRIBUTOR_ALERT_WEBHOOK_URL",
        ),
    ],
    ids=["no secret", "not http", "no scheme", "short secret", "secret alone"],
)
def test_a_webhook_that_cannot_work_is_refused_at_start_up_by_name(
    environment: pytest.MonkeyPatch, variables: dict[str, str], complaint: str
) -> None:
    for name, value in variables.items():
        environment.setenv(f"DISTRIBUTOR_ALERT_WEBHOOK_{name}", value)
    with pytest.raises(ConfigurationError, match=re.escape(complaint)):
        load_settings()
