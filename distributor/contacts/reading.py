"""Reading contacts files, CSV or JSON, one record at a time with the line it starts on.

Readers never hold the file: a 100,000-row import reads it twice (check, then store) in
constant memory. Column names are matched loosely and may be renamed with a mapping.

A line is a physical line of the file, ended by LF, CRLF or CR, counted from 1. The file is
decoded with errors="surrogateescape", so a byte that is not UTF-8 arrives as one of
U+DC80..U+DCFF and spoils only the row it is in, which is reported by its line.
"""

from __future__ import annotations

import csv
import enum
import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, TextIO

from distributor.contacts.records import canonical_column
from distributor.errors import DistributorError, Worded
from distributor.visible_text import HiddenCharacterError, check_visible

if TYPE_CHECKING:
    import _csv

REQUIRED_CSV_COLUMNS = ("email", "name")
JSON_CHUNK = 64 * 1024
MAX_JSON_RECORD = 8 * 1024 * 1024
# A contact is an object holding lists and objects: two levels. The limit leaves room and
# stays far below the depth at which Python's parser would run out of stack.
MAX_JSON_DEPTH = 16
# The separators a CSV file's header is tried with, and how a report names each.
DETECTED_DELIMITERS = {",": "commas", ";": "semicolons", "\t": "tabs"}
DELIMITER_WORDS = {"comma": ",", "semicolon": ";", "tab": "\t", "\\t": "\t", "pipe": "|"}
# Cells a spreadsheet runs as a formula start with one of = + - @ tab CR (OWASP, "CSV
# Injection"); an export puts a ' before them, and before cells that already start with
# quotes and then one of these, so that removing one ' on import gives back every cell.
NEEDS_PROTECTION = re.compile(r"'*[=+\-@\t\r]")
PROTECTED_CELL = re.compile(r"'+[=+\-@\t\r]")
UNDECODABLE = re.compile("[\udc80-\udcff]")
LONE_SURROGATE = re.compile("[\ud800-\udfff]")
LINE_BREAK = re.compile(r"\r\n?|\n")
JSON_SPACE = (" ", "\t", "\r", "\n")
# The first line some spreadsheets write to name the separator: sep=;
SEPARATOR_LINE = re.compile(r"sep=(.)(?:\r\n?|\n)?")


class FileFormat(enum.StrEnum):
    CSV = "csv"  # a header row naming the columns, then one contact per row
    JSON = "json"  # an array of objects, or JSON Lines: one object per line


@dataclass(frozen=True, slots=True)
class SourceRecord:
    line: int
    # The record keyed by canonical column; None when the row could not be read at all.
    record: dict[str, object] | None
    problem: str | None = None


@dataclass(slots=True)
class Reading:
    """What a reader found in the header, and its records."""

    header_problems: list[str] = field(default_factory=list)
    # Canonical columns the file provides (attributes.NAME columns count as "attributes").
    columns: set[str] = field(default_factory=set)
    ignored_columns: set[str] = field(default_factory=set)
    records: Iterator[SourceRecord] = field(default_factory=lambda: iter(()))
    # How the file was read, for the report: "CSV, fields separated by semicolons (...)".
    description: str = ""


def csv_delimiter(given: str) -> str:
    """The separator a person names (";", "tab", "semicolon"...); refuses what cannot be one."""
    delimiter = DELIMITER_WORDS.get(given.strip().lower(), given)
    if not _usable_delimiter(delimiter):
        raise DistributorError(
            f"--delimiter {given!r} cannot separate fields; give one character such as ';' "
            "or '|', or a name: comma, semicolon, tab"
        )
    return delimiter


def _usable_delimiter(delimiter: str) -> bool:
    return len(delimiter) == 1 and not delimiter.isalnum() and delimiter not in "\"' \r\n"


def delimiter_name(delimiter: str) -> str:
    return DETECTED_DELIMITERS.get(delimiter) or f"{delimiter!r}"


def protect_cell(cell: str) -> str:
    """The cell as a spreadsheet shows it without running it: ' before a formula's start."""
    return "'" + cell if NEEDS_PROTECTION.match(cell) else cell


def unprotect_cell(cell: str) -> str:
    """A cell as stored, from a cell an export protected against running as a formula."""
    return cell[1:] if PROTECTED_CELL.match(cell) else cell


