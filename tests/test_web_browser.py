"""A person logs in to the dashboard in a real browser, served by a real `distributor web`.

Headless Chromium from Debian (`/usr/bin/chromium`), driven by Playwright, which downloads
no browser of its own here. Screenshots of the pages, at a desktop's and a phone's width,
are saved under var/screenshots/ for people to look at.
"""

from __future__ import annotations

import io
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from distributor.acting import acting_info
from distributor.actors import Actor, Role
from distributor.contacts_import import import_contacts, parse_contacts_csv
from distributor.lists import add_to_list, create_list
from distributor.migrate import upgrade
from distributor.organisations import save_organisation
from distributor.releases import ReleaseDraft, create_release
from distributor.runtime import Runtime
from distributor.scheduling import schedule_send
from distributor.settings import Settings

pytestmark = [pytest.mark.slow, pytest.mark.browser]

CHROMIUM = Path("/usr/bin/chromium")
SCREENSHOTS = Path(__file__).resolve().parents[1] / "var" / "screenshots"
EMAIL = "pat@example.org"
PASSWORD = "correct horse battery staple"
DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}
CONTACTS = "email,name,outlet\n" + "".join(
    f"reporter{n}@news{n % 4}.example.com,Reporter {n},Outlet {n % 4}\n" for n in range(40)
)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def environment(data_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DISTRIBUTOR_")}
    env["DISTRIBUTOR_DATA_DIR"] = str(data_dir)
    env["DISTRIBUTOR_FROM_NAME"] = "Northern Health Trust press office"
    return env


def seed(data_dir: Path) -> None:
    """Releases in several states, as a press office would have them."""
    settings = Settings(data_dir=data_dir, from_name="Northern Health Trust press office")
    upgrade(settings.effective_database_url)
    runtime = Runtime(settings)
    now = datetime.now(UTC)
    officer = Actor("sam@example.org", Role.PRESS_OFFICER)
    try:
        with runtime.sessions(info=acting_info(officer)) as session, session.begin():
            parsed = parse_contacts_csv(io.StringIO(CONTACTS))
            import_contacts(session, parsed, now=now)
            create_list(session, "Health desks", now=now)
            add_to_list(session, "Health desks", [row.email for row in parsed.rows])
            save_organisation(session, name="Northern Health Trust", now=now, require_approval=True)
            drafts = [
                ("Hospital trust opens a new children's emergency unit", "", timedelta(days=2)),
                ("Waiting times for hip operations fall for the third month", "", None),
                (
                    "Trust appoints a new chief nurse",
                    "Northern Health Trust",
                    timedelta(hours=5, minutes=30),
                ),
                ("Winter vaccination clinics: dates and places", "", timedelta(days=9)),
            ]
            for headline, organisation, embargo_in in drafts:
                release = create_release(
                    session,
                    ReleaseDraft(
                        headline=headline,
                        dateline="Leeds",
                        body="The trust today announced the news.\n\nMore details follow.",
                        notes_to_editors="About the trust: it runs four hospitals.",
                        organisation=organisation,
                    ),
                    now=now,
                )
                if embargo_in is not None:
                    schedule_send(
                        session,
                        release_id=release.id,
                        list_names=["Health desks"],
                        embargo_at=now + embargo_in,
                        embargo_zone="Europe/London",
                        now=now,
                        batch_size=100,
                    )
    finally:
        runtime.close()


def run_cli(data_dir: Path, *args: str, stdin: str = "") -> None:
    result = subprocess.run(
        [sys.executable, "-m", "distributor", *args],
        env=environment(data_dir),
        cwd=data_dir.parent,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr


def wait_until_up(base_url: str, server: subprocess.Popen[bytes], *, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            pytest.fail(f"`distributor web` exited with {server.returncode}")
        try:
            with urllib.request.urlopen(f"{base_url}/healthz", timeout=2) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError):
            time.sleep(0.2)
    pytest.fail(f"`distributor web` did not answer on {base_url} within {timeout:g} s")


def unsubscribe_path(data_dir: Path, email: str) -> str:
    """The path of the unsubscribe link a message to `email` carries."""
    runtime = Runtime(Settings(data_dir=data_dir))
    try:
        token = runtime.unsubscribe_links.tokens.issue(
            email=email, send_id=1, issued_at=int(datetime.now(UTC).timestamp())
        )
        link = runtime.unsubscribe_links.https(token)
        assert link is not None
        return link.removeprefix(runtime.settings.effective_public_base_url or "")
    finally:
        runtime.close()


@pytest.fixture
def served(tmp_path: Path) -> Iterator[str]:
    """A real `distributor web` on a free port, with an account and some releases."""
    if not CHROMIUM.exists():
        message = "Debian's chromium is not installed (apt-get install chromium)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    data_dir = tmp_path / "var"
    seed(data_dir)
    run_cli(
        data_dir,
        *("users", "create", EMAIL, "--role", "approver", "--name", "Pat Jones"),
        *("--tz", "Europe/London", "--password-stdin"),
        stdin=PASSWORD + "\n",
    )
    port = free_port()
    log = (tmp_path / "web.log").open("wb")
    server = subprocess.Popen(
        [sys.executable, "-m", "distributor", "web", "--host", "127.0.0.1", "--port", str(port)],
        env=environment(data_dir),
        cwd=tmp_path,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base_url = f"http://127.0.0.1:{port}"
    try:
        wait_until_up(base_url, server, timeout=60)
        yield base_url
    finally:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
        log.close()


def test_a_journalist_unsubscribes_with_the_button(served: str, tmp_path: Path) -> None:
    sync_api = pytest.importorskip("playwright.sync_api")
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = unsubscribe_path(tmp_path / "var", "reporter7@news3.example.com")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM))
        try:
            page = browser.new_page(viewport=PHONE)
            page.goto(f"{served}{path}")
            assert page.get_by_text("reporter7@news3.example.com").is_visible()
            page.screenshot(path=SCREENSHOTS / "unsubscribe-phone.png", full_page=True)
            page.get_by_role("button", name="Unsubscribe").click()
            assert page.get_by_role("heading", name="Unsubscribed").is_visible()
            page.screenshot(path=SCREENSHOTS / "unsubscribed-phone.png", full_page=True)
        finally:
            browser.close()


def test_a_press_officer_logs_in_and_sees_the_releases(served: str) -> None:
    sync_api = pytest.importorskip("playwright.sync_api")
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    problems: list[str] = []
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM))
        try:
            page = browser.new_page(viewport=DESKTOP)
            # The CSP must hold for every page: a refused style or script is a console error.
            page.on(
                "console",
                lambda message: problems.append(message.text) if message.type == "error" else None,
            )
            page.on("pageerror", lambda error: problems.append(str(error)))

            page.goto(f"{served}/releases")
            assert page.url == f"{served}/login?next=/releases"
            page.screenshot(path=SCREENSHOTS / "login-desktop.png", full_page=True)
            page.get_by_label("Email address").fill(EMAIL)
            page.get_by_label("Password").fill(PASSWORD)
            page.get_by_role("button", name="Log in").click()

            page.wait_for_url(f"{served}/releases")
            assert page.get_by_role("heading", name="Releases").is_visible()
            rows = page.locator("table.releases tbody tr")
            assert rows.count() == 4
            assert rows.first.get_by_text("Winter vaccination clinics").is_visible()
            assert page.get_by_text("Pat Jones").is_visible()
            page.screenshot(path=SCREENSHOTS / "releases-desktop.png", full_page=True)

            page.get_by_role("link", name="Trust appoints a new chief nurse").click()
            page.wait_for_url(f"{served}/releases/3")
            assert page.get_by_role("heading", name="Awaiting approval").is_visible()
            page.screenshot(path=SCREENSHOTS / "release-desktop.png", full_page=True)

            page.set_viewport_size(PHONE)
            page.goto(f"{served}/releases")
            page.screenshot(path=SCREENSHOTS / "releases-phone.png", full_page=True)
            page.goto(f"{served}/releases/3")
            page.screenshot(path=SCREENSHOTS / "release-phone.png", full_page=True)

            page.get_by_role("button", name="Log out").click()
            page.wait_for_url(f"{served}/login")
        finally:
            browser.close()
    assert problems == []
    for name in ("login-desktop", "releases-desktop", "releases-phone", "release-desktop"):
        assert (SCREENSHOTS / f"{name}.png").stat().st_size > 10_000


