"""Contacts files: CSV and JSON in and out, column mapping, dry runs and all-or-nothing."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from distributor.actors import Actor, Role
from distributor.contacts import importing
from distributor.contacts.exporting import export_contacts
from distributor.contacts.importing import ImportOptions, import_contacts_file
from distributor.contacts.reading import FileFormat
from distributor.contacts.upsert import upsert_contacts
from distributor.errors import DistributorError, ImportRejectedError
from distributor.gdpr import forget
from distributor.models import Contact, ContactBeat
from distributor.runtime import Runtime
from distributor.segments.parser import parse_filter
from tests.support.media import NOW, clear_contacts

FULL_CSV = (
    "email,name,outlet,role,beats,region,country,language,media_type,time_zone,"
    "legal_basis,embargo_vetted,embargo_breaker,attributes.desk\n"
    "Zoë@Bücher.example,Zoë Ångström-Łukasiewicz,Süddeutsche Zeitung,Korrespondentin,"
    "Crime; Straße,Bayern,de,de,print,Europe/Berlin,consent,yes,no,Nachrichten\n"
    "editor@例え.jp,李雷,人民日报,主编,politics,,CN,zh-hans,online,Asia/Shanghai,,,,\n"
    'nikos@xn--hxargifdar.example,"Νίκος ""Nick"" Παπαδόπουλος",Καθημερινή,,,,GR,el,,,,,,\n'
)


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8", newline="")
    return path


def run_import(rt: Runtime, path: Path, **options: object) -> importing.ImportReport:
    with rt.sessions.begin() as session:
        return import_contacts_file(session, path, now=NOW, options=ImportOptions(**options))  # type: ignore[arg-type]


def export(rt: Runtime, file_format: FileFormat, where: str | None = None) -> str:
    stream = io.StringIO()
    with rt.sessions() as session:
        export_contacts(
            session,
            stream,
            file_format=file_format,
            where=parse_filter(where) if where else None,
        )
    return stream.getvalue()


def count(rt: Runtime) -> int:
    with rt.sessions() as session:
        return session.scalar(select(func.count()).select_from(Contact)) or 0


@pytest.mark.parametrize("file_format", [FileFormat.CSV, FileFormat.JSON])
def test_unicode_and_idn_contacts_round_trip_through_export_and_import(
    runtime: Runtime, tmp_path: Path, file_format: FileFormat
) -> None:
    # Given contacts with non-Latin names and IDN domains, imported from CSV
    report = run_import(runtime, write(tmp_path, "in.csv", FULL_CSV), source="agency list")
    assert (report.created, report.updated, report.skipped) == (3, 0, [])
    first = export(runtime, file_format)
    # When they are exported, wiped, and the export is imported again
    with runtime.sessions.begin() as session:
        clear_contacts(session)
    suffix = "json" if file_format is FileFormat.JSON else "csv"
    again = run_import(runtime, write(tmp_path, f"out.{suffix}", first))
    # Then the second export is the first, byte for byte
    assert (again.created, again.skipped) == (3, [])
    assert export(runtime, file_format) == first
    if file_format is FileFormat.JSON:
        zoe = json.loads(first)[2]
        assert zoe == {
            "email": "Zoë@bücher.example",
            "name": "Zoë Ångström-Łukasiewicz",
            "outlet": "Süddeutsche Zeitung",
            "role": "Korrespondentin",
            "beats": ["crime", "strasse"],
            "region": "Bayern",
            "country": "DE",
            "language": "de",
            "media_type": "print",
            "time_zone": "Europe/Berlin",
            "legal_basis": "consent",
            "source": "agency list",
            "embargo_vetted": True,
            "embargo_breaker": False,
            "attributes": {"desk": "Nachrichten"},
        }
        assert [c["email"] for c in json.loads(first)] == [
            "editor@例え.jp",
            "nikos@ελληνικά.example",
            "Zoë@bücher.example",
        ]


def test_an_export_can_be_limited_by_a_filter(runtime: Runtime, tmp_path: Path) -> None:
    run_import(runtime, write(tmp_path, "in.csv", FULL_CSV))
    lines = export(runtime, FileFormat.CSV, where='country in ("DE", "GR")').splitlines()
    assert [line.split(",")[0] for line in lines[1:]] == [
        "nikos@ελληνικά.example",
        "Zoë@bücher.example",
    ]


def test_json_arrays_and_json_lines_report_problems_by_line(
    runtime: Runtime, tmp_path: Path
) -> None:
    array = (
        "[\n"
        '  {"email": "ann@example.com", "name": "Ann", "beats": ["crime", "courts"]},\n'
        '  {"email": "not-an-address"},\n'
        '  {"name": "nobody"},\n'
        '  {"email": "bob@example.com",\n'
        '   "embargo_vetted": "perhaps"},\n'
        "  [1, 2],\n"
        '  {"email": "ANN@example.com"}\n'
        "]\n"
    )
    with pytest.raises(ImportRejectedError) as caught:
        run_import(runtime, write(tmp_path, "contacts.json", array))
    assert [p.split(":")[0] for p in caught.value.problems] == [
        "line 3",
        "line 4",
        "line 5",
        "line 7",
        "line 8",
    ]
    assert "same address as line 2" in caught.value.problems[-1]
    assert count(runtime) == 0
    lines = (
        '{"email": "ann@example.com", "beats": "crime; courts"}\n\n{"email": "bob@example.com"}\n'
    )
    report = run_import(runtime, write(tmp_path, "contacts.jsonl", lines))
    assert report.created == 2
    with runtime.sessions() as session:
        assert sorted(session.scalars(select(ContactBeat.beat))) == ["courts", "crime"]
    broken = '[{"email": "cat@example.com"},\n {"email": "dan@example.com",\n'
    with pytest.raises(ImportRejectedError, match="line 3: cannot read the file from here on"):
        run_import(runtime, write(tmp_path, "broken.json", broken))


def test_columns_can_be_mapped_renamed_or_ignored(runtime: Runtime, tmp_path: Path) -> None:
    text = (
        "E-mail address,Full name,Publication,Notes,Shoe size\n"
        "ann@example.com,Ann Archer,The Times,likes tea,5\n"
    )
    path = write(tmp_path, "export-from-crm.csv", text)
    mapping = {"e-mail ADDRESS": "email", "Full name": "name", "Publication": "outlet", "Notes": ""}
    report = run_import(runtime, path, mapping=mapping)
    assert (report.created, report.ignored_columns) == (1, ("Shoe size",))
    assert (
        export(runtime, FileFormat.CSV)
        .splitlines()[1]
        .startswith("ann@example.com,Ann Archer,The Times,")
    )
    with pytest.raises(ImportRejectedError, match="names no column a contact has"):
        run_import(runtime, path, mapping={"Notes": "favourite_colour"})
    with pytest.raises(ImportRejectedError, match="missing column"):
        run_import(runtime, path)


def test_a_dry_run_counts_but_stores_nothing(runtime: Runtime, tmp_path: Path) -> None:
    path = write(tmp_path, "in.csv", FULL_CSV)
    run_import(runtime, write(tmp_path, "one.csv", "email,name\nzoë@bücher.example,Zoë\n"))
    report = run_import(runtime, path, dry_run=True)
    assert (report.created, report.updated, report.dry_run) == (2, 1, True)
    assert count(runtime) == 1


def test_reimporting_only_some_columns_keeps_the_others(runtime: Runtime, tmp_path: Path) -> None:
    run_import(runtime, write(tmp_path, "in.csv", FULL_CSV))
    report = run_import(
        runtime, write(tmp_path, "names.csv", "email,name\nZOË@bücher.example,Zoë Å.\n")
    )
    assert (report.created, report.updated) == (0, 1)
    record = json.loads(export(runtime, FileFormat.JSON))[2]
    assert (record["email"], record["name"]) == ("ZOË@bücher.example", "Zoë Å.")
    assert (record["beats"], record["role"], record["embargo_vetted"]) == (
        ["crime", "strasse"],
        "Korrespondentin",
        True,
    )
    run_import(runtime, write(tmp_path, "beats.csv", "email,name,beats\nzoë@bücher.example,Z,\n"))
    assert json.loads(export(runtime, FileFormat.JSON))[2]["beats"] == []


def test_progress_is_told_for_both_passes_up_to_the_file_size(
    runtime: Runtime, tmp_path: Path
) -> None:
    path = write(
        tmp_path,
        "in.csv",
        FULL_CSV * 1 + "".join(f"p{i}@example.com,P {i},,,,,,,,,,,,\n" for i in range(3000)),
    )
    seen: list[tuple[str, int, int]] = []
    with runtime.sessions.begin() as session:
        import_contacts_file(
            session,
            path,
            now=NOW,
            progress=lambda phase, done, total: seen.append((phase, done, total)),
        )
    size = path.stat().st_size
    assert seen[0][0] == "checking" and seen[-1] == ("importing", size, size)
    for phase in ("checking", "importing"):
        done = [d for p, d, _ in seen if p == phase]
        assert done == sorted(done) and done[-1] == size and len(done) > 2


def test_a_failure_midway_leaves_nothing_imported(
    runtime: Runtime, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given an import that stores two chunks and then fails in the third
    calls: list[int] = []
    real = upsert_contacts

    def failing(session: object, rows: list[object], **kwargs: object) -> dict[str, int]:
        calls.append(len(rows))
        if len(calls) == 3:
            raise DistributorError("the database went away")
        return real(session, rows, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr("distributor.contacts.importing.upsert_contacts", failing)
    text = "email,name\n" + "".join(f"p{i}@example.com,P {i}\n" for i in range(7))
    with pytest.raises(DistributorError, match="went away"):
        run_import(runtime, write(tmp_path, "in.csv", text), chunk_size=2)
    # Then the two chunks already written were rolled back with it
    assert calls == [2, 2, 2]
    assert count(runtime) == 0


def test_many_bad_rows_are_counted_though_only_the_first_thousand_are_listed(
    runtime: Runtime, tmp_path: Path
) -> None:
    text = "email,name\n" + "broken,X\n" * 1500 + "ok@example.com,OK\n"
    with pytest.raises(ImportRejectedError) as caught:
        run_import(runtime, write(tmp_path, "bad.csv", text))
    assert str(caught.value).startswith("1500 problem(s)")
    assert caught.value.problems[-1] == "... and 500 more problem(s) not listed"
    report = run_import(runtime, write(tmp_path, "bad.csv", text), skip_invalid=True)
    assert (report.created, report.problem_count) == (1, 1500)


def test_a_forgotten_address_in_a_file_is_left_out(runtime: Runtime, tmp_path: Path) -> None:
    with runtime.sessions.begin() as session:
        forget(session, email="editor@例え.jp", actor=Actor("Pat", Role.ADMIN), now=NOW)
    report = run_import(runtime, write(tmp_path, "in.csv", FULL_CSV))
    assert (report.created, report.forgotten) == (
        2,
        ["line 3: not imported: the owner of this address asked to be forgotten"],
    )
    assert "例え" not in export(runtime, FileFormat.JSON)


def test_a_file_that_is_not_utf8_is_refused_naming_the_line(
    runtime: Runtime, tmp_path: Path
) -> None:
    # The bad byte lies far past the first chunk the file is decoded in.
    rows = "".join(f"p{i}@example.com,P {i}\n" for i in range(5000))
    path = tmp_path / "latin1.csv"
    path.write_bytes(("email,name\n" + rows + "z@example.com,Zoë\n").encode("latin-1"))
    with pytest.raises(ImportRejectedError) as caught:
        run_import(runtime, path)
    assert caught.value.problems == [
        "line 5002: cannot read the name: the byte 0xEB at character 3 is not UTF-8; save the "
        'file as UTF-8 (a spreadsheet calls it "CSV UTF-8") and import again'
    ]
    assert count(runtime) == 0


# --- property: random malformed files never crash and never half-import ----------------------

GOOD = ["ann@example.com", "Bob@Example.org", "zoë@bücher.example", "li@xn--r8jz45g.jp"]
BAD = ["not-an-address", "", "a@", 5, None, ["x"], "ann@localhost"]
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=5),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=5,
)


@st.composite
def json_files(draw: st.DrawFn) -> bytes:
    records = []
    for _ in range(draw(st.integers(0, 5))):
        record = {"email": draw(st.sampled_from(GOOD + BAD))}
        for key in draw(
            st.lists(
                st.sampled_from(
                    [
                        "name",
                        "beats",
                        "country",
                        "attributes",
                        "media_type",
                        "embargo_vetted",
                        "Email",
                        "other",
                    ]
                ),
                max_size=3,
            )
        ):
            record[key] = draw(
                JSON_VALUES | st.sampled_from(["GB", "print", "yes", "crime; courts"])
            )
        records.append(record)
    lines = draw(st.booleans())
    text = (
        "\n".join(json.dumps(r, ensure_ascii=draw(st.booleans())) for r in records)
        if lines
        else json.dumps(records, indent=draw(st.sampled_from([None, 1])))
    )
    cut = draw(st.integers(0, len(text)))
    if draw(st.integers(0, 3)) == 0:
        text = text[:cut] + draw(st.sampled_from(["", "]", ",", "{", '"', "\x00"])) + text[cut:]
    data = text.encode("utf-8")
    if draw(st.integers(0, 9)) == 0:
        data += b"\xff"
    return data


@st.composite
def csv_files(draw: st.DrawFn) -> bytes:
    header = draw(
        st.sampled_from(
            ["email,name", "email,name,beats,country", "name,email,outlet", "email", "e,name"]
        )
    )
    columns = header.split(",")
    rows = [header]
    for _ in range(draw(st.integers(0, 5))):
        fields = [
            str(draw(st.sampled_from([*GOOD, "not-an-address", ""])))
            if c == "email"
            else draw(st.sampled_from(["Ann", "crime; x", "GB", "United", '"q', "a\x01b", ""]))
            for c in columns
        ]
        rows.append(",".join(fields))
    return ("\n".join(rows) + draw(st.sampled_from(["", "\n", '"', "\r\n"]))).encode("utf-8")


@settings(
    max_examples=50,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    data=st.one_of(json_files().map(lambda d: ("json", d)), csv_files().map(lambda d: ("csv", d))),
    skip_invalid=st.booleans(),
)
@example(
    data=("json", b'[{"email": "ann@example.com"}, {"email": "ann@example.com"}]'),
    skip_invalid=False,
)
@example(data=("csv", b"email,name\nann@example.com,A\nbroken,B\n"), skip_invalid=True)
def test_random_files_never_crash_and_never_half_import(
    runtime: Runtime,
    tmp_path_factory: pytest.TempPathFactory,
    data: tuple[str, bytes],
    skip_invalid: bool,
) -> None:
    suffix, content = data
    path = tmp_path_factory.mktemp("random") / f"contacts.{suffix}"
    path.write_bytes(content)
    try:
        try:
            report = run_import(runtime, path, skip_invalid=skip_invalid)
        except DistributorError as exc:
            # Refused whole: nothing stored, and every listed problem names a line.
            assert count(runtime) == 0
            if isinstance(exc, ImportRejectedError):
                assert not skip_invalid
                assert exc.problems and all(p.startswith("line ") for p in exc.problems)
        else:
            assert skip_invalid or report.problem_count == 0
            assert count(runtime) == report.created
    finally:
        with runtime.sessions.begin() as session:
            clear_contacts(session)