def _target(name: str, mapping: Mapping[str, str]) -> tuple[str | None, str | None]:
    """The canonical column a file's column feeds, and a problem with the mapping if any."""
    tidied = " ".join(name.split()).lower()
    if tidied in mapping:
        wanted = mapping[tidied]
        if not wanted.strip():
            return None, None  # mapped to nothing: ignore the column on purpose
        column = canonical_column(wanted)
        if column is None:
            return None, f"the mapping {name}={wanted} names no column a contact has"
        return column, None
    return canonical_column(name), None


def _loose(mapping: Mapping[str, str]) -> dict[str, str]:
    return {" ".join(k.split()).lower(): v for k, v in mapping.items()}


def _provides(column: str) -> str:
    return "attributes" if column.startswith("attributes.") else column


def _not_utf8(found: re.Match[str], where: str) -> str:
    """Why the text `found` was searched in cannot be read; its character counts from the
    last line break before it."""
    text, position = found.string, found.start()
    line_start = max(text.rfind("\n", 0, position), text.rfind("\r", 0, position)) + 1
    byte = ord(found.group()) - 0xDC00
    return (
        f"cannot read {where}: the byte 0x{byte:02X} at character {position - line_start + 1} "
        'is not UTF-8; save the file as UTF-8 (a spreadsheet calls it "CSV UTF-8") and import '
        "again"
    )


# --- CSV -------------------------------------------------------------------------------------


class _Lines:
    """The file's lines for the csv module, remembering the last one and whether it ended."""

    def __init__(self, first: str, stream: TextIO) -> None:
        self.first: str | None = first
        self.stream = stream
        self.last = ""
        self.exhausted = False

    def __iter__(self) -> _Lines:
        return self

    def __next__(self) -> str:
        if self.first is not None:
            line, self.first = self.first, None
        else:
            line = self.stream.readline()
        if not line:
            self.exhausted = True
            raise StopIteration
        self.last = line
        return line


def _why(error: csv.Error) -> str:
    """The csv module's complaint in a press officer's words, where it is a familiar one."""
    text = str(error)
    if "expected after" in text:
        return 'text follows a closing quote (write "" for a quote inside a quoted field)'
    if "field larger than field limit" in text:
        return f"a field is longer than {csv.field_size_limit():,} characters"
    return text


def _detect_delimiter(header: str, mapping: Mapping[str, str]) -> str:
    """The separator under which the header names the most known columns, then most fields."""
    best, best_score = ",", (-1, -1)
    for delimiter in DETECTED_DELIMITERS:
        names = next(csv.reader([header], delimiter=delimiter), [])
        known = sum(1 for name in names if _target(name, mapping)[0] is not None)
        if (known, len(names)) > best_score:
            best, best_score = delimiter, (known, len(names))
    return best


