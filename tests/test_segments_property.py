"""Property: a filter run as SQL selects exactly the contacts the Python evaluator picks.

Random contacts go in through the importer's checks, random outlet flags are set, and each
random filter is parsed, compiled and run on SQLite and PostgreSQL; the answer must equal
evaluating the parsed filter in Python on the same contacts as they were given.
"""

from __future__ import annotations

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select, update

from distributor.contacts.records import ContactRow, RowProblem
from distributor.models import Contact, Outlet
from distributor.runtime import Runtime
from distributor.segments.compiler import matching_contact_ids
from distributor.segments.evaluate import ContactFacts, evaluate
from distributor.segments.fields import fold
from distributor.segments.parser import parse_filter
from distributor.segments.syntax import _literal
from tests.support.media import clear_contacts, contact, store

# Small pools, in several spellings, so that filters and contacts often meet.
BEATS = ["crime", "Policing", "POLITICS", "health", "Straße", "ÉCOLE", "cri"]
OUTLETS = ["Daily Example", "daily  EXAMPLE", "The Gazette", "Süddeutsche Zeitung", ""]
TEXTS = {
    "name": ["Ann Archer", "ann archer", "Zoë Ångström", "李雷", ""],
    "role": ["Crime correspondent", "Editor", ""],
    "region": ["North", "north", "Île-de-France", ""],
    "time_zone": ["Europe/London", "Asia/Tokyo", ""],
    "source": ["import of a.csv", "manual", ""],
}
CHOICES = {
    "country": ["GB", "gb", "DE", "fr", ""],
    "language": ["en", "EN-GB", "de", ""],
    "media_type": ["print", "Online", "broadcast", ""],
    "legal_basis": ["consent", "legitimate_interest", ""],
}
DESKS = ["news", "News", "sport", ""]
LOCALS = ["ann", "Bob", "zoë", "li"]
DOMAINS = ["example.com", "bücher.example", "News.Example.org"]
NEEDLES = st.text(alphabet="aeiocrÉßl%_' \"\\", max_size=3)


@st.composite
def contacts(draw: st.DrawFn) -> list[ContactRow]:
    rows = []
    for index in range(draw(st.integers(0, 7))):
        local = draw(st.sampled_from(LOCALS))
        record: dict[str, object] = {
            "email": f"{local}{index}@{draw(st.sampled_from(DOMAINS))}",
            "outlet": draw(st.sampled_from(OUTLETS)),
            "beats": draw(st.lists(st.sampled_from(BEATS), max_size=3)),
            "embargo_vetted": draw(st.booleans()),
            "embargo_breaker": draw(st.booleans()),
            "attributes": {"desk": draw(st.sampled_from(DESKS))},
        }
        for column, pool in (TEXTS | CHOICES).items():
            record[column] = draw(st.sampled_from(pool))
        try:
            rows.append(contact(str(record.pop("email")), line=index + 2, **record))
        except RowProblem as exc:  # pragma: no cover - the pools hold valid values only
            raise AssertionError(exc) from exc
    return rows


def _values(field: str) -> list[str]:
    if field == "beat":
        return BEATS
    if field == "outlet":
        return OUTLETS
    if field == "email":
        return [f"{local}0@{domain}" for local in LOCALS for domain in DOMAINS]
    if field.startswith("attributes."):
        return DESKS
    return TEXTS.get(field) or [v for v in CHOICES[field] if v]


FIELDS = ["beat", "outlet", "email", "attributes.desk", "attributes.other", *TEXTS, *CHOICES]


