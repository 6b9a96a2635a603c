"""The contacts, lists, segments and suppressions commands, run through the real entry point."""

from __future__ import annotations

import json
import sys
from datetime import date
from pathlib import Path

import pytest

from distributor.cli import main
from distributor.cli.progress import FileProgress
from distributor.migrate import upgrade

CONTACTS = (
    "Email address,name,outlet,beats,country\n"
    "ann@example.com,Ann Archer,Daily Example,crime; policing,GB\n"
    "bob@news.example.org,Bob Baker,The Gazette,politics,GB\n"
    "zoe@bücher.example,Zoë Ångström,Süddeutsche Zeitung,crime,DE\n"
)
READ_AS_CSV = "read contacts.csv as CSV, fields separated by commas (detected from the header)\n"

NEXT_SUMMER = f"{date.today().year + 1}-07-01 09:00"


class Cli:
    def __init__(self, capsys: pytest.CaptureFixture[str]) -> None:
        self.capsys = capsys

    def __call__(self, *args: str, code: int = 0) -> tuple[str, str]:
        """Run `distributor ARGS` in this process; returns stdout and stderr."""
        sys.argv = ["distributor", *args]
        try:
            main()
            status = 0
        except SystemExit as exit_:
            status = int(exit_.code or 0)
        out, err = self.capsys.readouterr()
        assert status == code, (args, out, err)
        assert "Traceback" not in out + err
        return out, err


