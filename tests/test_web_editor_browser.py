"""A press officer writes a release in a real browser, sees the preview follow the typing,
schedules it and sees the countdown run, against the app served by uvicorn.

Headless Chromium from Debian (`/usr/bin/chromium`), driven by Playwright. Screenshots of the
editor and of the embargo page, at a desktop's and a phone's width, are saved under
var/screenshots/.
"""

from __future__ import annotations

import io
import os
import re
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import uvicorn

from distributor.accounts.users import create_user
from distributor.acting import acting_info
from distributor.actors import Actor, Role
from distributor.contacts_import import import_contacts, parse_contacts_csv
from distributor.demo import free_port
from distributor.lists import add_to_list, create_list
from distributor.migrate import upgrade
from distributor.runtime import Runtime
from distributor.settings import Settings
from distributor.web.app import create_app

pytestmark = [pytest.mark.slow, pytest.mark.browser]

CHROMIUM = Path("/usr/bin/chromium")
SCREENSHOTS = Path(__file__).resolve().parents[1] / "var" / "screenshots"
EMAIL = "lou@example.org"
PASSWORD = "correct horse battery staple"
DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 390, "height": 844}
CONTACTS = "email,name,outlet\n" + "".join(
    f"reporter{n}@news{n % 3}.example.com,Reporter {n},Outlet {n % 3}\n" for n in range(12)
)


def seed(runtime: Runtime) -> None:
    now = datetime.now(UTC)
    admin = Actor("tests", Role.ADMIN)
    with runtime.sessions(info=acting_info(admin)) as session, session.begin():
        create_user(
            session,
            email=EMAIL,
            role=Role.PRESS_OFFICER,
            password=PASSWORD,
            now=now,
            display_name="Lou Reed",
            time_zone="Europe/London",
        )
        parsed = parse_contacts_csv(io.StringIO(CONTACTS))
        import_contacts(session, parsed, now=now)
        create_list(session, "Health desks", now=now)
        add_to_list(session, "Health desks", [row.email for row in parsed.rows])


@pytest.fixture
def served(tmp_path: Path) -> Iterator[str]:
    """The app on a free port, served by uvicorn in this process, on its own SQLite file."""
    if not CHROMIUM.exists():
        message = "Debian's chromium is not installed (apt-get install chromium)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    settings = Settings(
        database_url=f"sqlite:///{tmp_path / 'web.sqlite3'}",
        data_dir=tmp_path / "var",
        secret_key="a-long-random-secret-key-for-the-browser-test",
        from_name="Northern Health Trust press office",
    )
    upgrade(settings.effective_database_url)
    runtime = Runtime(settings)
    seed(runtime)
    server = uvicorn.Server(
        uvicorn.Config(create_app(runtime), host="127.0.0.1", port=free_port(), log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            pytest.fail("uvicorn did not start serving the app")
        time.sleep(0.02)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        runtime.close()


def test_an_officer_writes_previews_and_schedules_a_release(served: str) -> None:
    sync_api = pytest.importorskip("playwright.sync_api")
    expect = sync_api.expect
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    problems: list[str] = []
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM))
        try:
            page = browser.new_page(viewport=DESKTOP)
            # The pages' policy must hold: a refused script, style or frame is a console error.
            page.on(
                "console",
                lambda message: problems.append(message.text) if message.type == "error" else None,
            )
            page.on("pageerror", lambda error: problems.append(str(error)))
            page.goto(f"{served}/login?next=/releases")
            page.get_by_label("Email address").fill(EMAIL)
            page.get_by_label("Password").fill(PASSWORD)
            page.get_by_role("button", name="Log in").click()
            page.get_by_role("link", name="Write a new release").click()
            page.wait_for_url(f"{served}/editor/new")

            # Given a release typed into the editor, the preview follows the typing.
            page.get_by_label("Headline").fill("Hospital opens a new children's unit")
            preview = page.frame_locator("#preview-html")
            expect(preview.get_by_text("Hospital opens a new children's unit")).to_be_visible()
            page.get_by_label("Body", exact=True).fill(
                "The unit opened today.\n\nIt has twelve beds."
            )
            expect(preview.get_by_text("It has twelve beds.", exact=True)).to_be_visible()
            expect(page.locator("#preview-subject")).to_have_text(
                "[TEST] Hospital opens a new children's unit"
            )
            page.get_by_role("tab", name="Plain text").click()
            expect(page.locator("#preview-text")).to_contain_text("It has twelve beds.")
            page.get_by_role("tab", name="HTML").click()
            page.screenshot(path=SCREENSHOTS / "editor-desktop.png", full_page=True)

            page.get_by_role("button", name="Save release").click()
            page.wait_for_url(f"{served}/releases/*/edit")
            expect(page.get_by_text("Saved as a new release.")).to_be_visible()
            page.set_viewport_size(PHONE)
            page.screenshot(path=SCREENSHOTS / "editor-phone.png", full_page=True)
            page.set_viewport_size(DESKTOP)

            # When it is scheduled in the officer's zone, with the count shown as it is chosen,
            page.get_by_role("link", name="Audience and embargo").click()
            page.wait_for_url(f"{served}/releases/*/schedule")
            page.get_by_role("checkbox", name="Health desks").check()
            expect(page.locator("#audience-count")).to_have_text("12")
            london = datetime.now(ZoneInfo("Europe/London")) + timedelta(days=2)
            page.get_by_label("Local date and time").fill(f"{london:%Y-%m-%dT%H:%M}")
            expect(page.locator("#readings")).to_contain_text("UTC")
            expect(page.locator("#readings")).to_contain_text("Europe/London (yours)")
            page.get_by_role("button", name="Schedule", exact=True).click()
            page.wait_for_url(f"{served}/releases/*/schedule")

            # then the countdown to the embargo runs.
            clock = page.locator(".countdown")
            expect(clock).to_have_text(re.compile(r"^in (1 d 23|2 d 0) h \d+ min \d+ s$"))
            first = clock.inner_text()
            expect(clock).not_to_have_text(first, timeout=3000)
            expect(page.get_by_text("Scheduled send")).to_be_visible()
            page.screenshot(path=SCREENSHOTS / "embargo-desktop.png", full_page=True)
            page.set_viewport_size(PHONE)
            page.screenshot(path=SCREENSHOTS / "embargo-phone.png", full_page=True)
        finally:
            browser.close()
    assert problems == []
