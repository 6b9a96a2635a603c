"""Importing a contacts CSV: every bad row reported by line, and all or nothing imported."""

from __future__ import annotations

import io
from datetime import UTC, datetime

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from sqlalchemy import delete, func, select

from distributor.contacts.importing import NoValidRowError
from distributor.contacts_import import (
    ImportReport,
    ParsedContacts,
    import_contacts,
    parse_contacts_csv,
)
from distributor.errors import ImportRejectedError
from distributor.lists import add_to_list, create_list
from distributor.models import Contact, ListMembership, Outlet
from distributor.runtime import Runtime

NOW = datetime(2026, 6, 15, 12, 0, tzinfo=UTC)
LATER = datetime(2026, 6, 16, 12, 0, tzinfo=UTC)


def parse(text: str) -> ParsedContacts:
    # newline="" as the command line opens the file, so quoted line breaks reach the csv module.
    return parse_contacts_csv(io.StringIO(text, newline=""))


def import_text(
    runtime: Runtime, text: str, *, skip_invalid: bool = False, now: datetime = NOW
) -> ImportReport:
    with runtime.sessions.begin() as session:
        return import_contacts(session, parse(text), now=now, skip_invalid=skip_invalid)


def rejected(runtime: Runtime, text: str) -> list[str]:
    with pytest.raises(ImportRejectedError) as caught:
        import_text(runtime, text)
    return caught.value.problems


def stored(runtime: Runtime) -> dict[str, tuple[str, str, str]]:
    """Every contact in the database: email key -> (email, name, outlet)."""
    with runtime.sessions() as session:
        rows = session.execute(
            select(
                Contact.email_key, Contact.email, Contact.name, func.coalesce(Outlet.name, "")
            ).outerjoin(Outlet, Outlet.id == Contact.outlet_id)
        )
        return {key: (email, name, outlet) for key, email, name, outlet in rows}


def contact_count(runtime: Runtime) -> int:
    with runtime.sessions() as session:
        return session.scalar(select(func.count()).select_from(Contact)) or 0


# Each bad file, and the problems it must produce in order: (line number, words in the message).
BAD_FILES = {
    "malformed address": (
        "email,name\nann@example.com,Ann\nnot-an-address,Bob\n",
        [(3, "'not-an-address' is not a valid address")],
    ),
    "address duplicated in another case": (
        "email,name\nann@example.com,Ann\nbob@example.com,Bob\nANN@Example.COM,Ann again\n",
        [(4, "same address as line 2")],
    ),
    "missing required column": (
        "email,outlet\nann@example.com,The Times\n",
        [(1, "missing column(s) name")],
    ),
    "no header at all": ("", [(1, "missing column(s) email, name")]),
    "empty email": (
        "email,name\nann@example.com,Ann\n  ,Bob\n",
        [(3, "the email is empty")],
    ),
    "too many fields": (
        "email,name,outlet\nann@example.com,Ann,Times\nbob@example.com,Bob,Times,extra\n",
        [(3, "more fields than the header has columns")],
    ),
    "bad row after a quoted field spanning lines": (
        'email,name,outlet\nann@example.com,Ann,"The Times\nLondon desk"\nbroken,Bob,Mirror\n',
        [(4, "'broken' is not a valid address")],
    ),
    "bad row that itself spans lines": (
        'email,name\nann@example.com,Ann\n"bob@\nexample.com",Bob\ncat@example.com,Cat\n',
        [(3, "is not a valid address")],
    ),
    "blank lines count": (
        "email,name\n\nann@example.com,Ann\n\nbroken,Bob\n",
        [(5, "'broken' is not a valid address")],
    ),
    "windows line endings": (
        "email,name\r\nann@example.com,Ann\r\nbroken,Bob\r\n",
        [(3, "'broken' is not a valid address")],
    ),
    "several problems, all reported": (
        "email,name,outlet\n"
        "ann@example.com,Ann,Times\n"
        "ann@,Ann,Times\n"
        ",Nobody,Times\n"
        "Ann@Example.com,Ann,Times\n"
        "dan@example.com,Dan,Times,Mirror\n"
        "eve@example.com,Eve,Guardian\n",
        [
            (3, "'ann@' is not a valid address"),
            (4, "the email is empty"),
            (5, "same address as line 2"),
            (6, "more fields"),
        ],
    ),
    "name too long for the database": (
        "email,name\nann@example.com," + "A" * 201 + "\n",
        [(2, "the name is 201 characters long")],
    ),
    "outlet too long for the database": (
        "email,name,outlet\nann@example.com,Ann," + "T" * 250 + "\n",
        [(2, "the outlet is 250 characters long")],
    ),
    "control character in a name": (
        "email,name\nann@example.com,Ann\x00Smith\n",
        [(2, "the name contains a control character")],
    ),
    "header naming a column twice": (
        "email,name,email\nann@example.com,Ann,bob@example.com\n",
        [(1, "the column email appears more than once")],
    ),
    "field too large to read": (
        'email,name\nann@example.com,"' + "x" * 200_000 + '"\nbob@example.com,Bob\n',
        [(2, "cannot read")],
    ),
}