@pytest.fixture
def cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> Cli:
    for name in ("DISTRIBUTOR_DATABASE_URL", "DISTRIBUTOR_ACTOR", "DISTRIBUTOR_ROLE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("DISTRIBUTOR_DATA_DIR", str(tmp_path / "var"))
    monkeypatch.setattr(sys, "argv", ["distributor"])
    upgrade(f"sqlite:///{tmp_path / 'var' / 'distributor.sqlite3'}")
    (tmp_path / "contacts.csv").write_text(CONTACTS, encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    return Cli(capsys)


def test_import_with_a_mapping_a_dry_run_then_for_real(cli: Cli) -> None:
    out, err = cli("contacts", "import", "contacts.csv", code=1)
    assert "missing column(s) email" in err and "--map" in err
    out, _ = cli("contacts", "import", "contacts.csv", "--map", "Email address=email", "--dry-run")
    assert out == f"{READ_AS_CSV}would import 3 new and updated 0 contact(s)\n"
    out, _ = cli("contacts", "import", "contacts.csv", "--map", "Email address=email")
    assert out == f"{READ_AS_CSV}imported 3 new and updated 0 contact(s)\n"
    _, err = cli("contacts", "import", "contacts.csv", "--map", "Email address", code=1)
    assert "is not COLUMN=FIELD" in err


def test_export_to_a_file_and_to_stdout(cli: Cli, tmp_path: Path) -> None:
    cli("contacts", "import", "contacts.csv", "--map", "Email address=email")
    out, _ = cli("contacts", "export", "out.json")
    assert out == "exported 3 contact(s) to out.json\n"
    exported = json.loads((tmp_path / "out.json").read_text(encoding="utf-8"))
    assert [c["email"] for c in exported] == [
        "ann@example.com",
        "bob@news.example.org",
        "zoe@bücher.example",
    ]
    out, _ = cli("contacts", "export", "-", "--where", 'country = "DE"')
    assert out.splitlines()[1].startswith("zoe@bücher.example,Zoë Ångström,Süddeutsche Zeitung")


def test_segments_are_previewed_saved_shown_and_sent_to(cli: Cli, tmp_path: Path) -> None:
    cli("contacts", "import", "contacts.csv", "--map", "Email address=email")
    out, _ = cli("segments", "preview", 'beat in ("crime", "policing") and country = "GB"')
    assert out == "1 contact(s) match, for example:\n  ann@example.com  Ann Archer\n"
    _, err = cli("segments", "preview", "beat = crime", code=1)
    assert err.startswith("error: expected a quoted value, found 'crime'")
    assert err.splitlines()[-1] == "         ^^^^^"
    out, _ = cli("segments", "save", "Crime", 'beat = "crime"', "--yes", "--as", "Pat")
    assert out.endswith("saved segment 'Crime'\n")
    out, _ = cli("segments", "show")
    assert out == '       2  Crime: beat = "crime"\n'
    cli("suppressions", "add", "zoe@xn--bcher-kva.example", "--reason", "unsubscribed")
    out, _ = cli("segments", "members", "Crime")
    assert out == "ann@example.com  Ann Archer\n"
    release = tmp_path / "release.txt"
    release.write_text(
        "Headline: Charity welcomes report\nDateline: London\n\nFirst paragraph.\n",
        encoding="utf-8",
    )
    created, _ = cli("release", "create", "--from", str(release))
    release_id = created.split()[2].rstrip(":")
    out, _ = cli(
        "release",
        "schedule",
        release_id,
        *("--embargo", NEXT_SUMMER, "--tz", "Europe/London", "--segment", "Crime"),
    )
    assert "1 recipient(s)" in out
    _, err = cli("release", "schedule", release_id, "--embargo", NEXT_SUMMER, "--tz", "UTC", code=1)
    assert "at least one media list or segment" in err


def test_lists_by_address_and_by_filter(cli: Cli) -> None:
    cli("contacts", "import", "contacts.csv", "--map", "Email address=email")
    cli("lists", "create", "Germany")
    out, _ = cli("lists", "add", "Germany", "--matching", 'country = "DE"')
    assert out == "added 1 contact(s) to 'Germany'\n"
    out, _ = cli("lists", "add", "Germany", "ANN@example.com")
    assert out == "added 1 contact(s) to 'Germany'\n"
    out, _ = cli("lists", "members", "Germany")
    assert out == "ann@example.com  Ann Archer\nzoe@bücher.example  Zoë Ångström\n"
    out, _ = cli("lists", "remove", "Germany", "ann@example.com")
    assert out == "removed 1 contact(s) from 'Germany'\n"
    cli("lists", "delete", "Germany")
    assert cli("lists", "show")[0] == ""


def test_removing_a_suppression_needs_an_admin(cli: Cli, monkeypatch: pytest.MonkeyPatch) -> None:
    out, _ = cli("suppressions", "add", "Ann@Example.com", "--note", "asked by phone")
    assert out == "suppressed Ann@Example.com\n"
    assert (
        cli("suppressions", "add", "ann@example.com")[0]
        == "ann@example.com was suppressed already\n"
    )
    _, err = cli("suppressions", "remove", "ann@example.com", "--as", "Pat", code=1)
    assert "Pat is a press officer and only an admin may remove" in err
    monkeypatch.setenv("DISTRIBUTOR_ROLE", "admin")
    monkeypatch.setenv("DISTRIBUTOR_ACTOR", "Sam")
    out, _ = cli("suppressions", "show")
    assert "do_not_contact  ann@example.com  added by " in out
    assert out.rstrip().endswith("(asked by phone)")
    assert cli("suppressions", "check", "ANN@example.com")[0] == "ANN@example.com is suppressed\n"
    out, _ = cli("suppressions", "remove", "ann@example.com")
    assert out == "ann@example.com may be mailed again\n"
    cli("suppressions", "check", "ann@example.com", code=1)


def test_forgetting_and_the_personal_data_export(cli: Cli, tmp_path: Path) -> None:
    cli("contacts", "import", "contacts.csv", "--map", "Email address=email")
    cli("contacts", "export-personal-data", "ann@example.com", "--output", "ann.json")
    held = json.loads((tmp_path / "ann.json").read_text(encoding="utf-8"))
    assert held["contact"]["beats"] == ["crime", "policing"]
    out, _ = cli("contacts", "forget", "ann@example.com", "--yes", "--as", "Pat")
    assert out.startswith("erased the contact ann@example.com")
    out, _ = cli("contacts", "export-personal-data", "ann@example.com")
    assert json.loads(out)["contact"] is None
    out, _ = cli("contacts", "import", "contacts.csv", "--map", "Email address=email")
    assert out == (
        f"{READ_AS_CSV}imported 0 new and updated 2 contact(s)\n"
        "left out 1 address(es) whose owners asked to be forgotten\n"
    )
    out, err = cli("contacts", "not-mailed", "--months", "0")
    assert [line.split()[1] for line in out.splitlines()] == [
        "bob@news.example.org",
        "zoe@bücher.example",
    ]
    assert err == "2 contact(s) not mailed for 0 month(s)\n"


def test_flags_on_a_journalist_and_on_an_outlet(cli: Cli) -> None:
    cli("contacts", "import", "contacts.csv", "--map", "Email address=email")
    out, _ = cli("contacts", "flag", "ann@example.com", "--vetted")
    assert out == "ann@example.com: vetted yes, embargo breaker no\n"
    out, _ = cli("contacts", "outlet-flag", "the gazette", "--breaker")
    assert out == "The Gazette: vetted no, embargo breaker yes\n"
    out, _ = cli("segments", "preview", "embargo_vetted or embargo_breaker")
    assert out.startswith("2 contact(s) match")
    _, err = cli("contacts", "flag", "nobody@example.com", "--vetted", code=1)
    assert "no contact with the address nobody@example.com" in err


def test_the_progress_bar_shows_only_on_a_terminal(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    with FileProgress() as progress:
        assert progress.callback is None
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)
    with FileProgress() as progress:
        assert progress.callback is not None
        for done in (0, 500, 1000):
            progress.callback("checking", done, 1000)
        progress.callback("importing", 1000, 1000)
    err = capsys.readouterr().err
    assert "checking" in err and "importing" in err and "100%" in err