def read_csv(
    stream: TextIO,
    *,
    mapping: Mapping[str, str] | None = None,
    delimiter: str | None = None,
    raw_cells: bool = False,
) -> Reading:
    """Open `stream` (opened with newline="") as contacts CSV; problems name lines from 1.

    The separator is `delimiter`, else the one a first line "sep=X" names, else the one of
    comma, semicolon and tab under which the header makes the most sense. Unless `raw_cells`,
    a cell protected against running as a formula ('=...) loses its protecting quote.
    """
    reading = Reading()
    loose = _loose(mapping or {})
    origin = "given with --delimiter" if delimiter else "detected from the header"
    first = stream.readline()
    header_line = 1
    named = SEPARATOR_LINE.fullmatch(first)
    if named and _usable_delimiter(named.group(1)):
        if delimiter is None:
            delimiter, origin = named.group(1), "named by the file's sep= line"
        first = stream.readline()
        header_line = 2
    if delimiter is None:
        delimiter = _detect_delimiter(first, loose)
    reading.description = f"CSV, fields separated by {delimiter_name(delimiter)} ({origin})"
    lines = _Lines(first, stream)
    reader = csv.reader(lines, delimiter=delimiter, strict=True)
    at = f"line {header_line}"
    try:
        raw_header = next(reader, [])
    except csv.Error as exc:
        reading.header_problems.append(f"{at}: cannot read the header: {exc}")
        return reading
    undecodable = UNDECODABLE.search("".join(raw_header))
    if undecodable is not None:
        found = next(m for name in raw_header if (m := UNDECODABLE.search(name)))
        reading.header_problems.append(f"{at}: {_not_utf8(found, 'the header')}")
        return reading
    header: list[str | None] = []
    for name in raw_header:
        try:
            check_visible(name.strip(), field=f"column name {name.strip()!r}")
        except HiddenCharacterError as exc:
            reading.header_problems.append(f"{at}: {exc}")
            continue
        column, problem = _target(name, loose)
        if problem:
            reading.header_problems.append(f"{at}: {problem}")
        if (
            column is None
            and name.strip()
            and not problem
            and " ".join(name.split()).lower() not in loose
        ):
            reading.ignored_columns.add(name.strip())
        header.append(column)
    present = [c for c in header if c is not None]
    missing = [c for c in REQUIRED_CSV_COLUMNS if c not in present]
    if missing and not reading.header_problems:
        found_names = ", ".join(n.strip() for n in raw_header) if raw_header else "no header at all"
        needed = (
            f"{at}: missing column(s) {', '.join(missing)} (found: {found_names}; fields "
            f"separated by {delimiter_name(delimiter)}); the header needs "
            f"{', '.join(REQUIRED_CSV_COLUMNS)}"
        )
        reading.header_problems.append(
            Worded(
                f"{needed} (rename a column with --map, or name the separator with --delimiter)",
                on_page=f"{needed} (rename the column in the file, or separate the fields with "
                "commas, semicolons or tabs)",
            )
        )
    repeated = sorted({c for c in present if present.count(c) > 1}, key=present.index)
    reading.header_problems.extend(
        f"{at}: the column {column} appears more than once; keep only one" for column in repeated
    )
    reading.columns = {_provides(c) for c in present}
    if not reading.header_problems:
        names = [n.strip() or f"column {i + 1}" for i, n in enumerate(raw_header)]
        reading.records = _csv_records(
            reader, lines, header, names, offset=header_line - 1, raw_cells=raw_cells
        )
    return reading


def _csv_records(
    reader: _csv.Reader,
    lines: _Lines,
    header: list[str | None],
    names: list[str],
    *,
    offset: int,
    raw_cells: bool,
) -> Iterator[SourceRecord]:
    width = len(header)
    separator = repr(reader.dialect.delimiter)
    while True:
        # A quoted field may span lines: a row is reported by the line it starts on.
        line = reader.line_num + offset + 1
        try:
            fields = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            last = reader.line_num + offset
            if lines.exhausted:
                # Strict reading fails at the end only inside a quoted field.
                swallowed = f", so lines {line}-{last} would be one field" if last > line else ""
                yield SourceRecord(
                    line,
                    None,
                    f"a quote opened in this row is never closed{swallowed}; close the quote, "
                    'and write "" for a quote inside a quoted field',
                )
                return
            # The next line starts a row of its own only if this one held no open quote.
            if last != line or lines.last.count('"') % 2:
                yield SourceRecord(line, None, f"cannot read the file from here on: {_why(exc)}")
                return
            yield SourceRecord(line, None, f"cannot read this row: {_why(exc)}")
            continue
        if not fields or (len(fields) == 1 and not fields[0].strip()):
            continue  # a blank line
        if len(fields) != width:
            more = "more" if len(fields) > width else "fewer"
            yield SourceRecord(
                line,
                None,
                f"{more} fields than the header has columns ({len(fields)}, not {width}); "
                f"a field that holds {separator} must be quoted",
            )
            continue
        joined = "".join(fields)
        undecodable = UNDECODABLE.search(joined)
        if undecodable is not None:
            index, found = next(
                (i, m) for i, f in enumerate(fields) if (m := UNDECODABLE.search(f))
            )
            yield SourceRecord(line, None, _not_utf8(found, f"the {names[index]}"))
            continue
        if not raw_cells and "'" in joined:
            fields = [unprotect_cell(f) for f in fields]
        record: dict[str, object] = {
            column: value for column, value in zip(header, fields, strict=True) if column
        }
        yield SourceRecord(line, record)


# --- JSON ------------------------------------------------------------------------------------


