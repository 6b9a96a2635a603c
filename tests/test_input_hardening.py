"""Bad input never crashes, corrupts or silently misleads.

Each command is run through the real entry point on a fresh SQLite installation. A
refusal exits 1 with `error: ...` naming the problem, a usage error exits 2, and neither
stores anything; no input, however odd, ends in a traceback.
"""

from __future__ import annotations

import os
import re
import sqlite3
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from email import message_from_bytes, policy
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from distributor.cli import main
from distributor.embargo import load_zone, resolve_embargo
from distributor.errors import DistributorError, InvalidAddressError, InvalidEmbargoError
from distributor.gdpr import not_mailed_since
from distributor.mail.builder import Recipient
from distributor.mail.unsubscribe import UnsubscribeTokens
from distributor.migrate import upgrade
from distributor.releases import content_of, get_release
from distributor.runtime import Runtime
from distributor.settings import Settings
from distributor.suppression import (
    SuppressionReason,
    is_suppressed,
    list_suppressions,
    suppress,
)
from distributor.unsubscribes import TEST_COPY_SEND_ID, handle_unsubscribe
from tests.support.smtp import RecordingSMTPServer

CONTACTS = (
    "email,name,outlet,country\n"
    "ann@example.com,Ann Archer,Daily Example,GB\n"
    "bob@news.example.org,Bob Baker,The Gazette,GB\n"
)
RELEASE = "Headline: Charity welcomes report\nDateline: London\n\nFirst paragraph.\n"
TOO_LARGE = "99999999999999999999"  # past a 64-bit integer
SOON = f"{date.today().year + 1}-07-01 09:00"
NOW = datetime(2026, 12, 1, 9, tzinfo=UTC)
AMBIGUOUS_ZONES = ["localtime", "posixrules", "Factory", "/etc/localtime", "posix/Europe/London"]


@dataclass(frozen=True)
class Run:
    status: int
    out: str
    err: str


class Cli:
    def __init__(self, capsys: pytest.CaptureFixture[str], data_dir: Path) -> None:
        self.capsys = capsys
        self.data_dir = data_dir

    def run(self, *args: str) -> Run:
        """`distributor ARGS` in this process; anything but a clean exit fails the test."""
        sys.argv = ["distributor", *args]
        self.capsys.readouterr()
        try:
            main()
            status = 0
        except SystemExit as exit_:
            status = exit_.code if isinstance(exit_.code, int) else (0 if exit_.code is None else 1)
        out, err = self.capsys.readouterr()
        assert "Traceback" not in out + err, (args, out, err)
        return Run(status, out, err)

    def ok(self, *args: str) -> str:
        result = self.run(*args)
        assert result.status == 0, (args, result)
        return result.out

    def refused(self, *args: str) -> str:
        """The message of a command refused for bad input: exit 1, `error: ...`."""
        result = self.run(*args)
        assert result.status == 1, (args, result)
        assert result.err.startswith("error: "), result.err
        return result.err

    def misused(self, *args: str) -> str:
        """The message of a command whose arguments are not understood: exit 2."""
        result = self.run(*args)
        assert result.status == 2, (args, result)
        return " ".join(re.sub(r"[│╭╮╰╯─]", " ", result.err).split())

    def count(self, table: str) -> int:
        with sqlite3.connect(self.data_dir / "distributor.sqlite3") as db:
            (n,) = db.execute(f"SELECT count(*) FROM {table}").fetchone()
        return int(n)


@pytest.fixture
def cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> Cli:
    """A fresh installation with two journalists on the list Newsdesks and release 1."""
    for name in [n for n in os.environ if n.startswith("DISTRIBUTOR_")]:
        monkeypatch.delenv(name)
    data_dir = tmp_path / "var"
    monkeypatch.setenv("DISTRIBUTOR_DATA_DIR", str(data_dir))
    monkeypatch.setattr(sys, "argv", ["distributor"])
    monkeypatch.chdir(tmp_path)
    upgrade(f"sqlite:///{data_dir / 'distributor.sqlite3'}")
    (tmp_path / "contacts.csv").write_text(CONTACTS, encoding="utf-8")
    (tmp_path / "release.txt").write_text(RELEASE, encoding="utf-8")
    runner = Cli(capsys, data_dir)
    runner.ok("contacts", "import", "contacts.csv")
    runner.ok("lists", "create", "Newsdesks")
    runner.ok("lists", "add", "Newsdesks", "ann@example.com", "bob@news.example.org")
    assert "created release 1" in runner.ok("release", "create", "--from", "release.txt")
    return runner