def test_bad_file_is_reported_by_line_and_nothing_is_imported(
    runtime: Runtime, subtests: pytest.Subtests
) -> None:
    # One database for all the files keeps this quick; each file is its own subtest.
    for case, (text, expected) in BAD_FILES.items():
        with subtests.test(case):
            problems = rejected(runtime, text)
            assert len(problems) == len(expected), problems
            for problem, (line, words) in zip(problems, expected, strict=True):
                assert problem.startswith(f"line {line}: "), problem
                assert words in problem
            assert contact_count(runtime) == 0


def test_the_rejection_message_lists_every_problem(runtime: Runtime) -> None:
    with pytest.raises(ImportRejectedError) as caught:
        import_text(runtime, BAD_FILES["several problems, all reported"][0])
    message = str(caught.value)
    assert "4 problem(s)" in message
    assert "nothing was imported" in message
    assert "--skip-invalid" in message
    for line in (3, 4, 5, 6):
        assert f"line {line}: " in message


def test_a_bad_file_leaves_existing_contacts_untouched(runtime: Runtime) -> None:
    import_text(runtime, "email,name,outlet\nann@example.com,Ann,Times\n")
    rejected(runtime, "email,name,outlet\nann@example.com,Ann Changed,Mirror\nbroken,Bob,X\n")
    assert stored(runtime) == {"ann@example.com": ("ann@example.com", "Ann", "Times")}


def test_skip_invalid_imports_the_good_rows_and_reports_the_bad(runtime: Runtime) -> None:
    report = import_text(runtime, BAD_FILES["several problems, all reported"][0], skip_invalid=True)
    assert (report.created, report.updated) == (2, 0)
    assert [p.split(":")[0] for p in report.skipped] == ["line 3", "line 4", "line 5", "line 6"]
    assert stored(runtime) == {
        "ann@example.com": ("ann@example.com", "Ann", "Times"),
        "eve@example.com": ("eve@example.com", "Eve", "Guardian"),
    }


def test_skip_invalid_with_nothing_valid_is_refused(runtime: Runtime) -> None:
    with pytest.raises(NoValidRowError) as caught:
        import_text(runtime, "email,name\nbroken,Bob\n,Nobody\n", skip_invalid=True)
    assert [p.split(":")[0] for p in caught.value.problems] == ["line 2", "line 3"]
    assert contact_count(runtime) == 0


GOOD_FILE = (
    "email,name,outlet\n"
    "ann@example.com,Ann Archer,The Times\n"
    "bob@news.example.org,Bob Baker,\n"
    "cat@example.com,Cat Cole,Daily Mirror\n"
)


def test_reimporting_the_same_file_updates_rather_than_duplicates(runtime: Runtime) -> None:
    first = import_text(runtime, GOOD_FILE)
    before = stored(runtime)
    second = import_text(runtime, GOOD_FILE, now=LATER)
    assert (first.created, first.updated) == (3, 0)
    assert (second.created, second.updated) == (0, 3)
    assert stored(runtime) == before
    assert contact_count(runtime) == 3


def test_reimport_matches_addresses_without_regard_to_case(runtime: Runtime) -> None:
    import_text(runtime, GOOD_FILE)
    report = import_text(
        runtime, "email,name,outlet\nANN@EXAMPLE.COM,Ann Archer-Smith,The Guardian\n", now=LATER
    )
    assert (report.created, report.updated) == (0, 1)
    contacts = stored(runtime)
    assert len(contacts) == 3
    # The newest spelling and details win; the mailbox stays one contact.
    assert contacts["ann@example.com"] == ("ANN@example.com", "Ann Archer-Smith", "The Guardian")
    with runtime.sessions() as session:
        ann = session.scalars(select(Contact).where(Contact.email_key == "ann@example.com")).one()
        assert ann.created_at == NOW
        assert ann.updated_at == LATER


def test_header_names_are_matched_loosely_and_the_domain_is_normalised(runtime: Runtime) -> None:
    import_text(runtime, "Name , EMAIL ,Outlet\n Ann Archer , ann@EXAMPLE.com ,  The Times \n")
    assert stored(runtime) == {"ann@example.com": ("ann@example.com", "Ann Archer", "The Times")}


def test_a_line_break_inside_a_quoted_name_becomes_a_space(runtime: Runtime) -> None:
    # A name spanning lines would break the To: header of every message sent to it.
    import_text(runtime, 'email,name\nann@example.com,"Ann\r\nArcher"\nbob@example.com,Bob\n')
    contacts = stored(runtime)
    assert contacts["ann@example.com"][1] == "Ann Archer"
    assert contacts["bob@example.com"][1] == "Bob"


UNICODE_FILE = (
    "email,name,outlet\n"
    "zoe@bücher.example,Zoë Ångström-Łukasiewicz,Süddeutsche Zeitung\n"
    "editor@例え.jp,李雷,人民日报\n"
    "nikos@ελληνικά.example,Νίκος Παπαδόπουλος,Καθημερινή\n"
)