class _StrictJson:
    """json's parser, noting what JSON forbids but Python's parser lets through."""

    def __init__(self) -> None:
        self.objections: list[str] = []
        self.decoder = json.JSONDecoder(
            object_pairs_hook=self._object, parse_constant=self._constant
        )

    def _object(self, pairs: list[tuple[str, object]]) -> dict[str, object]:
        value = dict(pairs)
        if len(value) != len(pairs) and not self.objections:
            seen: set[str] = set()
            for key, _ in pairs:
                if key in seen:
                    self.objections.append(f"the key {key!r} appears twice in one object")
                    break
                seen.add(key)
        return value

    def _constant(self, name: str) -> None:
        self.objections.append(f"{name} is not JSON; write a number or text")

    def decode(self, text: str, start: int = 0) -> tuple[object, int]:
        """raw_decode, raising ValueError (JSONDecodeError when the text ran out) or
        RecursionError."""
        self.objections.clear()
        return self.decoder.raw_decode(text, start)


def _too_deep(value: object, levels: int = MAX_JSON_DEPTH) -> bool:
    if isinstance(value, dict):
        children: list[object] = list(value.values())
    elif isinstance(value, list):
        children = value
    else:
        return False
    return levels == 0 or any(_too_deep(child, levels - 1) for child in children)


TOO_DEEP = (
    f"the contact is nested more than {MAX_JSON_DEPTH} levels deep (lists and objects "
    "within each other); a contact needs two"
)


def read_json(stream: TextIO, *, mapping: Mapping[str, str] | None = None) -> Reading:
    """Open `stream` as a JSON array of contact objects, or as JSON Lines (one a line)."""
    reading = Reading()
    loose = _loose(mapping or {})
    for wanted in loose.values():
        if wanted.strip() and canonical_column(wanted) is None:
            reading.header_problems.append(f"line 1: the mapping names {wanted!r}, no column")
    # Look at the first character that is not white space, a character at a time: an array
    # written on one line must not be read as one long line.
    line, indent, previous = 1, "", ""
    char = stream.read(1)
    while char in JSON_SPACE:
        if char == "\r" or (char == "\n" and previous != "\r"):
            line, indent = line + 1, ""
        elif char in " \t":
            indent += char
        previous, char = char, stream.read(1)
    if char == "[":
        reading.description = "a JSON array"
        values = _json_array(stream, line)
    else:
        reading.description = "JSON Lines (one contact a line)"
        first = indent + char + stream.readline(MAX_JSON_RECORD) if char else ""
        values = _json_lines(stream, first, line)
    reading.records = _json_records(values, loose, reading)
    return reading


def _json_records(
    values: Iterator[tuple[int, object, str | None]], mapping: dict[str, str], reading: Reading
) -> Iterator[SourceRecord]:
    for line, value, problem in values:
        if problem is not None:
            yield SourceRecord(line, None, problem)
            continue
        if not isinstance(value, dict):
            yield SourceRecord(line, None, "a contact must be a JSON object with an email")
            continue
        record: dict[str, object] = {}
        trouble = None
        for key, item in value.items():
            if LONE_SURROGATE.search(key):
                trouble = f"the key {key!r} holds half of a UTF-16 pair, which is no character"
                break
            column, bad_mapping = _target(key, mapping)
            if column is None:
                if not bad_mapping and " ".join(key.split()).lower() not in mapping:
                    reading.ignored_columns.add(key)
                continue
            if column in record:
                trouble = f"the {column} is given twice; keep only one"
            record[column] = item
            reading.columns.add(_provides(column))
        if trouble:
            yield SourceRecord(line, None, trouble)
            continue
        yield SourceRecord(line, record)


def _checked(parser: _StrictJson, value: object) -> str | None:
    """What is wrong with a value the parser read, if anything."""
    if parser.objections:
        return parser.objections[0]
    return TOO_DEEP if _too_deep(value) else None


def _json_lines(stream: TextIO, first: str, line: int) -> Iterator[tuple[int, object, str | None]]:
    parser = _StrictJson()
    text = first
    while text:
        if not text.endswith(("\n", "\r")) and len(text) >= MAX_JSON_RECORD:
            while text and not text.endswith(("\n", "\r")):
                text = stream.readline(MAX_JSON_RECORD)
            yield line, None, f"the line is longer than {MAX_JSON_RECORD // 2**20} MiB"
        elif text.strip():
            yield line, *_json_line(parser, text)
        line += 1
        text = stream.readline(MAX_JSON_RECORD)