@contextmanager
def installation(cli: Cli) -> Iterator[Runtime]:
    rt = Runtime(Settings(data_dir=cli.data_dir))
    try:
        yield rt
    finally:
        rt.close()


def schedule(cli: Cli, embargo: str, zone: str) -> Run:
    return cli.run(
        "release", "schedule", "1", "--embargo", embargo, "--tz", zone, "--to", "Newsdesks"
    )


# --- numbers --------------------------------------------------------------------------------


def test_a_send_id_past_64_bits_is_a_usage_error_naming_the_id(cli: Cli) -> None:
    for args in (
        ("status", TOO_LARGE),
        ("send", "pause", TOO_LARGE),
        ("send", "resume", TOO_LARGE),
        ("deliveries", "retry", "--send", TOO_LARGE),
        ("deliveries", "show", "ann@example.com", "--send", TOO_LARGE),
    ):
        assert f"{TOO_LARGE} is too large for a send id" in cli.misused(*args)


def test_a_send_id_of_zero_or_words_is_a_usage_error(cli: Cli) -> None:
    assert "0 is not a send id" in cli.misused("status", "0")
    assert "'first' is not a send id" in cli.misused("send", "pause", "first")


def test_cancelling_a_release_id_past_64_bits_is_refused_and_changes_nothing(cli: Cli) -> None:
    schedule(cli, SOON, "Europe/London")
    assert "too large" in cli.misused("release", "cancel", TOO_LARGE)
    assert cli.count("sends WHERE state = 'scheduled'") == 1


def test_a_sample_past_64_bits_is_refused(cli: Cli) -> None:
    assert "too large" in cli.misused(
        "segments", "preview", 'country = "GB"', "--sample", TOO_LARGE
    )


def test_process_options_out_of_range_are_usage_errors(cli: Cli) -> None:
    assert "give 1 to 65535" in cli.misused("mailcatcher", "--port", "0")
    assert "give 0 to 60 seconds" in cli.misused("scheduler", "--interval", "nan")
    assert "give 3 to 3600 seconds" in cli.misused("demo", "--lead", "inf")
    assert "give 0 to 256" in cli.misused("worker", "--concurrency", TOO_LARGE)
    # The defaults of the other options go through the same checks, and pass.
    assert "unknown log level 'loud'" in cli.refused("worker", "--loglevel", "loud")


def test_an_unknown_send_is_refused_with_exit_status_1(cli: Cli) -> None:
    assert "no send with id 999" in cli.refused("status", "999")


def test_looking_back_further_than_a_century_is_refused(cli: Cli) -> None:
    assert "give 0 to 1200" in cli.misused("contacts", "not-mailed", "--months", TOO_LARGE)
    with (
        installation(cli) as rt,
        rt.sessions() as session,
        pytest.raises(DistributorError, match="give 0 to 1200"),
    ):
        list(not_mailed_since(session, months=1201, now=datetime.now(UTC)))


# --- embargo times and zones -----------------------------------------------------------------


def test_an_embargo_at_the_end_of_time_is_refused_and_nothing_is_scheduled(cli: Cli) -> None:
    result = schedule(cli, "9999-12-31 23:59", "America/New_York")
    assert result.status == 1, result
    assert "more than 730 days ahead" in result.err
    assert "DISTRIBUTOR_MAX_EMBARGO_DAYS" in result.err
    assert cli.count("sends") == 0


def test_an_embargo_a_century_ahead_is_refused_as_a_mistyped_year(cli: Cli) -> None:
    result = schedule(cli, "2126-07-01 09:00", "Europe/London")
    assert result.status == 1, result
    assert "2126-07-01 09:00 in Europe/London is more than 730 days ahead" in result.err
    assert "check the year" in result.err
    assert cli.count("sends") == 0 and cli.count("deliveries") == 0


def test_an_embargo_at_the_start_of_time_is_refused_as_past(cli: Cli) -> None:
    result = schedule(cli, "0001-01-01 00:00", "Asia/Tokyo")
    assert result.status == 1, result
    assert "is in the past" in result.err
    assert cli.count("sends") == 0


def test_an_embargo_within_the_window_is_scheduled(cli: Cli) -> None:
    result = schedule(cli, SOON, "Europe/London")
    assert result.status == 0, result
    assert cli.count("sends") == 1


