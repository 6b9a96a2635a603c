"""The admin page in a real browser (headless Chromium, driven by Playwright), served by
uvicorn: a worker delivering a send moves its progress bar without a reload, and the alert
banner appears when the scheduler's heartbeat goes stale and goes when it is fresh again.

The worker is the engine itself, driven from the test (claims under a lease, outcomes
recorded), so each step's effect on the page is known. Screenshots at a desktop's and a
phone's width go to var/screenshots/ for people to look at.
"""

from __future__ import annotations

import os
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import uvicorn
from argon2 import PasswordHasher

from distributor.accounts import passwords
from distributor.actors import Role
from distributor.engine.heartbeats import beat
from distributor.migrate import upgrade
from distributor.runtime import Runtime
from distributor.web import admin
from distributor.web.app import create_app
from tests.support.engine import TEST_OWNER
from tests.support.web import PASSWORD, add_account, web_settings
from tests.test_web_admin import IN_STEP, deliver, live_send, scheduler_beats

pytestmark = [pytest.mark.slow, pytest.mark.browser]

SCREENSHOTS = Path(__file__).resolve().parents[1] / "var" / "screenshots"
ADMIN = "adam@example.org"
DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 390, "height": 844}
# A change shows within one poll; the browser is given more on a busy machine.
SHOWN_WITHIN_MS = 5000


def chromium() -> str:
    found = shutil.which("chromium")
    if found is None:
        message = "Debian's chromium is not installed (apt-get install chromium)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return found


@pytest.fixture
def served(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[str, Runtime]]:
    """The app on a free port, on a SQLite database with one admin; its pages poll every
    half second rather than two, for a quicker test of the same script."""
    monkeypatch.setattr(admin, "POLL_SECONDS", 0.5)
    monkeypatch.setattr(passwords, "_hasher", PasswordHasher(time_cost=1, memory_cost=1024))
    url = f"sqlite:///{tmp_path / 'web.sqlite3'}"
    upgrade(url)
    runtime = Runtime(web_settings(url, tmp_path))
    add_account(runtime, ADMIN, Role.ADMIN)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = uvicorn.Server(
        uvicorn.Config(create_app(runtime), host="127.0.0.1", port=port, log_config=None)
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline, "uvicorn did not start within 10 s"
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}", runtime
    finally:
        server.should_exit = True
        thread.join(10)
        runtime.close()


def test_the_progress_bar_moves_and_the_banner_follows_the_scheduler(
    served: tuple[str, Runtime],
) -> None:
    sync_api = pytest.importorskip("playwright.sync_api")
    executable = chromium()
    base, runtime = served
    send_id = live_send(runtime, 30)
    scheduler_beats(runtime)
    with runtime.sessions.begin() as session:
        beat(session, name=TEST_OWNER, kind="worker", now=datetime.now(UTC), offset=IN_STEP)
    problems: list[str] = []
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable)
        try:
            page = browser.new_page(viewport=DESKTOP)
            # The CSP must let the page's own script run and fetch: a refusal is an error.
            page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda error: problems.append(str(error)))
            page.goto(f"{base}/login?next=/admin")
            page.get_by_label("Email address").fill(ADMIN)
            page.get_by_label("Password").fill(PASSWORD)
            page.get_by_role("button", name="Log in").click()
            page.wait_for_url(f"{base}/admin")

            card = page.locator(f'[data-send-id="{send_id}"]')
            bar = card.locator("progress[data-send-progress]")
            banner = page.locator("[data-alerts]")
            assert bar.get_attribute("value") == "0"
            assert banner.is_hidden()
            # Gone if the page were loaded again: what follows happens in this one.
            page.evaluate("window.sameLoad = true")

            def bar_reaches(done: int) -> None:
                scheduler_beats(runtime)  # keep the scheduler fresh while the bar is watched
                page.wait_for_function(
                    "([selector, done]) => document.querySelector(selector).value === done",
                    arg=[f'[data-send-id="{send_id}"] progress', done],
                    timeout=SHOWN_WITHIN_MS,
                )

            deliver(runtime, send_id, 10)
            bar_reaches(10)
            assert card.locator("[data-send-done]").inner_text() == "10"
            assert card.locator("[data-send-percent]").inner_text() == "33"
            deliver(runtime, send_id, 20)
            bar_reaches(30)
            assert card.locator("[data-send-sent]").inner_text() == "30"
            assert "30 sent" in card.locator("[data-send-counts]").inner_text()
            page.screenshot(path=SCREENSHOTS / "admin-desktop.png", full_page=True)

            # The scheduler stops: its last tick is now half a minute old.
            scheduler_beats(runtime, ago=timedelta(seconds=30))
            banner.wait_for(state="visible", timeout=SHOWN_WITHIN_MS)
            alert = banner.locator('[data-alert-key="scheduler_silent"]')
            assert alert.locator(".alert-code").text_content() == "scheduler silent"
            assert "the scheduler has not ticked for 3" in alert.inner_text()  # 30 s or so
            assert alert.locator("code").inner_text() == "distributor scheduler"
            page.set_viewport_size(PHONE)
            page.screenshot(path=SCREENSHOTS / "admin-phone.png", full_page=True)

            # It is back: the banner goes without a reload.
            scheduler_beats(runtime)
            banner.wait_for(state="hidden", timeout=SHOWN_WITHIN_MS)
            assert page.evaluate("window.sameLoad") is True
        finally:
            browser.close()
    assert problems == []
