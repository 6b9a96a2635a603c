"""The report page in a real browser counts up while a send goes out: deliveries are
claimed and their outcomes recorded through the engine in a thread, and the page's script
shows the new counts without a reload."""

from __future__ import annotations

import os
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import uvicorn

from distributor.actors import Role
from distributor.engine.outcomes import Outcome, OutcomeRecorder
from distributor.migrate import upgrade
from distributor.runtime import Runtime
from distributor.states import DeliveryState
from distributor.web.app import create_app
from tests.support.engine import TEST_OWNER, claim_for_test
from tests.support.web import PASSWORD, PEOPLE, add_account, web_settings
from tests.test_web_report import sent_release

pytestmark = [pytest.mark.slow, pytest.mark.browser]

SCREENSHOTS = Path(__file__).resolve().parents[1] / "var" / "screenshots"
CONTACTS = 60
ALREADY_SENT = 5
# Outcomes spread over about five seconds: the page polls every two.
PAUSE = 0.09


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[str, Runtime]]:
    """The app on a free port, in this process, on a fresh SQLite database."""
    chromium = shutil.which("chromium")
    if chromium is None:
        message = "Debian's chromium is not installed (apt-get install chromium)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    url = f"sqlite:///{tmp_path / 'web.sqlite3'}"
    upgrade(url)
    runtime = Runtime(web_settings(url, tmp_path))
    add_account(runtime, PEOPLE[Role.VIEWER], Role.VIEWER)
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(create_app(runtime), host="127.0.0.1", port=port, log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert time.monotonic() < deadline, "the web app did not start"
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}", runtime
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        runtime.close()


def send_the_rest(runtime: Runtime, send_id: int) -> None:
    """A worker's part: claim what is due under the batch's lease, record each outcome."""
    with runtime.sessions.begin() as session:
        claimed = claim_for_test(session, send_id, 0, datetime.now(UTC), CONTACTS)
    recorder = OutcomeRecorder(runtime.engine, owner=TEST_OWNER)
    try:
        for delivery in claimed:
            time.sleep(PAUSE)  # pacing the sender, as a relay would
            accepted = Outcome(
                delivery.delivery_id, DeliveryState.SENT, datetime.now(UTC), 250, "250 ok"
            )
            assert recorder.record(accepted)
    finally:
        recorder.close()


def test_the_report_counts_up_while_the_send_goes_out(served: tuple[str, Runtime]) -> None:
    sync_api = pytest.importorskip("playwright.sync_api")
    base, runtime = served
    sent = sent_release(
        runtime, contacts=CONTACTS, failed=0, deferred=0, pending=CONTACTS - ALREADY_SENT
    )
    problems: list[str] = []
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=shutil.which("chromium"))
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.on("pageerror", lambda error: problems.append(str(error)))
            page.on(
                "console",
                lambda message: problems.append(message.text) if message.type == "error" else None,
            )
            page.goto(f"{base}/login?next=/releases/{sent.release_id}/report")
            page.get_by_label("Email address").fill(PEOPLE[Role.VIEWER])
            page.get_by_label("Password").fill(PASSWORD)
            page.get_by_role("button", name="Log in").click()
            page.wait_for_url(f"{base}/releases/{sent.release_id}/report")
            sent_count = page.locator('[data-count="sent"]')
            assert sent_count.inner_text() == str(ALREADY_SENT)

            sender = threading.Thread(target=send_the_rest, args=(runtime, sent.send_id))
            sender.start()
            try:
                # Part of the way: the page moved on its own while the send goes on.
                page.wait_for_function(
                    "n => { const v = Number(document.querySelector('[data-count=sent]')"
                    ".textContent); return v > n[0] && v < n[1]; }",
                    arg=[ALREADY_SENT, CONTACTS],
                    timeout=10_000,
                )
                seen_midway = int(sent_count.inner_text())
                page.wait_for_function(
                    "n => document.querySelector('[data-count=sent]').textContent === n",
                    arg=str(CONTACTS),
                    timeout=15_000,
                )
            finally:
                sender.join(timeout=30)
            assert page.locator('[data-count="pending"]').inner_text() == "0"
            assert (
                f"{CONTACTS} of {CONTACTS} finished"
                in page.locator('[data-field="progress-text"]').inner_text()
            )
            assert page.locator(".chart-wide .bar-accepted").count() >= 2
            SCREENSHOTS.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=SCREENSHOTS / "report-desktop.png", full_page=True)
            page.set_viewport_size({"width": 390, "height": 844})
            page.screenshot(path=SCREENSHOTS / "report-phone.png", full_page=True)
        finally:
            browser.close()
    assert ALREADY_SENT < seen_midway < CONTACTS
    assert problems == []