@pytest.mark.parametrize("zone", AMBIGUOUS_ZONES)
def test_a_zone_that_depends_on_the_host_is_refused(cli: Cli, zone: str) -> None:
    result = schedule(cli, SOON, zone)
    assert result.status == 1, result
    assert f"unknown time zone {zone!r}" in result.err
    assert "IANA" in result.err
    assert cli.count("sends") == 0


def test_the_furthest_embargo_is_a_setting() -> None:
    now = datetime(2026, 6, 15, 12, tzinfo=UTC)
    with pytest.raises(InvalidEmbargoError, match="more than 730 days ahead"):
        resolve_embargo("2029-01-01 09:00", "UTC", now=now)
    wider = Settings(max_embargo_days=3650).max_embargo_ahead
    assert resolve_embargo("2029-01-01 09:00", "UTC", now=now, max_ahead=wider) == datetime(
        2029, 1, 1, 9, tzinfo=UTC
    )
    narrower = Settings(max_embargo_days=30).max_embargo_ahead
    with pytest.raises(InvalidEmbargoError, match="more than 30 days ahead"):
        resolve_embargo("2026-08-01 09:00", "UTC", now=now, max_ahead=narrower)


@pytest.mark.parametrize("days", ["0", "-1", "3651", TOO_LARGE, "two years"])
def test_a_furthest_embargo_out_of_range_is_refused_at_start_up(
    cli: Cli, monkeypatch: pytest.MonkeyPatch, days: str
) -> None:
    monkeypatch.setenv("DISTRIBUTOR_MAX_EMBARGO_DAYS", days)
    assert "DISTRIBUTOR_MAX_EMBARGO_DAYS" in cli.refused("status")


def test_zone_names_must_be_iana_places() -> None:
    assert load_zone("Europe/London").key == "Europe/London"
    assert load_zone("UTC").key == "UTC"
    for zone in AMBIGUOUS_ZONES:
        with pytest.raises(InvalidEmbargoError, match="unknown time zone"):
            load_zone(zone)


# --- settings ----------------------------------------------------------------------------------


