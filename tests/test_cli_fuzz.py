"""Every command, driven with generated arguments and generated files: exit status 0, 1 or
2, never a traceback, and a refused import or schedule stores nothing.

The commands are found by walking the command line itself, so a command added later is
fuzzed too. Long-running processes (worker, scheduler, mail catcher, demo) are left out.
"""

from __future__ import annotations

import io
import json
import os
import sqlite3
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import typer
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from distributor.cli import app, main

LONG_RUNNING = {"worker", "scheduler", "mailcatcher", "demo", "up", "web", "serve"}
GUARDED_TABLES = ("contacts", "sends", "deliveries", "releases", "media_lists", "suppressions")
# What a refusal must leave untouched, by command.
STORING: dict[tuple[str, ...], str] = {
    ("contacts", "import"): "contacts",
    ("release", "schedule"): "sends",
}


@dataclass(frozen=True)
class Command:
    path: tuple[str, ...]
    arguments: tuple[str, ...]  # names of positional parameters
    options: tuple[str, ...]  # one spelling of each option, e.g. --embargo
    flags: tuple[str, ...]  # boolean options


def _commands(group: Any, prefix: tuple[str, ...] = ()) -> Iterator[Command]:
    # Duck-typed: Typer ships its own copy of Click's classes.
    if hasattr(group, "commands"):
        for name, sub in sorted(group.commands.items()):
            if name not in LONG_RUNNING:
                yield from _commands(sub, (*prefix, name))
        return
    arguments: list[str] = []
    options: list[str] = []
    flags: list[str] = []
    for param in group.params:
        if param.param_type_name == "argument":
            arguments.append(param.name or "")
        elif param.param_type_name == "option" and param.opts[0] != "--help":
            (flags if param.is_flag else options).append(param.opts[0])
    yield Command(prefix, tuple(arguments), tuple(options), tuple(flags))


COMMANDS = list(_commands(typer.main.get_command(app)))


def _file(folder: Path, name: str, content: bytes) -> str:
    path = folder / name
    path.write_bytes(content)
    return str(path)


@st.composite
def files(draw: st.DrawFn, folder: Path) -> str:
    """A path to a generated file: CSV, JSON, a release, or bytes of any kind."""
    cell = st.text(
        alphabet=st.characters(exclude_categories=["Cs"]), max_size=12
    ) | st.sampled_from(["ann@example.com", "=SUM(A1)", "\u202eevil", "", "a;b", '"'])
    kind = draw(st.sampled_from(["csv", "json", "jsonl", "md", "txt", "bin"]))
    if kind == "csv":
        delimiter = draw(st.sampled_from([",", ";", "\t"]))
        rows = draw(st.lists(st.lists(cell, min_size=1, max_size=4), max_size=4))
        header = draw(st.sampled_from(["email,name", "email;name;outlet", "name", ""]))
        text = "\n".join([header, *(delimiter.join(r) for r in rows)])
        return _file(folder, "contacts.csv", text.encode("utf-8", "surrogatepass"))
    if kind in ("json", "jsonl"):
        value = draw(
            st.recursive(
                st.none() | st.booleans() | st.integers() | cell,
                lambda inner: (
                    st.lists(inner, max_size=3) | st.dictionaries(cell, inner, max_size=3)
                ),
                max_leaves=10,
            )
        )
        text = json.dumps(value) if kind == "json" else "\n".join(json.dumps(v) for v in [value])
        return _file(folder, f"contacts.{kind}", text.encode())
    if kind == "md":
        key = draw(st.sampled_from(["headline", "images", "attachments", "quotes", "x.y.z"]))
        value = draw(st.sampled_from(['"Hi"', "[]", '[{path = "../x"}]', "[[[[1]]]]", "3"]))
        body = draw(cell)
        return _file(folder, "release.md", f"+++\n{key} = {value}\n+++\n{body}\n".encode())
    if kind == "txt":
        return _file(folder, "release.txt", draw(cell).encode("utf-8", "surrogatepass"))
    return _file(folder, "data.bin", draw(st.binary(max_size=64)))


