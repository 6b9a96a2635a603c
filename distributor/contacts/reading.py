"""Reading contacts files, CSV or JSON, one record at a time with the line it starts on.

Readers never hold the file: a 100,000-row import reads it twice (check, then store) in
constant memory. Column names are matched loosely and may be renamed with a mapping.
"""

from __future__ import annotations

import csv
import enum
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, TextIO

from distributor.contacts.records import canonical_column

if TYPE_CHECKING:
    import _csv

REQUIRED_CSV_COLUMNS = ("email", "name")
JSON_CHUNK = 64 * 1024
MAX_JSON_RECORD = 8 * 1024 * 1024


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


def read_csv(stream: TextIO, *, mapping: Mapping[str, str] | None = None) -> Reading:
    """Open `stream` (opened with newline="") as contacts CSV; problems name lines from 1."""
    reading = Reading()
    loose = _loose(mapping or {})
    reader = csv.reader(stream)
    try:
        raw_header = next(reader, [])
    except csv.Error as exc:
        reading.header_problems.append(f"line 1: cannot read the header: {exc}")
        return reading
    header: list[str | None] = []
    for name in raw_header:
        column, problem = _target(name, loose)
        if problem:
            reading.header_problems.append(f"line 1: {problem}")
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
        found = ", ".join(n.strip() for n in raw_header) if raw_header else "no header at all"
        reading.header_problems.append(
            f"line 1: missing column(s) {', '.join(missing)} (found: {found}); "
            f"the header needs {', '.join(REQUIRED_CSV_COLUMNS)} (rename a column with --map)"
        )
    repeated = sorted({c for c in present if present.count(c) > 1}, key=present.index)
    reading.header_problems.extend(
        f"line 1: the column {column} appears more than once; keep only one" for column in repeated
    )
    reading.columns = {_provides(c) for c in present}
    if not reading.header_problems:
        reading.records = _csv_records(reader, header)
    return reading


def _csv_records(reader: _csv.Reader, header: list[str | None]) -> Iterator[SourceRecord]:
    while True:
        # A quoted field may span lines: a row is reported by the line it starts on.
        line = reader.line_num + 1
        try:
            fields = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            yield SourceRecord(line, None, f"cannot read the file from here on: {exc}")
            return
        if not fields:
            continue  # a blank line
        if len(fields) > len(header):
            yield SourceRecord(line, None, "more fields than the header has columns")
            continue
        record: dict[str, object] = {
            column: value
            for column, value in zip(header, fields, strict=False)
            if column is not None
        }
        yield SourceRecord(line, record)


def read_json(stream: TextIO, *, mapping: Mapping[str, str] | None = None) -> Reading:
    """Open `stream` as a JSON array of contact objects, or as JSON Lines."""
    reading = Reading()
    loose = _loose(mapping or {})
    for wanted in loose.values():
        if wanted.strip() and canonical_column(wanted) is None:
            reading.header_problems.append(f"line 1: the mapping names {wanted!r}, no column")
    reading.records = _json_records(stream, loose, reading)
    return reading


def _json_records(
    stream: TextIO, mapping: dict[str, str], reading: Reading
) -> Iterator[SourceRecord]:
    for line, value, problem in _json_values(stream):
        if problem is not None:
            yield SourceRecord(line, None, problem)
            continue
        if not isinstance(value, dict):
            yield SourceRecord(line, None, "a contact must be a JSON object with an email")
            continue
        record: dict[str, object] = {}
        duplicate = None
        for key, item in value.items():
            column, bad_mapping = _target(str(key), mapping)
            if column is None:
                if not bad_mapping and " ".join(str(key).split()).lower() not in mapping:
                    reading.ignored_columns.add(str(key))
                continue
            if column in record:
                duplicate = column
            record[column] = item
            reading.columns.add(_provides(column))
        if duplicate:
            yield SourceRecord(line, None, f"the {duplicate} is given twice; keep only one")
            continue
        yield SourceRecord(line, record)


def _json_values(stream: TextIO) -> Iterator[tuple[int, object, str | None]]:
    """Each top-level value (or array element) with the line it starts on, or a problem."""
    decoder = json.JSONDecoder()
    buffer = ""
    line = 1  # the line buffer[0] is on
    at_eof = False

    def fill() -> bool:
        nonlocal buffer, at_eof
        chunk = stream.read(JSON_CHUNK)
        if not chunk:
            at_eof = True
            return False
        buffer += chunk
        return True

    def skip_space() -> None:
        nonlocal buffer, line
        while True:
            stripped = buffer.lstrip()
            line += buffer.count("\n", 0, len(buffer) - len(stripped))
            buffer = stripped
            if buffer or not fill():
                return

    skip_space()
    in_array = buffer.startswith("[")
    if in_array:
        buffer = buffer[1:]
        skip_space()
        if buffer.startswith("]"):
            buffer = buffer[1:]
            in_array = False
            skip_space()
            if buffer:
                yield line, None, "unexpected text after the closing ]"
            return
    while buffer:
        start_line = line
        while True:
            try:
                value, end = decoder.raw_decode(buffer)
            except json.JSONDecodeError as exc:
                # Perhaps only cut short by the chunk: read on, up to a limit, and try again.
                if at_eof or len(buffer) > MAX_JSON_RECORD or not fill():
                    error_line = start_line + buffer.count("\n", 0, exc.pos)
                    yield error_line, None, f"cannot read the file from here on: {exc.msg}"
                    return
                continue
            # A number at the end of the chunk may go on in the next one.
            if end == len(buffer) and not at_eof and fill():
                continue
            break
        yield start_line, value, None
        line += buffer.count("\n", 0, end)
        buffer = buffer[end:]
        skip_space()
        if in_array:
            if buffer.startswith(","):
                buffer = buffer[1:]
                skip_space()
                if buffer.startswith("]"):
                    yield line, None, "cannot read the file from here on: a comma before ]"
                    return
                continue
            if buffer.startswith("]"):
                buffer = buffer[1:]
                in_array = False
                skip_space()
                if buffer:
                    yield line, None, "unexpected text after the closing ]"
                return
            yield line, None, "cannot read the file from here on: expected , or ] after a contact"
            return
    if in_array:
        yield line, None, "cannot read the file from here on: the array has no closing ]"