def test_a_press_officer_edits_a_contact_and_a_list_a_release_goes_to_is_kept(
    served: str,
) -> None:
    sync_api = pytest.importorskip("playwright.sync_api")
    expect = sync_api.expect
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    problems: list[str] = []
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM))
        try:
            page = browser.new_page(viewport=DESKTOP)
            page.on(
                "console",
                lambda message: problems.append(message.text) if message.type == "error" else None,
            )
            page.on("pageerror", lambda error: problems.append(str(error)))
            page.goto(f"{served}/login?next=/contacts")
            page.get_by_label("Email address").fill(EMAIL)
            page.get_by_label("Password").fill(PASSWORD)
            page.get_by_role("button", name="Log in").click()
            page.wait_for_url(f"{served}/contacts")
            expect(page.get_by_role("heading", name="Contacts")).to_be_visible()
            page.screenshot(path=SCREENSHOTS / "contacts-desktop.png", full_page=True)
            page.set_viewport_size(PHONE)
            page.screenshot(path=SCREENSHOTS / "contacts-phone.png", full_page=True)
            page.set_viewport_size(DESKTOP)

            # Given a contact opened for editing from the list,
            page.get_by_role("link", name="Edit Reporter 0", exact=True).click()
            expect(page.get_by_role("heading", name="Edit Reporter 0")).to_be_visible()
            expect(page.get_by_role("checkbox", name="Health desks")).to_be_checked()
            page.screenshot(path=SCREENSHOTS / "contact-edit-desktop.png", full_page=True)
            page.set_viewport_size(PHONE)
            page.screenshot(path=SCREENSHOTS / "contact-edit-phone.png", full_page=True)
            page.set_viewport_size(DESKTOP)
            # when it is saved with a new name, beats and the vetted flag,
            page.get_by_label("Name").fill("Rosa Reporter")
            page.get_by_label("Beats").fill("health; science")
            page.get_by_label("Vetted for embargoed material").check()
            page.get_by_role("button", name="Save the contact").click()
            # then its page shows them, and says what changed.
            expect(page.get_by_role("heading", name="Rosa Reporter")).to_be_visible()
            changed = page.get_by_text("Changed the name, beats and embargo vetted of")
            expect(changed).to_be_visible()
            expect(page.get_by_text("health, science")).to_be_visible()

            # A list the releases waiting for their embargo go to cannot be deleted.
            page.goto(f"{served}/contacts/list?name=Health+desks")
            page.get_by_role("link", name="Delete this list…").click()
            expect(page.get_by_role("heading", name="cannot be deleted")).to_be_visible()
            expect(page.get_by_role("alert")).to_contain_text("Trust appoints a new chief nurse")
            page.screenshot(path=SCREENSHOTS / "list-delete-desktop.png", full_page=True)
        finally:
            browser.close()
    assert problems == []
    for name in ("contacts-desktop", "contacts-phone", "contact-edit-desktop"):
        assert (SCREENSHOTS / f"{name}.png").stat().st_size > 10_000