def values(folder: Path) -> st.SearchStrategy[str]:
    return st.one_of(
        st.sampled_from(
            [
                "1",
                "0",
                "-1",
                "99999999999999999999",
                "2027-07-01 09:00",
                "9999-12-31 23:59",
                "Europe/London",
                "localtime",
                "Newsdesks",
                "ann@example.com",
                "not an email",
                'beat = "crime"',
                "(((",
                "",
            ]
        ),
        st.text(max_size=20),
        files(folder),
    )


@pytest.fixture(scope="module")
def installation(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    data = tmp_path_factory.mktemp("fuzz") / "var"
    saved = dict(os.environ)
    os.environ.update(
        {
            "DISTRIBUTOR_DATA_DIR": str(data),
            # A relay nobody listens on: a test send is refused, never delivered.
            "DISTRIBUTOR_SMTP_URL": "smtp://127.0.0.1:9",
        }
    )
    for name in list(os.environ):
        if name.startswith("DISTRIBUTOR_") and name not in (
            "DISTRIBUTOR_DATA_DIR",
            "DISTRIBUTOR_SMTP_URL",
        ):
            del os.environ[name]
    try:
        contacts = data.parent / "seed.csv"
        contacts.write_text("email,name\nann@example.com,Ann Archer\nbob@example.org,Bob\n")
        release = data.parent / "seed.txt"
        release.write_text("Charity welcomes report\n\nFirst paragraph of the release.\n")
        for args in (
            ["db", "upgrade"],
            ["contacts", "import", str(contacts)],
            ["lists", "create", "Newsdesks"],
            ["lists", "add", "Newsdesks", "ann@example.com", "bob@example.org"],
            ["release", "create", "--from", str(release)],
        ):
            assert _run(args) == 0, args
        yield data
    finally:
        os.environ.clear()
        os.environ.update(saved)


def _run(args: list[str]) -> int:
    """`distributor ARGS` in this process, with nobody at the keyboard (a prompt reads EOF),
    in the installation's folder: commands write files named by their arguments there."""
    sys.argv = ["distributor", *args]
    stdin, sys.stdin = sys.stdin, io.StringIO("")
    folder = Path.cwd()
    os.chdir(Path(os.environ["DISTRIBUTOR_DATA_DIR"]).parent)
    try:
        main()
    except SystemExit as exit_:
        return exit_.code if isinstance(exit_.code, int) else (0 if exit_.code is None else 1)
    finally:
        sys.stdin = stdin
        os.chdir(folder)
    return 0


def _counts(data: Path) -> dict[str, int]:
    with sqlite3.connect(data / "distributor.sqlite3") as db:
        return {t: db.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in GUARDED_TABLES}


@settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data())
def test_no_command_ends_in_a_traceback(
    installation: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], data: st.DataObject
) -> None:
    command = data.draw(st.sampled_from(COMMANDS), label="command")
    pool = values(tmp_path)
    args = list(command.path)
    args += [data.draw(pool) for _ in command.arguments]
    for option in data.draw(st.lists(st.sampled_from(command.options or ("",)), max_size=3)):
        if option:
            args += [option, data.draw(pool)]
    args += data.draw(st.lists(st.sampled_from(command.flags or ("",)), max_size=2))
    args = [a for a in args if a != ""] if not command.arguments else args
    before = _counts(installation)
    capsys.readouterr()

    status = _run(args)

    out, err = capsys.readouterr()
    assert status in (0, 1, 2), (args, status, out, err)
    assert "Traceback" not in out + err, (args, out, err)
    table = STORING.get(command.path)
    if table is not None and status != 0:
        assert _counts(installation)[table] == before[table], (args, err)


def test_every_command_is_reached() -> None:
    """The walk finds the commands a press officer uses; a broken walk would fuzz nothing."""
    paths = {c.path for c in COMMANDS}
    for expected in [
        ("contacts", "import"),
        ("release", "schedule"),
        ("status",),
        ("release", "move"),
    ]:
        assert expected in paths, sorted(paths)
    assert not any(c.path[0] in LONG_RUNNING for c in COMMANDS)