def test_a_database_url_that_cannot_be_parsed_is_refused_naming_the_setting(
    cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DISTRIBUTOR_DATABASE_URL", "garbage")
    error = cli.refused("status")
    assert "DISTRIBUTOR_DATABASE_URL 'garbage' is not a database URL" in error
    assert "postgresql+psycopg://" in error


def test_a_database_url_with_an_unknown_kind_hides_its_password(
    cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DISTRIBUTOR_DATABASE_URL", "mysq://admin:hunter2@db.example.org/press")
    error = cli.refused("status")
    assert "DISTRIBUTOR_DATABASE_URL" in error
    assert "hunter2" not in error


def test_a_sqlite_file_in_a_missing_folder_is_refused_and_the_folder_not_made(
    cli: Cli, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    folder = tmp_path / "no" / "such" / "folder"
    monkeypatch.setenv("DISTRIBUTOR_DATABASE_URL", f"sqlite:///{folder / 'press.sqlite3'}")
    for args in (("db", "upgrade"), ("status",)):
        error = cli.refused(*args)
        assert f"the folder '{folder}', which does not exist" in error
    assert not (tmp_path / "no").exists()


def test_an_unreachable_database_server_is_explained(
    cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Port 1 on loopback: nothing listens there, so the connection is refused at once.
    monkeypatch.setenv("DISTRIBUTOR_DATABASE_URL", "postgresql+psycopg://nobody@127.0.0.1:1/x")
    error = cli.refused("status")
    assert "cannot use the database" in error
    assert "DISTRIBUTOR_DATABASE_URL" in error


def test_a_relay_url_that_cannot_be_parsed_is_refused_before_scheduling(
    cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DISTRIBUTOR_SMTP_URL", "garbage")
    result = schedule(cli, SOON, "Europe/London")
    assert result.status == 1, result
    assert "DISTRIBUTOR_SMTP_URL" in result.err
    assert "smtp://host:port" in result.err
    monkeypatch.delenv("DISTRIBUTOR_SMTP_URL")
    assert cli.count("sends") == 0


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("smtp://relay example.org:25", "is not a host name or address"),
        ("smtp://relay.example.org:587?startls=true", "unknown option 'startls'"),
        ("http://relay.example.org", "smtp://host:port"),
    ],
)
def test_a_relay_url_that_would_fail_at_the_lift_is_refused_at_start_up(
    cli: Cli, monkeypatch: pytest.MonkeyPatch, url: str, problem: str
) -> None:
    monkeypatch.setenv("DISTRIBUTOR_SMTP_URL", url)
    error = cli.refused("status")
    assert "DISTRIBUTOR_SMTP_URL" in error and problem in error


def test_relay_host_names_of_container_networks_are_accepted() -> None:
    assert Settings(smtp_url="smtp://mail_relay:1025").smtp_url == "smtp://mail_relay:1025"


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("DISTRIBUTOR_SMTP_TIMEOUT_SECONDS", "inf"),
        ("DISTRIBUTOR_SMTP_TIMEOUT_SECONDS", "nan"),
        ("DISTRIBUTOR_BATCH_SIZE", TOO_LARGE),
        ("DISTRIBUTOR_RETRY_WINDOW_SECONDS", "1e300"),
    ],
)
def test_absurd_numbers_in_settings_are_refused_naming_them(
    cli: Cli, monkeypatch: pytest.MonkeyPatch, name: str, value: str
) -> None:
    monkeypatch.setenv(name, value)
    assert name in cli.refused("status")


# --- addresses ---------------------------------------------------------------------------------


def test_suppressing_something_that_is_not_an_address_is_refused(cli: Cli) -> None:
    error = cli.refused("suppressions", "add", "not an email")
    assert "'not an email' is not an email address" in error
    assert "nothing was suppressed" in error
    error = cli.refused("suppressions", "add", "ann@@example.com")
    assert "not a valid email address" in error
    assert cli.count("suppressions") == 0
    assert "suppressed carl@example.com" in cli.ok("suppressions", "add", "carl@example.com")
    assert cli.count("suppressions") == 1


def test_no_reason_turns_a_non_address_into_a_suppression(runtime: Runtime) -> None:
    with runtime.sessions.begin() as session:
        for reason in SuppressionReason:
            with pytest.raises(InvalidAddressError, match="nothing was suppressed"):
                suppress(session, email="garbage", reason=reason, source="test", now=NOW)
        with pytest.raises(InvalidAddressError, match="not a valid email address"):
            suppress(
                session,
                email="ann@@example.com",
                reason=SuppressionReason.DO_NOT_CONTACT,
                source="test",
                now=NOW,
            )
    with runtime.sessions() as session:
        assert list_suppressions(session) == []


def test_forgetting_something_that_is_not_an_address_is_refused(cli: Cli) -> None:
    error = cli.refused("contacts", "forget", "garbage", "--yes")
    assert "'garbage' is not an email address" in error
    assert "nothing was erased" in error
    assert cli.count("suppressions") == 0
    assert "erased the contact" in cli.ok("contacts", "forget", "ann@example.com", "--yes")
    assert cli.count("suppressions") == 1


# --- test copies ---------------------------------------------------------------------------------


def unsubscribe_links(data: bytes) -> list[str]:
    message = message_from_bytes(data, policy=policy.default)
    return re.findall(r"<([^>]+)>", str(message["List-Unsubscribe"]))


def test_a_previews_unsubscribe_link_does_not_suppress_the_journalist(
    cli: Cli, tmp_path: Path
) -> None:
    cli.ok("release", "preview", "1", "--contact", "ann@example.com", "--eml", "copy.eml")
    https, mailto = unsubscribe_links((tmp_path / "copy.eml").read_bytes())
    assert https.startswith("http") and mailto.startswith("mailto:")

    for link in (https, mailto):
        error = cli.refused("unsubscribe", link)
        assert "TEST copy" in error
        assert "ann@example.com was not unsubscribed" in error
    assert cli.count("suppressions") == 0
    assert cli.run("suppressions", "check", "ann@example.com").status == 1


def test_a_test_sends_unsubscribe_link_does_not_suppress_the_journalist(
    cli: Cli, monkeypatch: pytest.MonkeyPatch, smtp_server: RecordingSMTPServer
) -> None:
    monkeypatch.setenv("DISTRIBUTOR_SMTP_URL", smtp_server.url)
    cli.ok(
        *("release", "test-send", "1", "--to", "colleague@example.org"),
        *("--contact", "ann@example.com"),
    )
    (arrival,) = smtp_server.wait_for(1, timeout=10)
    https, _ = unsubscribe_links(arrival.data)

    assert "TEST copy" in cli.refused("unsubscribe", https)
    assert cli.count("suppressions") == 0


def test_the_unsubscribe_core_tells_test_links_from_real_ones(
    runtime: Runtime, make_audience: Callable[..., tuple[int, list[str]]]
) -> None:
    release_id, (journalist, other, *_) = make_audience(3)
    with runtime.sessions() as session:
        content = content_of(get_release(session, release_id))
    recipient = Recipient(delivery_id=1, email=journalist, name="", outlet="", time_zone=None)
    test_copy = runtime.message_builder(content, send_id=0, notice=None, test=True)
    real = runtime.message_builder(content, send_id=7, notice=None)
    key = runtime.settings.secret_key
    # Before test copies had a key of their own, they were built as send 0.
    older_test_token = UnsubscribeTokens(key).issue(
        email=other, send_id=TEST_COPY_SEND_ID, issued_at=0
    )

    with runtime.sessions.begin() as session:
        from_test_copy = handle_unsubscribe(
            session, token=unsubscribe_links(test_copy.build(recipient))[0], key=key, now=NOW
        )
        from_older_copy = handle_unsubscribe(session, token=older_test_token, key=key, now=NOW)
    assert (from_test_copy.email, from_test_copy.test_copy) == (journalist, True)
    assert from_test_copy.newly_suppressed is False
    assert "nothing was changed" in from_test_copy.explanation
    assert (from_older_copy.email, from_older_copy.test_copy) == (other, True)
    with runtime.sessions() as session:
        assert list_suppressions(session) == []

    with runtime.sessions.begin() as session:
        from_release = handle_unsubscribe(
            session, token=unsubscribe_links(real.build(recipient))[0], key=key, now=NOW
        )
    assert from_release.test_copy is False
    with runtime.sessions() as session:
        assert is_suppressed(session, journalist)
        assert not is_suppressed(session, other)


# --- anything at all ------------------------------------------------------------------------------

numbers = st.one_of(
    st.integers(min_value=-(10**30), max_value=10**30),
    st.sampled_from([0, -1, 1, 2**63 - 1, 2**63, 2**64, 10**100]),
).map(str)
this_year = date.today().year
local_times = st.one_of(
    st.datetimes(min_value=datetime(1, 1, 1), max_value=datetime(9999, 12, 31)),
    # Around the window's edges: the past, the next two years, and just beyond.
    st.datetimes(
        min_value=datetime(this_year - 1, 1, 1), max_value=datetime(this_year + 3, 12, 31)
    ),
).map(lambda moment: f"{moment:%Y-%m-%d %H:%M}") | st.text(max_size=24)
zones = st.one_of(
    st.sampled_from(
        [
            "UTC",
            "Europe/London",
            "America/New_York",
            "Pacific/Kiritimati",
            "Etc/GMT+12",
            "",
            *AMBIGUOUS_ZONES,
        ]
    ),
    st.text(max_size=30),
)
commands = st.one_of(
    numbers.map(lambda n: ["status", n]),
    numbers.map(lambda n: ["release", "cancel", n]),
    numbers.map(lambda n: ["send", "pause", n]),
    numbers.map(lambda n: ["deliveries", "retry", "--send", n]),
    numbers.map(lambda n: ["segments", "preview", 'country = "GB"', "--sample", n]),
    numbers.map(lambda n: ["contacts", "not-mailed", "--months", n]),
    st.text(max_size=40).map(lambda text: ["suppressions", "add", text]),
    st.tuples(numbers, local_times, zones).map(
        lambda t: [
            "release",
            "schedule",
            t[0],
            "--embargo",
            t[1],
            "--tz",
            t[2],
            "--to",
            "Newsdesks",
        ]
    ),
    st.tuples(local_times, zones).map(
        lambda t: ["release", "schedule", "1", "--embargo", t[0], "--tz", t[1], "--to", "Newsdesks"]
    ),
)


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(args=commands)
def test_no_input_ends_in_a_traceback(cli: Cli, args: list[str]) -> None:
    result = cli.run(*args)
    assert result.status in (0, 1, 2), (args, result)
    if result.status == 1:
        assert result.err.startswith("error: "), (args, result)
    stored = cli.count("suppressions WHERE email_key NOT LIKE '%@%'")
    assert stored == 0, args
    assert cli.count("sends WHERE embargo_at > '2100'") == 0, args


def test_the_window_allows_the_time_of_day_of_its_last_day() -> None:
    now = datetime(2026, 6, 15, 12, tzinfo=UTC)
    last = now + timedelta(days=730)
    assert resolve_embargo(f"{last:%Y-%m-%d %H:%M}", "UTC", now=now) == last
    with pytest.raises(InvalidEmbargoError, match="more than 730 days"):
        resolve_embargo(f"{last + timedelta(minutes=1):%Y-%m-%d %H:%M}", "UTC", now=now)