def _json_line(parser: _StrictJson, text: str) -> tuple[object, str | None]:
    start = len(text) - len(text.lstrip())
    content_end = len(text.rstrip())
    try:
        value, end = parser.decode(text, start)
    except RecursionError:
        return None, TOO_DEEP
    except json.JSONDecodeError as exc:
        undecodable = UNDECODABLE.match(text, exc.pos)
        if undecodable is not None:
            return None, _not_utf8(undecodable, "this line")
        if exc.pos >= content_end:
            return None, (
                f"cannot read this line: {exc.msg} at the end of the line; JSON Lines hold one "
                "whole contact a line (put contacts written over several lines in an array: [...])"
            )
        return None, f"cannot read this line: {exc.msg} at character {exc.pos + 1}"
    except ValueError as exc:
        return None, f"cannot read this line: {exc}"
    if end < content_end:
        return None, f"unexpected text after the contact at character {end + 1}"
    undecodable = UNDECODABLE.search(text, start, end)
    if undecodable is not None:
        return None, _not_utf8(undecodable, "this line")
    return value, _checked(parser, value)


def _json_array(stream: TextIO, line: int) -> Iterator[tuple[int, object, str | None]]:
    """Each element of the array whose [ was just read, with the line it starts on, or a
    problem; read in chunks."""
    parser = _StrictJson()
    buffer = ""
    at_eof = False

    def fill() -> bool:
        nonlocal buffer, at_eof
        chunk = stream.read(JSON_CHUNK)
        if chunk.endswith("\r"):
            chunk += stream.read(1)  # never split a CRLF, which is one line break
        if not chunk:
            at_eof = True
            return False
        buffer += chunk
        return True

    def breaks(end: int) -> int:
        return len(LINE_BREAK.findall(buffer, 0, end))

    def skip_space() -> None:
        nonlocal buffer, line
        while True:
            stripped = buffer.lstrip()
            line += breaks(len(buffer) - len(stripped))
            buffer = stripped
            if buffer or not fill():
                return

    def stopped(text: str) -> tuple[int, object, str]:
        return line, None, f"cannot read the file from here on: {text}"

    skip_space()
    if buffer.startswith("]"):
        buffer = buffer[1:]
        skip_space()
        if buffer:
            yield line, None, "unexpected text after the closing ]"
        return
    while buffer:
        start_line = line
        while True:
            try:
                value, end = parser.decode(buffer)
            except RecursionError:
                yield stopped(TOO_DEEP)
                return
            except json.JSONDecodeError as exc:
                # Perhaps only cut short by the chunk: read on, up to a limit, and try again.
                if at_eof or len(buffer) > MAX_JSON_RECORD or not fill():
                    line = start_line + breaks(exc.pos)
                    undecodable = UNDECODABLE.match(buffer, exc.pos)
                    yield stopped(
                        _not_utf8(undecodable, "this line")
                        if undecodable is not None
                        else f"{exc.msg} at character {exc.colno}"
                    )
                    return
                continue
            except ValueError as exc:
                yield stopped(str(exc))
                return
            # A number at the end of the chunk may go on in the next one.
            if end == len(buffer) and not at_eof and fill():
                continue
            break
        undecodable = UNDECODABLE.search(buffer, 0, end)
        if undecodable is not None:
            yield (
                start_line + breaks(undecodable.start()),
                None,
                _not_utf8(undecodable, "this contact"),
            )
        else:
            yield start_line, value, _checked(parser, value)
        line += breaks(end)
        buffer = buffer[end:]
        skip_space()
        if buffer.startswith(","):
            buffer = buffer[1:]
            skip_space()
            if buffer.startswith("]"):
                yield stopped("a comma before ]")
                return
            continue
        if buffer.startswith("]"):
            buffer = buffer[1:]
            skip_space()
            if buffer:
                yield line, None, "unexpected text after the closing ]"
            return
        yield stopped("expected , or ] after a contact")
        return
    yield stopped("the array has no closing ]")
