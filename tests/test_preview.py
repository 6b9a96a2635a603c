"""Preview and test copies from the command line: the real message, clearly marked TEST."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from datetime import UTC, date, datetime
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path

import pytest

from distributor.contacts_import import ContactRow, ParsedContacts, import_contacts
from distributor.migrate import upgrade
from distributor.runtime import Runtime
from distributor.settings import Settings
from tests.support.mail import FIXTURES, html_of, text_of
from tests.support.smtp import RecordingSMTPServer

NEXT_YEAR = date.today().year + 1
HEADLINE = "Charity opens its largest refuge, with room for 40 families"


def run(data_dir: Path, *args: str, smtp_url: str = "") -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DISTRIBUTOR_")}
    env["DISTRIBUTOR_DATA_DIR"] = str(data_dir)
    if smtp_url:
        env["DISTRIBUTOR_SMTP_URL"] = smtp_url
    result = subprocess.run(
        [sys.executable, "-m", "distributor", *args],
        cwd=data_dir.parent,
        env=env,
        capture_output=True,
        text=True,
        encoding="utf-8",
        timeout=120,
        check=False,
    )
    assert "Traceback" not in result.stdout + result.stderr, result.stderr
    return result


def ok(data_dir: Path, *args: str, smtp_url: str = "") -> str:
    result = run(data_dir, *args, smtp_url=smtp_url)
    assert result.returncode == 0, result.stderr
    return result.stdout


@pytest.fixture
def release(tmp_path: Path) -> tuple[Path, str]:
    """A data folder with the brand, the rich release and one contact; the release id."""
    data_dir = tmp_path / "var"
    upgrade(f"sqlite:///{data_dir / 'distributor.sqlite3'}")
    files = tmp_path / "release"
    shutil.copytree(FIXTURES, files)
    (files / "about.md").write_text("About SafeLives: we end domestic abuse.", encoding="utf-8")
    ok(
        data_dir,
        *("organisation", "set", "SafeLives", "--logo", str(files / "logo.png")),
        *("--about", str(files / "about.md"), "--primary-colour", "#5B2C6F"),
        *("--website", "https://safelives.example.org"),
    )
    created = ok(data_dir, "release", "create", "--from", str(files / "refuge-release.md"))
    match = re.search(r"created release (\d+): (.*)$", created, re.MULTILINE)
    assert match is not None and match.group(2) == HEADLINE
    rt = Runtime(Settings(data_dir=data_dir))
    try:
        with rt.sessions.begin() as session:
            row = ContactRow(
                line=2, email="zoe@bücher.example", name="Zoë Ångström", outlet="Süddeutsche"
            )
            import_contacts(session, ParsedContacts(rows=[row]), now=datetime.now(UTC))
    finally:
        rt.close()
    return data_dir, match.group(1)


def read_eml(path: Path) -> EmailMessage:
    message = message_from_bytes(path.read_bytes(), policy=policy.default)
    assert isinstance(message, EmailMessage)
    return message


def test_preview_writes_the_message_and_a_browser_copy_marked_test(
    release: tuple[Path, str], tmp_path: Path
) -> None:
    data_dir, release_id = release
    html_file, eml_file = tmp_path / "out.html", tmp_path / "out.eml"

    output = ok(
        data_dir, "release", "preview", release_id, "--html", str(html_file), "--eml", str(eml_file)
    )

    assert f"subject: [TEST] {HEADLINE}" in output
    message = read_eml(eml_file)
    assert message["Subject"] == f"[TEST] {HEADLINE}"
    assert "TEST COPY" in text_of(message) and "TEST COPY" in html_of(message)
    assert "Dear Sample Journalist," in text_of(message)
    assert "EMBARGOED" not in text_of(message)  # not scheduled, no embargo given
    browser = html_file.read_text(encoding="utf-8")
    assert "cid:" not in browser
    assert browser.count("data:image/png;base64,") == 2  # the logo and the refuge
    assert "TEST COPY" in browser


def test_preview_for_a_contact_with_an_embargo_shows_their_zone(
    release: tuple[Path, str], tmp_path: Path
) -> None:
    data_dir, release_id = release
    eml_file = tmp_path / "zoe.eml"

    ok(
        data_dir,
        *("release", "preview", release_id, "--contact", "ZOE@bücher.example"),
        *("--eml", str(eml_file), "--embargo", f"{NEXT_YEAR}-07-01 09:00", "--tz", "Europe/London"),
    )

    message = read_eml(eml_file)
    assert message["Subject"].startswith("[TEST] EMBARGOED UNTIL 09:00 BST, ")
    assert message["To"].addresses[0].display_name == "Zoë Ångström"
    assert message["To"].addresses[0].domain == "xn--bcher-kva.example"
    text = text_of(message)
    assert "That is 08:00 UTC" in text
    assert "Zoë Ångström, Süddeutsche, at zoe@bücher.example" in " ".join(text.split())


def test_preview_refuses_unclear_requests_with_a_message(release: tuple[Path, str]) -> None:
    data_dir, release_id = release
    for args, message in (
        ((), "--html FILE and/or --eml FILE"),
        (("--eml", "x.eml", "--embargo", "2031-01-01 00:00"), "--embargo and --tz together"),
        (("--eml", "x.eml", "--contact", "nobody@example.com"), "no contact with the address"),
    ):
        result = run(data_dir, "release", "preview", release_id, *args)
        assert result.returncode == 1
        assert message in result.stderr
    missing = run(data_dir, "release", "preview", "99", "--eml", "x.eml")
    assert "no release with id 99" in missing.stderr


def test_test_send_delivers_marked_copies_to_the_given_addresses(
    release: tuple[Path, str], smtp_server: RecordingSMTPServer
) -> None:
    data_dir, release_id = release

    output = ok(
        data_dir,
        *("release", "test-send", release_id, "--to", "editor@example.org"),
        *("--to", "me@example.org", "--contact", "zoe@bücher.example"),
        smtp_url=smtp_server.url,
    )

    received = smtp_server.wait_for(2, timeout=10)
    assert sorted(r.recipient for r in received) == ["editor@example.org", "me@example.org"]
    for arrival in received:
        message = arrival.parsed()
        assert message["Subject"] == f"[TEST] {HEADLINE}"
        assert message["To"].addresses[0].addr_spec == arrival.recipient
        assert message["To"].addresses[0].display_name == "Zoë Ångström"
        assert arrival.mail_from == "press@example.org"  # test copies bounce to the sender
    assert len({r.parsed()["Message-ID"] for r in received}) == 2
    assert output.count("test copy sent to") == 2


def test_release_create_warns_when_gmail_would_clip(tmp_path: Path) -> None:
    data_dir = tmp_path / "var"
    upgrade(f"sqlite:///{data_dir / 'distributor.sqlite3'}")
    long_release = tmp_path / "long.md"
    paragraphs = "\n\n".join(f"Paragraph {n}: " + "words " * 60 for n in range(400))
    long_release.write_text(
        f'+++\nheadline = "A long one"\n+++\n\n{paragraphs}\n', encoding="utf-8"
    )

    result = run(data_dir, "release", "create", "--from", str(long_release))

    assert result.returncode == 0, result.stderr
    assert "created release 1: A long one" in result.stdout
    assert result.stderr.startswith("warning: the HTML of this release is")
    assert "Gmail clips messages over 102 KB" in result.stderr
