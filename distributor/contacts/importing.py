"""Importing a contacts file all or nothing: check every row first, then store in chunks.

With skip_invalid, every valid row is stored and every bad one reported; a file with no
valid row at all is refused even then, so that a wrong file never looks imported.

The first pass reads the file keeping only each address's first line (to report repeats)
and the lines whose owner was forgotten; the second pass reads it again and upserts chunk by
chunk inside the caller's transaction, so a failure anywhere leaves the database as it was.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import BinaryIO

from sqlalchemy.orm import Session

from distributor.audit import record_action
from distributor.contacts.reading import (
    LONE_SURROGATE,
    FileFormat,
    Reading,
    read_csv,
    read_json,
)
from distributor.contacts.records import ContactRow, RowProblem, validate_record
from distributor.contacts.upsert import (
    DEFAULT_CHUNK,
    existing_keys,
    forgotten_keys,
    refresh_statistics,
    upsert_contacts,
)
from distributor.errors import DistributorError, ImportRejectedError
from distributor.vocabulary import LegalBasis

MAX_REPORTED_PROBLEMS = 1_000
ANALYZE_AFTER_ROWS = 10_000
FORGOTTEN_NOTICE = "not imported: the owner of this address asked to be forgotten"

# Told how far a pass has got: the pass ("checking" or "importing"), bytes read, file size.
Progress = Callable[[str, int, int], None]


@dataclass(frozen=True, slots=True)
class ImportOptions:
    format: FileFormat | None = None  # None: from the file name (.json, .jsonl, else CSV)
    # A file's column name (any case) to the contact column it holds; "" ignores the column.
    mapping: Mapping[str, str] = field(default_factory=dict)
    dry_run: bool = False
    skip_invalid: bool = False
    # The CSV separator; None: named by a "sep=" first line, or detected from the header.
    delimiter: str | None = None
    # Keep CSV cells as they are, without removing the ' an export puts before formulas.
    raw_cells: bool = False
    # Recorded on new contacts whose row names no source; default "import of FILE NAME".
    source: str | None = None
    legal_basis: LegalBasis = LegalBasis.LEGITIMATE_INTEREST
    chunk_size: int = DEFAULT_CHUNK


@dataclass(frozen=True, slots=True)
class ImportReport:
    created: int
    updated: int
    # Every bad row as "line N: what is wrong", in file order (the first thousand).
    skipped: list[str]
    # Rows left out because their owner asked to be forgotten (never imported again).
    forgotten: list[str] = field(default_factory=list)
    ignored_columns: tuple[str, ...] = ()
    problem_count: int = 0
    dry_run: bool = False
    # How the file was read: "CSV, fields separated by semicolons (detected from the header)".
    description: str = ""


class NoValidRowError(DistributorError):
    """A file imported with skip_invalid in which no row was valid; nothing was imported."""

    def __init__(self, problems: list[str], *, total: int | None = None) -> None:
        self.problems = problems
        listed = "\n".join(f"  {p}" for p in problems)
        super().__init__(
            f"no row of the file can be imported ({total or len(problems)} problem(s)); "
            f"nothing was imported:\n{listed}"
        )


def file_label(path: Path) -> str:
    """The file's name as text that can be stored and printed: bytes of the name that are not
    UTF-8 (which Python keeps as lone surrogates) become U+FFFD."""
    return LONE_SURROGATE.sub("\ufffd", path.name)


def format_for(path: Path) -> FileFormat:
    return (
        FileFormat.JSON if path.suffix.lower() in (".json", ".jsonl", ".ndjson") else FileFormat.CSV
    )


def import_contacts_file(
    session: Session,
    path: Path,
    *,
    now: datetime,
    options: ImportOptions | None = None,
    progress: Progress | None = None,
) -> ImportReport:
    """Import a CSV or JSON file; raises ImportRejectedError (nothing stored) on bad rows."""
    options = options or ImportOptions()
    file_format = options.format or format_for(path)
    source = options.source if options.source is not None else f"import of {file_label(path)}"
    plan = _Plan(options=options, source=source)
    with _open(path, file_format, options, progress, "checking") as reading:
        plan.check(session, reading)
    if plan.problem_count and not options.skip_invalid:
        raise ImportRejectedError(plan.reported_problems(), total=plan.problem_count)
    if plan.problem_count and not plan.accepted():
        raise NoValidRowError(plan.reported_problems(), total=plan.problem_count)
    report = plan.report(dry_run=options.dry_run)
    if options.dry_run or plan.header_failed:
        return report
    with _open(path, file_format, options, progress, "importing") as reading:
        plan.store(session, reading, now=now)
    record_import(session, report, origin=f"the file {file_label(path)}", now=now)
    if report.created + report.updated >= ANALYZE_AFTER_ROWS:
        refresh_statistics(session)
    return report


def record_import(session: Session, report: ImportReport, *, origin: str, now: datetime) -> None:
    """One audit entry per import, with counts only: the rows are personal data, and the
    file is named without its folder."""
    record_action(
        session,
        "contacts.imported",
        "contacts",
        at=now,
        after={
            "created": report.created,
            "updated": report.updated,
            "skipped": report.problem_count,
            "forgotten": len(report.forgotten),
        },
        detail=f"from {origin}",
    )


@dataclass(slots=True)
class _Plan:
    options: ImportOptions
    source: str
    # Each address's first record: its position among the records, and its line. Records are
    # told apart by position, as several JSON records may share one line.
    first_seen: dict[str, tuple[int, int]] = field(default_factory=dict)
    # Positions of records whose owner was forgotten, with the notice for each.
    forgotten: dict[int, str] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    problem_count: int = 0
    existing: int = 0
    header_failed: bool = False
    columns: set[str] = field(default_factory=set)
    ignored: set[str] = field(default_factory=set)
    description: str = ""

    def validate(self, line: int, record: dict[str, object]) -> ContactRow:
        return validate_record(
            line,
            record,
            default_source=self.source,
            default_legal_basis=self.options.legal_basis,
        )

    def problem(self, line: int, text: str) -> None:
        self.problem_count += 1
        if len(self.problems) < MAX_REPORTED_PROBLEMS:
            self.problems.append(f"line {line}: {text}")

    def check(self, session: Session, reading: Reading) -> None:
        self.description = reading.description
        if reading.header_problems:
            self.header_failed = True
            for problem in reading.header_problems:
                self.problem_count += 1
                self.problems.append(problem)
            return
        pending: list[tuple[int, ContactRow]] = []
        for position, item in enumerate(reading.records):
            if item.record is None:
                self.problem(item.line, item.problem or "cannot read this row")
                continue
            try:
                row = self.validate(item.line, item.record)
            except RowProblem as exc:
                self.problem(item.line, str(exc))
                continue
            first_position, first_line = self.first_seen.setdefault(row.key, (position, row.line))
            if first_position != position:
                raw = item.record.get("email")
                self.problem(
                    row.line,
                    f"{str(raw).strip()!r} is the same address as line {first_line} "
                    "(addresses are compared without regard to letter case)",
                )
                continue
            pending.append((position, row))
            if len(pending) >= self.options.chunk_size:
                self.look_up(session, pending)
                pending = []
        self.look_up(session, pending)
        self.columns = reading.columns
        self.ignored = reading.ignored_columns

    def look_up(self, session: Session, rows: list[tuple[int, ContactRow]]) -> None:
        if not rows:
            return
        keys = [row.key for _, row in rows]
        forgotten = forgotten_keys(session, keys)
        for position, row in rows:
            if row.key in forgotten:
                self.forgotten[position] = f"line {row.line}: {FORGOTTEN_NOTICE}"
        self.existing += len(existing_keys(session, keys) - forgotten)

    def reported_problems(self) -> list[str]:
        hidden = self.problem_count - len(self.problems)
        more = [f"... and {hidden} more problem(s) not listed"] if hidden else []
        return [*self.problems, *more]

    def accepted(self) -> int:
        """How many rows will be stored."""
        return len(self.first_seen) - len(self.forgotten)

    def report(self, *, dry_run: bool) -> ImportReport:
        accepted = self.accepted()
        return ImportReport(
            created=accepted - self.existing,
            updated=self.existing,
            skipped=self.reported_problems(),
            forgotten=list(self.forgotten.values()),
            ignored_columns=tuple(sorted(self.ignored)),
            problem_count=self.problem_count,
            dry_run=dry_run,
            description=self.description,
        )

    def store(self, session: Session, reading: Reading, *, now: datetime) -> None:
        if reading.header_problems:
            raise _changed()
        chunk: list[ContactRow] = []
        for position, item in enumerate(reading.records):
            if item.record is None:
                continue
            try:
                row = self.validate(item.line, item.record)
            except RowProblem:
                continue
            first_position, _ = self.first_seen.get(row.key, (-1, 0))
            if first_position != position or position in self.forgotten:
                continue
            chunk.append(row)
            if len(chunk) >= self.options.chunk_size:
                upsert_contacts(session, chunk, columns=self.columns, now=now)
                chunk = []
        upsert_contacts(session, chunk, columns=self.columns, now=now)


def _changed() -> DistributorError:
    return DistributorError(
        "the file changed while it was being imported; nothing was imported, try again"
    )


@contextmanager
def _open(
    path: Path,
    file_format: FileFormat,
    options: ImportOptions,
    progress: Progress | None,
    phase: str,
) -> Iterator[Reading]:
    try:
        binary = path.open("rb")
    except OSError as exc:
        raise DistributorError(f"cannot read {path}: {exc.strerror or exc}") from exc
    with binary:
        _refuse_other_kinds(path, binary.read(4))
        binary.seek(0)
        size = path.stat().st_size
        counted = _ProgressReader(binary, progress=progress, phase=phase, size=size)
        # Bytes that are not UTF-8 become lone surrogates, which the readers report by line.
        text = io.TextIOWrapper(
            io.BufferedReader(counted),
            encoding="utf-8-sig",
            errors="surrogateescape",
            newline="",
        )
        if file_format is FileFormat.JSON:
            yield read_json(text, mapping=options.mapping)
        else:
            yield read_csv(
                text,
                mapping=options.mapping,
                delimiter=options.delimiter,
                raw_cells=options.raw_cells,
            )
        if progress is not None:
            progress(phase, size, size)


def _refuse_other_kinds(path: Path, head: bytes) -> None:
    """Refuse, by name, the files that are often given instead of CSV or JSON in UTF-8."""
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise DistributorError(
            f'cannot read {path}: it is saved as UTF-16 ("Unicode text"); save it as UTF-8 '
            '(a spreadsheet calls it "CSV UTF-8") and import again'
        )
    if head == b"PK\x03\x04":
        raise DistributorError(
            f"cannot read {path}: it is a spreadsheet workbook (such as .xlsx), not CSV; save "
            'it as "CSV UTF-8" and import that'
        )


class _ProgressReader(io.RawIOBase):
    """Passes reads through and tells `progress` how far into the file they have got."""

    def __init__(self, inner: BinaryIO, *, progress: Progress | None, phase: str, size: int):
        self.inner = inner
        self.progress = progress
        self.phase = phase
        self.size = size
        self.done = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        data = self.inner.read(len(buffer))
        buffer[: len(data)] = data
        self.done += len(data)
        if self.progress is not None:
            self.progress(self.phase, self.done, self.size)
        return len(data)
