"""The `distributor` command as a press officer runs it: a real process on a SQLite file."""

from __future__ import annotations

import io
import os
import re
import shutil
import sqlite3
import subprocess
import sys
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from distributor.contacts_import import import_contacts, parse_contacts_csv
from distributor.lists import add_to_list, create_list
from distributor.migrate import upgrade
from distributor.releases import create_release, parse_release_text
from distributor.runtime import Runtime
from distributor.settings import Settings

DEMO_DIR = Path(__file__).resolve().parent.parent / "demo"
DEMO_RELEASE = DEMO_DIR / "safelives-police-response-2017-11-14.txt"
HEADLINE = "SafeLives welcomes progress report on the police response to domestic abuse"
NEXT_YEAR = date.today().year + 1
# A summer morning a year ahead: BST, so 09:00 in London is 08:00 UTC.
EMBARGO = f"{NEXT_YEAR}-07-01 09:00"
EMBARGO_UTC = f"{NEXT_YEAR}-07-01 08:00"

CONTACTS_CSV = (
    "email,name,outlet\n"
    "ann@example.com,Ann Archer,The Times\n"
    "bob@news.example.org,Bob Baker,\n"
    "zoe@bücher.example,Zoë Ångström,Süddeutsche Zeitung\n"
)
BAD_CONTACTS_CSV = (
    "email,name,outlet\n"
    "ann@example.com,Ann Archer,The Times\n"
    "not-an-address,Bob Baker,\n"
    'cat@example.com,Cat Cole,"Daily\nMirror"\n'
    "ANN@EXAMPLE.COM,Ann Again,The Times\n"
    ",Nobody,\n"
    "dan@example.com,Dan Dare,Eagle,extra\n"
    "eve@example.com,Eve Evans,Guardian\n"
)