def test_unicode_names_and_idn_domains_round_trip(runtime: Runtime) -> None:
    with runtime.sessions.begin() as session:
        import_contacts(session, parse_contacts_csv(io.StringIO(UNICODE_FILE)), now=NOW)
    assert stored(runtime) == {
        "zoe@bücher.example": (
            "zoe@bücher.example",
            "Zoë Ångström-Łukasiewicz",
            "Süddeutsche Zeitung",
        ),
        "editor@例え.jp": ("editor@例え.jp", "李雷", "人民日报"),
        "nikos@ελληνικά.example": ("nikos@ελληνικά.example", "Νίκος Παπαδόπουλος", "Καθημερινή"),
    }


def test_the_punycode_spelling_of_an_idn_address_is_the_same_contact(runtime: Runtime) -> None:
    import_text(runtime, UNICODE_FILE)
    report = import_text(runtime, "email,name\nZOE@XN--BCHER-KVA.EXAMPLE,Zoë A.\n", now=LATER)
    assert (report.created, report.updated) == (0, 1)
    assert contact_count(runtime) == 3
    with runtime.sessions.begin() as session:
        create_list(session, "Germany", now=NOW)
        added = add_to_list(session, "Germany", ["zoe@xn--bcher-kva.example", "Zoe@Bücher.example"])
    assert added == 1
    with runtime.sessions() as session:
        assert session.scalar(select(func.count()).select_from(ListMembership)) == 1


# --- property: random malformed input --------------------------------------------------------

VALID_EMAILS = st.builds(
    "{}@{}".format,
    st.sampled_from(["ann", "Bob", "cat.cole", "d+news", "ZOE"]),
    st.sampled_from(["example.com", "News.Example.org", "bücher.example", "xn--bcher-kva.example"]),
)
BAD_EMAILS = st.sampled_from(
    ["not-an-address", "@example.com", "ann@", "x@localhost", "a b@example.com", "", "   "]
)
NOISE = st.one_of(
    st.text(alphabet=',"\n\r @.aéZ\x00\t;', max_size=10),
    st.text(max_size=12),
    st.text(alphabet="Nn", min_size=195, max_size=205),
)
NAMES = st.sampled_from(["Ann Archer", "Zoë Ångström", "李雷", "", "The Times, London"])
HEADERS = [
    "email,name,outlet",
    "email,name",
    "name,email",
    " Email , NAME ",
    "email",
    "mail,name",
    "email,name,email",
    "",
]


def quoted(field: str) -> str:
    return '"' + field.replace('"', '""') + '"'


@st.composite
def csv_texts(draw: st.DrawFn) -> str:
    """Mostly well-formed contact rows with now and then a bad value, field or quote."""
    header = draw(st.sampled_from(HEADERS))
    columns = [c.strip().lower() for c in header.split(",")]
    lines = [header]
    for _ in range(draw(st.integers(0, 6))):
        fields = []
        for column in columns:
            chance = draw(st.integers(0, 9))
            if chance == 0:
                fields.append(draw(NOISE))
            elif column == "email":
                fields.append(draw(BAD_EMAILS if chance == 1 else VALID_EMAILS))
            else:
                fields.append(draw(NAMES))
        if draw(st.integers(0, 9)) == 0:
            fields.append(draw(NOISE))  # one field too many
        if fields and draw(st.integers(0, 9)) == 0:
            fields.pop()  # one too few
        lines.append(",".join(quoted(f) if draw(st.booleans()) else f for f in fields))
    ending = draw(st.sampled_from(["\n", "\r\n", "\r"]))
    return ending.join(lines) + draw(st.sampled_from(["", ending, '"']))


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(text=st.one_of(csv_texts(), st.text(max_size=80)), skip_invalid=st.booleans())
@example(text="email,name\nann@example.com,Ann\x00\n", skip_invalid=False)
@example(text="email,name\nann@example.com," + "N" * 201 + "\n", skip_invalid=False)
def test_random_csv_is_rejected_cleanly_or_imported_whole(
    runtime: Runtime, text: str, skip_invalid: bool
) -> None:
    parsed = parse(text)
    physical_lines = max(1, len(io.StringIO(text, newline="").readlines()))
    for problem in parsed.problems:
        line = int(problem.removeprefix("line ").split(":", 1)[0])
        assert 1 <= line <= physical_lines, (problem, physical_lines)
    try:
        try:
            import_text(runtime, text, skip_invalid=skip_invalid)
        except ImportRejectedError as exc:
            assert not skip_invalid
            assert exc.problems == parsed.problems != []
            assert contact_count(runtime) == 0
        except NoValidRowError as exc:
            assert skip_invalid and not parsed.rows
            assert exc.problems == parsed.problems != []
            assert contact_count(runtime) == 0
        else:
            assert skip_invalid or not parsed.problems
            assert set(stored(runtime)) == {row.key for row in parsed.rows}
    finally:
        with runtime.sessions.begin() as session:
            session.execute(delete(Contact))
