"""Filters run on a real database: each field and operator, with known answers."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest
from sqlalchemy import select

from distributor.actors import Actor, Role
from distributor.contacts.editing import set_outlet_flags
from distributor.errors import DistributorError, InvalidFilterError
from distributor.models import Contact
from distributor.runtime import Runtime
from distributor.segments.compiler import matching_contact_ids
from distributor.segments.parser import parse_filter
from distributor.segments.store import (
    delete_segment,
    get_segments,
    list_segments,
    preview_filter,
    save_segment,
)
from distributor.suppression import SuppressionReason, suppress
from tests.support.media import NOW, contact, store

OFFICER = Actor("Pat", Role.PRESS_OFFICER)


@pytest.fixture
def newsroom(runtime: Runtime) -> Iterator[Runtime]:
    """Four journalists with a little of everything."""
    with runtime.sessions.begin() as session:
        store(
            session,
            [
                contact(
                    "ann@example.com",
                    name="Ann Archer",
                    outlet="Daily Example",
                    role="Crime correspondent",
                    beats="Crime; policing",
                    region="North",
                    country="gb",
                    language="en",
                    media_type="print",
                    time_zone="Europe/London",
                    legal_basis="consent",
                    source="import of press.csv",
                    attributes={"desk": "news"},
                ),
                contact(
                    "bob@gazette.example.org",
                    name="Bob Baker",
                    outlet="The Gazette",
                    beats="politics",
                    country="GB",
                    media_type="online",
                    embargo_breaker="yes",
                ),
                contact(
                    "zoe@bücher.example",
                    name="Zoë Ångström",
                    outlet="Süddeutsche Zeitung",
                    beats="crime; Straße",
                    country="DE",
                    language="de",
                    media_type="print",
                    embargo_vetted="yes",
                ),
                contact("li@例え.jp", name="李雷"),
            ],
        )
    yield runtime


def matches(runtime: Runtime, text: str) -> set[str]:
    with runtime.sessions() as session:
        ids = matching_contact_ids(parse_filter(text))
        return set(session.scalars(select(Contact.email_key).where(Contact.id.in_(ids))))


ANN, BOB, ZOE, LI = "ann@example.com", "bob@gazette.example.org", "zoe@bücher.example", "li@例え.jp"

CASES = [
    ('beat in ("crime", "policing") and country = "GB" and not outlet = "Daily Example"', set()),
    ('beat in ("crime", "policing") and country = "GB"', {ANN}),
    ('beat = "CRIME"', {ANN, ZOE}),
    # Case-folded, so the German sharp s equals its capital spelling "SS".
    ('beat = "STRASSE"', {ZOE}),
    ('beat != "crime"', {BOB, LI}),
    ('beat not in ("crime", "politics")', {LI}),
    ('beat contains "lic"', {ANN}),
    ("beat is empty", {LI}),
    ('outlet = "daily  EXAMPLE"', {ANN}),
    ('outlet contains "zeitung"', {ZOE}),
    ("outlet is empty", {LI}),
    ('name = "Ann Archer"', {ANN}),
    ('name = "ann archer"', set()),
    ('name contains "Å"', {ZOE}),
    ('name contains "å"', set()),
    ('role contains "Crime"', {ANN}),
    ('region = "North"', {ANN}),
    ('region != "North"', {BOB, ZOE, LI}),
    ('country = "gb"', {ANN, BOB}),
    ("country is empty", {LI}),
    ('language in ("EN", "de")', {ANN, ZOE}),
    ('media_type = "PRINT"', {ANN, ZOE}),
    ("media_type is empty", {LI}),
    ('media_type != "print"', {BOB, LI}),
    ('time_zone = "Europe/London"', {ANN}),
    ('legal_basis = "consent"', {ANN}),
    ('legal_basis = "legitimate_interest"', {BOB, ZOE, LI}),
    ('source contains "press"', {ANN}),
    ('attributes.desk = "news"', {ANN}),
    ("attributes.desk is empty", {BOB, ZOE, LI}),
    ('email = "ANN@Example.COM"', {ANN}),
    ('email = "zoe@xn--bcher-kva.example"', {ZOE}),
    ('email contains "@GAZETTE."', {BOB}),
    ("embargo_vetted", {ZOE}),
    ("not embargo_breaker and not embargo_vetted", {ANN, LI}),
    ("embargo_breaker = false", {ANN, ZOE, LI}),
    ('(beat = "crime" or beat = "politics") and not (country = "DE")', {ANN, BOB}),
    ('name = "x\'); DROP TABLE contacts; --"', set()),
]


def test_each_field_and_operator_selects_the_right_contacts(
    newsroom: Runtime, subtests: pytest.Subtests
) -> None:
    # One database for every case keeps this quick; each case is its own subtest.
    for text, expected in CASES:
        with subtests.test(text):
            assert matches(newsroom, text) == expected


def test_an_outlet_flag_applies_to_every_journalist_there(newsroom: Runtime) -> None:
    # Given an outlet marked as an embargo breaker
    with newsroom.sessions.begin() as session:
        set_outlet_flags(session, name="DAILY EXAMPLE", now=NOW, embargo_breaker=True)
    # Then its journalist counts as one, without a flag of her own
    assert matches(newsroom, "embargo_breaker") == {ANN, BOB}
    assert matches(newsroom, "not embargo_breaker") == {ZOE, LI}


def test_preview_counts_and_samples_before_saving(newsroom: Runtime) -> None:
    with newsroom.sessions.begin() as session:
        suppress(session, email=ZOE, reason=SuppressionReason.UNSUBSCRIBED, source="x", now=NOW)
    with newsroom.sessions() as session:
        preview = preview_filter(session, 'beat = "crime"', sample_size=1)
    assert (preview.count, preview.suppressed) == (2, 1)
    assert [(p.email, p.name) for p in preview.sample] == [(ANN, "Ann Archer")]


def test_a_saved_segment_keeps_its_text_and_can_be_replaced_or_deleted(newsroom: Runtime) -> None:
    with newsroom.sessions.begin() as session:
        saved = save_segment(
            session, name=" Crime  desk ", filter_text=' beat = "crime" ', actor=OFFICER, now=NOW
        )
        assert (saved.name, saved.filter_text, saved.created_by) == (
            "Crime desk",
            'beat = "crime"',
            "Pat (press_officer)",
        )
    with newsroom.sessions.begin() as session, pytest.raises(DistributorError, match="--replace"):
        save_segment(
            session, name="Crime desk", filter_text="beat is empty", actor=OFFICER, now=NOW
        )
    with newsroom.sessions.begin() as session:
        later = NOW + timedelta(hours=1)
        save_segment(
            session,
            name="Crime desk",
            filter_text="beat is empty",
            actor=OFFICER,
            now=later,
            replace=True,
        )
        (segment,) = get_segments(session, ["Crime desk"])
        assert (segment.filter_text, segment.updated_at) == ("beat is empty", later)
        delete_segment(session, name="Crime desk")
        assert list_segments(session) == []


def test_a_bad_filter_is_never_saved(newsroom: Runtime) -> None:
    with newsroom.sessions.begin() as session, pytest.raises(InvalidFilterError):
        save_segment(session, name="Broken", filter_text="beat = crime", actor=OFFICER, now=NOW)
    with newsroom.sessions() as session:
        assert list_segments(session) == []
