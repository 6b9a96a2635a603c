"""The filter language on its own: what parses to what, and errors that point at the token."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import Dialect
from sqlalchemy.dialects import postgresql, sqlite

from distributor.errors import InvalidFilterError
from distributor.segments.compiler import matching_contact_ids
from distributor.segments.evaluate import ContactFacts, evaluate
from distributor.segments.parser import parse_filter
from distributor.segments.syntax import And, Condition, Filter, Not, Operator, Or, render

ISSUE_EXAMPLE = 'beat in ("crime", "policing") and country = "GB" and not outlet = "Daily Example"'


def test_the_example_from_the_issue_parses_with_values_in_their_stored_form() -> None:
    assert parse_filter(ISSUE_EXAMPLE) == And(
        (
            Condition("beat", Operator.IN, ("crime", "policing")),
            Condition("country", Operator.EQUALS, ("GB",)),
            Not(Condition("outlet", Operator.EQUALS, ("daily example",))),
        )
    )


def test_and_binds_tighter_than_or_and_not_tightest() -> None:
    tree = parse_filter('not region = "North" or country = "GB" and beat = "crime"')
    assert tree == Or(
        (
            Not(Condition("region", Operator.EQUALS, ("North",))),
            And(
                (
                    Condition("country", Operator.EQUALS, ("GB",)),
                    Condition("beat", Operator.EQUALS, ("crime",)),
                )
            ),
        )
    )


def test_keywords_fields_and_aliases_ignore_letter_case() -> None:
    assert parse_filter('TOPICS NOT IN ("Crime") OR Embargo_Vetted') == Or(
        (
            Condition("beat", Operator.NOT_IN, ("crime",)),
            Condition("embargo_vetted", Operator.EQUALS, (True,)),
        )
    )


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("region is empty", Condition("region", Operator.IS_EMPTY, ())),
        ("beat is not empty", Condition("beat", Operator.IS_NOT_EMPTY, ())),
        ('name contains "Ann"', Condition("name", Operator.CONTAINS, ("Ann",))),
        ('outlet not contains "TIMES"', Condition("outlet", Operator.NOT_CONTAINS, ("times",))),
        ('attr.Desk = "news"', Condition("attributes.desk", Operator.EQUALS, ("news",))),
        ("embargo_breaker != true", Condition("embargo_breaker", Operator.NOT_EQUALS, (True,))),
        ("language = 'EN_gb'", Condition("language", Operator.EQUALS, ("en-gb",))),
        (
            'media_type in ("Print", "online",)',
            Condition("media_type", Operator.IN, ("print", "online")),
        ),
        ('email = "Ann@EXAMPLE.com"', Condition("email", Operator.EQUALS, ("ann@example.com",))),
        (
            'name = "say \\"hi\\" \\\\ there"',
            Condition("name", Operator.EQUALS, ('say "hi" \\ there',)),
        ),
    ],
)
def test_each_form_of_condition(text: str, expected: Condition) -> None:
    assert parse_filter(text) == expected


# Each bad filter, the words its error must contain, and the character the caret must be under.
BAD_FILTERS = [
    ("", "the filter is empty", 0),
    ("beat in (crime)", 'put the value in quotes: "crime"', 9),
    ('colour = "red"', "unknown field 'colour'", 0),
    ('beat = "crime" and', "expected a field name, found the end", 18),
    ('(beat = "crime"', "expected ) to close the ( at character 1", 15),
    ('beat = "crime")', "unexpected ')'", 14),
    ('media_type = "tv"', "'tv' is not a media_type; choose one of print", 13),
    ('country = "United Kingdom"', "not a two-letter ISO 3166 country code", 10),
    ('beat == "crime"', "expected a quoted value, found '='", 6),
    ('beat = "crime', "has no closing", 7),
    ('beat < "crime"', "unexpected character '<'", 5),
    ('beat = "a\\qb"', "unknown escape \\q", 9),
    ('embargo_vetted = "yes"', "embargo_vetted is true or false", 17),
    ("embargo_vetted is empty", "never empty", 0),
    ('media_type contains "pr"', "takes = or in, not contains", 0),
    ('beat "crime"', "expected =, !=, in, contains or is after beat", 5),
    ('beat in ("a" "b")', "expected , or ) in the list of values", 13),
    ("beat in ()", "expected a quoted value, found ')'", 9),
    ('beat = "a" beat = "b"', "join conditions with and / or", 11),
    ('attributes.Bad-Name = "x"', "unexpected character '-'", 14),
    ('name = "a\x01b"', "control character", 9),
    ("not " * 60 + 'beat = "a"', "nests more than 50 deep", 200),
]


@pytest.mark.parametrize(("text", "words", "position"), BAD_FILTERS)
def test_a_bad_filter_is_refused_with_a_caret_under_the_offending_token(
    text: str, words: str, position: int
) -> None:
    with pytest.raises(InvalidFilterError) as caught:
        parse_filter(text)
    error = caught.value
    assert words in str(error)
    assert error.position == position
    assert f"(at character {position + 1})" in str(error)
    # The message shows the filter and a caret line under the token.
    pointer = str(error).splitlines()[-1]
    assert pointer.index("^") - 2 == position


def test_values_never_reach_the_sql_text() -> None:
    hostile = "x'); DROP TABLE contacts; --"
    tree = parse_filter(f'name = "{hostile}" or beat in ("{hostile}") or name contains "{hostile}"')
    dialects: list[Dialect] = [postgresql.dialect(), sqlite.dialect()]  # type: ignore[no-untyped-call]
    for dialect in dialects:
        compiled = matching_contact_ids(tree).compile(dialect=dialect)
        assert "DROP" not in str(compiled)
        assert list(compiled.params.values()).count(hostile) >= 2


# --- rendering: parse(render(tree)) is the tree --------------------------------------------

VALUES = st.text(alphabet="ab \"\\'\tλ", max_size=6)
FIELDS = st.sampled_from(["name", "role", "region", "source", "time_zone", "attributes.desk"])


def conditions() -> st.SearchStrategy[Condition]:
    single = st.builds(
        lambda field, operator, value: Condition(field, operator, (value,)),
        FIELDS,
        st.sampled_from([Operator.EQUALS, Operator.NOT_EQUALS, Operator.CONTAINS]),
        VALUES.map(lambda v: " ".join(v.split())),
    )
    several = st.builds(
        lambda field, operator, values: Condition(field, operator, tuple(dict.fromkeys(values))),
        FIELDS,
        st.sampled_from([Operator.IN, Operator.NOT_IN]),
        st.lists(VALUES.map(lambda v: " ".join(v.split())), min_size=1, max_size=3),
    )
    empty = st.builds(
        lambda field, operator: Condition(field, operator, ()),
        FIELDS,
        st.sampled_from([Operator.IS_EMPTY, Operator.IS_NOT_EMPTY]),
    )
    flag = st.builds(
        lambda value: Condition("embargo_vetted", Operator.EQUALS, (value,)), st.booleans()
    )
    return st.one_of(single, several, empty, flag)


trees: st.SearchStrategy[Filter] = st.recursive(
    conditions(),
    lambda inner: st.one_of(
        st.lists(inner, min_size=2, max_size=3).map(lambda parts: And(tuple(parts))),
        st.lists(inner, min_size=2, max_size=3).map(lambda parts: Or(tuple(parts))),
        inner.map(Not),
    ),
    max_leaves=8,
)


@settings(max_examples=100, deadline=None)
@given(tree=trees)
def test_rendering_a_tree_and_parsing_it_gives_the_same_tree(tree: Filter) -> None:
    assert parse_filter(render(tree)) == tree


def test_evaluating_in_python_follows_the_documented_meaning() -> None:
    ann = ContactFacts(
        email_key="ann@example.com",
        outlet_key="daily example",
        country="GB",
        beats=frozenset({"crime", "courts"}),
        attributes={"desk": "news"},
    )
    assert evaluate(parse_filter(ISSUE_EXAMPLE), ann) is False
    assert evaluate(parse_filter('beat = "CRIME" and not beat = "policing"'), ann) is True
    assert evaluate(parse_filter('beat != "crime"'), ann) is False
    assert evaluate(parse_filter('beat contains "our"'), ann) is True
    assert evaluate(parse_filter("region is empty and beat is not empty"), ann) is True
    assert evaluate(parse_filter('attributes.desk = "news" and attributes.shift is empty'), ann)
    assert evaluate(parse_filter("embargo_vetted"), ann) is False
    assert evaluate(parse_filter('outlet = "DAILY  example"'), ann) is True
