"""`--json` on the listing commands: one JSON document carrying the facts the table shows."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest

from distributor.cli import main
from distributor.migrate import upgrade

CONTACTS = (
    "email,name,outlet,beats,country\n"
    "ann@example.com,Ann Archer,Daily Example,crime; policing,GB\n"
    "bob@news.example.org,Bob Baker,The Gazette,politics,GB\n"
    "zoe@bücher.example,Zoë Ångström,Süddeutsche Zeitung,crime,DE\n"
)


class Cli:
    """Runs `distributor ARGS` in this process, as a person at a terminal would."""

    def __init__(self, capsys: pytest.CaptureFixture[str]) -> None:
        self.capsys = capsys

    def _run(self, args: tuple[str, ...]) -> tuple[int, str, str]:
        sys.argv = ["distributor", *args]
        try:
            main()
            status = 0
        except SystemExit as exit_:
            status = int(exit_.code or 0)
        out, err = self.capsys.readouterr()
        assert "Traceback" not in out + err
        return status, out, err

    def __call__(self, *args: str) -> str:
        """The output of a command that must succeed."""
        status, out, err = self._run(args)
        assert status == 0, (args, out, err)
        return out

    def json(self, *args: str) -> Any:
        return json.loads(self(*args, "--json"))

    def fails(self, *args: str) -> str:
        """The error of a command that must be refused: non-zero status, `error: ...`."""
        status, out, err = self._run(args)
        assert status != 0, (args, out, err)
        assert err.startswith("error: "), err
        return err


@pytest.fixture
def cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> Cli:
    """A fresh SQLite installation with three journalists imported from contacts.csv."""
    for name in ("DISTRIBUTOR_DATABASE_URL", "DISTRIBUTOR_ACTOR", "DISTRIBUTOR_ROLE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("DISTRIBUTOR_DATA_DIR", str(tmp_path / "var"))
    monkeypatch.setattr(sys, "argv", ["distributor"])
    upgrade(f"sqlite:///{tmp_path / 'var' / 'distributor.sqlite3'}")
    (tmp_path / "contacts.csv").write_text(CONTACTS, encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    runner = Cli(capsys)
    runner("contacts", "import", "contacts.csv")
    return runner


def test_lists_show_and_members_as_json(cli: Cli) -> None:
    cli("lists", "create", "Germany")
    cli("lists", "create", "Crime")
    cli("lists", "add", "Crime", "--matching", 'beat = "crime"')
    table = cli("lists", "show")
    assert table == "       2  Crime\n       0  Germany\n"
    assert cli.json("lists", "show") == [
        {"name": "Crime", "contacts": 2},
        {"name": "Germany", "contacts": 0},
    ]
    assert cli("lists", "members", "Crime") == (
        "ann@example.com  Ann Archer\nzoe@bücher.example  Zoë Ångström\n"
    )
    assert cli.json("lists", "members", "Crime") == [
        {"email": "ann@example.com", "name": "Ann Archer"},
        {"email": "zoe@bücher.example", "name": "Zoë Ångström"},
    ]
    assert cli.json("lists", "members", "Germany") == []
    assert "no media list named 'Nowhere'" in cli.fails("lists", "members", "Nowhere", "--json")


def test_segments_preview_show_and_members_as_json(cli: Cli) -> None:
    cli("suppressions", "add", "zoe@bücher.example", "--reason", "unsubscribed")
    assert cli("segments", "preview", 'beat = "crime"') == (
        "2 contact(s) match (1 of them suppressed, so not mailed), for example:\n"
        "  ann@example.com  Ann Archer\n"
        "  zoe@bücher.example  Zoë Ångström\n"
    )
    assert cli.json("segments", "preview", 'beat = "crime"', "--sample", "1") == {
        "count": 2,
        "suppressed": 1,
        "sample": [{"email": "ann@example.com", "name": "Ann Archer"}],
    }
    cli("segments", "save", "Crime", 'beat = "crime"', "--yes")
    cli("segments", "save", "Germany", 'country = "DE"', "--yes")
    assert cli("segments", "show") == (
        '       1  Crime: beat = "crime"\n       0  Germany: country = "DE"\n'
    )
    assert cli.json("segments", "show") == [
        {"name": "Crime", "filter": 'beat = "crime"', "reach": 1},
        {"name": "Germany", "filter": 'country = "DE"', "reach": 0},
    ]
    assert cli("segments", "members", "Crime") == "ann@example.com  Ann Archer\n"
    assert cli.json("segments", "members", "Crime") == [
        {"email": "ann@example.com", "name": "Ann Archer"}
    ]
    assert "expected a quoted value" in cli.fails("segments", "preview", "beat = crime", "--json")


def test_suppressions_show_as_json_keeps_a_forgotten_entry_without_its_address(cli: Cli) -> None:
    cli("suppressions", "add", "bob@news.example.org", "--reason", "unsubscribed", "--note", "tel")
    cli("contacts", "forget", "ann@example.com", "--yes")
    table = cli("suppressions", "show").splitlines()
    entries = cli.json("suppressions", "show")
    assert len(entries) == len(table) == 2
    # Newest first in both: the erasure, then Bob's request.
    assert "(forgotten: address erased)" in table[0] and "do_not_contact" in table[0]
    assert entries[0]["email"] is None and entries[0]["reason"] == "do_not_contact"
    assert entries[0]["forgotten_at"] is not None
    assert table[1].endswith("(tel)") and "bob@news.example.org" in table[1]
    bob = entries[1]
    assert (bob["email"], bob["reason"], bob["note"]) == (
        "bob@news.example.org",
        "unsubscribed",
        "tel",
    )
    assert bob["source"] in table[1]
    assert bob["created_at"][:16].replace("T", " ") == table[1][:16]
    assert bob["created_at"].endswith("+00:00")
    assert cli.json("suppressions", "show", "--reason", "unsubscribed") == [bob]