@st.composite
def conditions(draw: st.DrawFn) -> str:
    field = draw(st.sampled_from([*FIELDS, "embargo_vetted", "embargo_breaker"]))
    if field.startswith("embargo_"):
        form = draw(st.sampled_from(["{f}", "{f} = true", "{f} = false", "{f} != true"]))
        return form.format(f=field)
    pool = _values(field) or [""]
    operator = draw(
        st.sampled_from(
            ["=", "!=", "in", "not in", "contains", "not contains", "is empty", "is not empty"]
        )
    )
    if operator in ("is empty", "is not empty"):
        return f"{field} {operator}"
    if operator in ("in", "not in"):
        values = draw(st.lists(st.sampled_from(pool), min_size=1, max_size=3))
        return f"{field} {operator} ({', '.join(_literal(v) for v in values)})"
    if "contains" in operator:
        if field in CHOICES and field not in ("country", "language"):
            return f"{field} = {_literal(draw(st.sampled_from(pool)))}"
        needle = draw(st.one_of(NEEDLES, st.sampled_from(pool).map(lambda v: v[1:4])))
        return f"{field} {operator} {_literal(needle)}"
    return f"{field} {operator} {_literal(draw(st.sampled_from(pool)))}"


filters = st.recursive(
    conditions(),
    lambda inner: st.one_of(
        st.tuples(inner, inner).map(lambda ab: f"{ab[0]} and {ab[1]}"),
        st.tuples(inner, inner).map(lambda ab: f"{ab[0]} or {ab[1]}"),
        inner.map(lambda a: f"not {a}"),
        inner.map(lambda a: f"({a})"),
    ),
    max_leaves=5,
)


def facts(row: ContactRow, outlet_flags: dict[str, tuple[bool, bool]]) -> ContactFacts:
    vetted, breaker = outlet_flags.get(fold(row.outlet), (False, False))
    return ContactFacts(
        email_key=row.key,
        name=row.name,
        outlet_key=fold(row.outlet),
        role=row.role,
        region=row.region,
        country=row.country,
        language=row.language,
        media_type=row.media_type.value if row.media_type else "",
        time_zone=row.time_zone or "",
        source=row.source,
        legal_basis=row.legal_basis.value,
        beats=frozenset(row.beats),
        attributes=dict(row.attributes),
        embargo_vetted=row.embargo_vetted or vetted,
        embargo_breaker=row.embargo_breaker or breaker,
    )


@settings(
    max_examples=35,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    rows=contacts(),
    flagged=st.dictionaries(
        st.sampled_from([fold(o) for o in OUTLETS if o]), st.tuples(st.booleans(), st.booleans())
    ),
    texts=st.lists(filters, min_size=1, max_size=6),
)
@example(
    rows=[contact("ann@example.com", outlet="Daily Example", beats="crime", country="GB")],
    flagged={"daily example": (True, False)},
    texts=[
        'beat in ("crime", "policing") and country = "GB" and not outlet = "Daily Example"',
        "embargo_vetted and not embargo_breaker",
        'name = "" and region is empty and time_zone != "Europe/London"',
        'beat contains "" or outlet contains ""',
    ],
)
def test_sql_and_python_pick_the_same_contacts(
    runtime: Runtime,
    rows: list[ContactRow],
    flagged: dict[str, tuple[bool, bool]],
    texts: list[str],
) -> None:
    with runtime.sessions.begin() as session:
        store(session, rows)
        for key, (vetted, breaker) in flagged.items():
            session.execute(
                update(Outlet)
                .where(Outlet.name_key == key)
                .values(embargo_vetted=vetted, embargo_breaker=breaker)
            )
    outlet_flags = {key: flags for key, flags in flagged.items()}
    try:
        with runtime.sessions() as session:
            assert session.scalar(select(func.count()).select_from(Contact)) == len(rows)
            for text in texts:
                tree = parse_filter(text)
                chosen_by_sql = set(
                    session.scalars(
                        select(Contact.email_key).where(Contact.id.in_(matching_contact_ids(tree)))
                    )
                )
                chosen_in_python = {r.key for r in rows if evaluate(tree, facts(r, outlet_flags))}
                assert chosen_by_sql == chosen_in_python, text
    finally:
        with runtime.sessions.begin() as session:
            clear_contacts(session)