def run(data_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """Run `python -m distributor ARGS` with its state in `data_dir`; never a traceback."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("DISTRIBUTOR_")}
    env["DISTRIBUTOR_DATA_DIR"] = str(data_dir)
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


def ok(data_dir: Path, *args: str) -> str:
    result = run(data_dir, *args)
    assert result.returncode == 0, result.stderr
    return result.stdout


def fails(data_dir: Path, *args: str, code: int = 1) -> str:
    """The error text of a command that must fail cleanly: `error: ...` on stderr only."""
    result = run(data_dir, *args)
    assert result.returncode == code, (result.stdout, result.stderr)
    assert result.stderr.startswith("error: "), result.stderr
    assert "error" not in result.stdout
    return result.stderr


def count(data_dir: Path, table: str) -> int:
    with sqlite3.connect(data_dir / "distributor.sqlite3") as db:
        (n,) = db.execute(f"SELECT count(*) FROM {table}").fetchone()
    return int(n)


def last_sunday(year: int, month: int) -> date:
    day = date(year, month + 1, 1) - timedelta(days=1)
    return day - timedelta(days=(day.weekday() + 1) % 7)


# --- the whole flow --------------------------------------------------------------------------


def test_import_list_create_schedule_status_cancel(tmp_path: Path) -> None:
    data = tmp_path / "var"
    csv_file = tmp_path / "contacts.csv"
    csv_file.write_text(CONTACTS_CSV, encoding="utf-8")

    assert "database schema is up to date" in ok(data, "db", "upgrade")
    assert "imported 3 new and updated 0 contact(s)" in ok(
        data, "contacts", "import", str(csv_file)
    )
    assert "created list 'Newsdesks'" in ok(data, "lists", "create", "Newsdesks")
    added = ok(
        data,
        "lists",
        "add",
        "Newsdesks",
        "ann@example.com",
        "BOB@news.example.org",
        "zoe@xn--bcher-kva.example",
    )
    assert "added 3 contact(s) to 'Newsdesks'" in added
    assert re.search(r"^\s*3\s+Newsdesks$", ok(data, "lists", "show"), re.MULTILINE)

    created = ok(data, "release", "create", "--from", str(DEMO_RELEASE))
    match = re.search(r"created release (\d+): (.*)$", created, re.MULTILINE)
    assert match, created
    release_id = match.group(1)
    assert match.group(2) == HEADLINE

    scheduled = ok(
        data,
        *("release", "schedule", release_id),
        *("--embargo", EMBARGO, "--tz", "Europe/London", "--to", "Newsdesks"),
    )
    assert "3 recipient(s)" in scheduled
    assert f"({EMBARGO_UTC} UTC)" in scheduled
    sent = re.search(r"scheduled send (\d+)", scheduled)
    assert sent, scheduled
    send_id = sent.group(1)

    status = ok(data, "status")
    assert f"send {send_id} (release {release_id}, scheduled)" in status
    # The embargo in the zone it was scheduled in, and in UTC.
    assert f"embargo {EMBARGO}:00 Europe/London ({EMBARGO_UTC}:00 UTC): pending 3" in status

    cancelled = ok(data, "release", "cancel", release_id)
    assert f"cancelled send {send_id}: 3 delivery(ies) will not be sent" in cancelled
    status = ok(data, "status")
    assert f"send {send_id} (release {release_id}, cancelled)" in status
    assert "cancelled 3" in status
    assert "pending" not in status


# --- contacts import -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def empty_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    data = tmp_path_factory.mktemp("empty") / "var"
    upgrade(Settings(data_dir=data).effective_database_url)
    return data


@pytest.fixture
def empty_data(empty_template: Path, tmp_path: Path) -> Path:
    """A data directory with a migrated, empty database."""
    return Path(shutil.copytree(empty_template, tmp_path / "var"))


def test_bad_csv_is_refused_with_every_line_and_imports_nothing(
    empty_data: Path, tmp_path: Path
) -> None:
    csv_file = tmp_path / "contacts.csv"
    csv_file.write_text(BAD_CONTACTS_CSV, encoding="utf-8-sig")  # as spreadsheets save it
    error = fails(empty_data, "contacts", "import", str(csv_file))
    assert "4 problem(s)" in error
    assert "nothing was imported" in error
    assert "--skip-invalid" in error
    assert re.search(r"line 3: 'not-an-address' is not a valid address", error)
    # Lines 4 and 5 hold one quoted record, so the next row is line 6.
    assert "line 6: 'ANN@EXAMPLE.COM' is the same address as line 2" in error
    assert "line 7: the email is empty" in error
    assert "line 8: more fields than the header has columns" in error
    assert "line 9" not in error
    assert count(empty_data, "contacts") == 0


def test_skip_invalid_imports_the_good_rows_and_reports_the_rest(
    empty_data: Path, tmp_path: Path
) -> None:
    csv_file = tmp_path / "contacts.csv"
    csv_file.write_text(BAD_CONTACTS_CSV, encoding="utf-8")
    result = run(empty_data, "contacts", "import", "--skip-invalid", str(csv_file))
    assert result.returncode == 0, result.stderr
    assert "imported 3 new and updated 0 contact(s)" in result.stdout
    skipped = [line.split(":")[0] for line in result.stderr.splitlines()]
    assert skipped == ["skipped line 3", "skipped line 6", "skipped line 7", "skipped line 8"]
    with sqlite3.connect(empty_data / "distributor.sqlite3") as db:
        rows = db.execute(
            "SELECT email, coalesce(outlets.name, '') FROM contacts"
            " LEFT JOIN outlets ON outlets.id = contacts.outlet_id ORDER BY email"
        ).fetchall()
    assert rows == [
        ("ann@example.com", "The Times"),
        ("cat@example.com", "Daily Mirror"),
        ("eve@example.com", "Guardian"),
    ]


def test_a_csv_that_is_not_utf8_is_refused(empty_data: Path, tmp_path: Path) -> None:
    latin1 = tmp_path / "latin1.csv"
    latin1.write_bytes("email,name\nann@example.com,Zoë\n".encode("latin-1"))
    assert "cannot read" in fails(empty_data, "contacts", "import", str(latin1))
    assert count(empty_data, "contacts") == 0


def test_a_database_without_its_schema_is_reported_not_a_traceback(tmp_path: Path) -> None:
    error = fails(tmp_path / "var", "status", code=1)
    assert "cannot use the database: no such table" in error
    assert "distributor db upgrade" in error


# --- scheduling with bad input ---------------------------------------------------------------


@pytest.fixture(scope="module")
def ready_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Contacts on the list "Newsdesks" and release 1, built once."""
    data = tmp_path_factory.mktemp("ready") / "var"
    settings = Settings(data_dir=data)
    upgrade(settings.effective_database_url)
    rt = Runtime(settings)
    now = datetime.now(UTC)
    try:
        with rt.sessions.begin() as session:
            parsed = parse_contacts_csv(io.StringIO(CONTACTS_CSV))
            import_contacts(session, parsed, now=now)
            create_list(session, "Newsdesks", now=now)
            add_to_list(session, "Newsdesks", [row.email for row in parsed.rows])
            draft = parse_release_text(DEMO_RELEASE.read_text(encoding="utf-8"))
            create_release(session, draft, now=now)
    finally:
        rt.close()
    return data


@pytest.fixture
def ready_data(ready_template: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(ready_template, tmp_path / "var"))


def schedule(data: Path, *options: str) -> str:
    return fails(data, "release", "schedule", "1", "--to", "Newsdesks", *options)


def assert_nothing_scheduled(data: Path) -> None:
    assert count(data, "sends") == 0
    assert count(data, "deliveries") == 0


def test_embargo_in_the_past_is_refused(ready_data: Path) -> None:
    error = schedule(ready_data, "--embargo", "2020-01-06 09:00", "--tz", "Europe/London")
    assert "is in the past" in error
    assert "choose a later time" in error
    assert_nothing_scheduled(ready_data)


def test_embargo_in_a_dst_gap_is_refused_naming_both_readings(ready_data: Path) -> None:
    day = last_sunday(NEXT_YEAR + 1, 3)
    error = schedule(ready_data, "--embargo", f"{day} 01:30", "--tz", "Europe/London")
    assert f"{day} 01:30 does not exist in Europe/London" in error
    assert f"{day} 00:30 GMT (00:30 UTC)" in error
    assert f"{day} 02:30 BST (01:30 UTC)" in error
    assert_nothing_scheduled(ready_data)


def test_embargo_in_an_unknown_zone_is_refused(ready_data: Path) -> None:
    error = schedule(ready_data, "--embargo", EMBARGO, "--tz", "Europe/Lndon")
    assert "unknown time zone 'Europe/Lndon'" in error
    assert_nothing_scheduled(ready_data)


def test_embargo_without_a_zone_is_refused(ready_data: Path) -> None:
    error = schedule(ready_data, "--embargo", EMBARGO)
    assert "needs a time zone" in error
    assert "Europe/London" in error
    assert_nothing_scheduled(ready_data)


def test_scheduling_to_a_missing_list_names_it(ready_data: Path) -> None:
    error = fails(
        ready_data,
        *("release", "schedule", "1", "--embargo", EMBARGO, "--tz", "Europe/London"),
        *("--to", "Newsdesks", "--to", "Health Desk"),
    )
    assert "no media list named 'Health Desk'" in error
    assert "Newsdesks'" not in error
    assert_nothing_scheduled(ready_data)
