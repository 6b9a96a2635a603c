"""Looking contacts up and editing one: `contacts show`, `contacts search`, `contacts edit`."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from distributor.actors import Actor, Role
from distributor.contacts.editing import ContactEditRefusedError, edit_contact
from distributor.contacts.lookup import contact_detail, search_contacts
from distributor.errors import DistributorError, InvalidFilterError, NotFoundError
from distributor.gdpr import forget
from distributor.lists import add_to_list, create_list
from distributor.models import Contact, ContactBeat, Delivery, Outlet, Send
from distributor.releases import ReleaseDraft, create_release
from distributor.runtime import Runtime
from distributor.settings import Settings
from distributor.states import DeliveryState, SendState
from distributor.suppression import SuppressionReason, suppress
from tests.support.media import NOW, contact, store
from tests.test_cli_json import Cli, cli  # noqa: F401 - fixture

OFFICER = Actor("Pat", Role.PRESS_OFFICER)


@pytest.fixture
def newsroom(runtime: Runtime) -> Iterator[Runtime]:
    """Five journalists, one with a % and an _ in her name and address, one suppressed."""
    with runtime.sessions.begin() as session:
        store(
            session,
            [
                contact(
                    "ann@example.com",
                    name="Ann Archer",
                    outlet="Daily Example",
                    role="Crime correspondent",
                    beats="crime; policing",
                    country="GB",
                    time_zone="Europe/London",
                    attributes={"desk": "news"},
                ),
                contact(
                    "bob@gazette.example.org", name="Bob Baker", outlet="The Gazette", beats="crime"
                ),
                contact(
                    "zoe@bücher.example",
                    name="Zoë Ångström",
                    outlet="Süddeutsche Zeitung",
                    beats="crime",
                    country="DE",
                ),
                contact("per_cent@example.com", name="100% Sure", country="GB"),
                contact("perxcent@example.com", name="1000 Sure", outlet="Example Weekly"),
            ],
        )
        suppress(
            session,
            email="bob@gazette.example.org",
            reason=SuppressionReason.UNSUBSCRIBED,
            source="one-click unsubscribe",
            note="from the footer",
            now=NOW,
        )
        create_list(session, "Newsdesks", now=NOW)
        create_list(session, "Crime", now=NOW)
        add_to_list(session, "Newsdesks", ["ann@example.com", "bob@gazette.example.org"])
        add_to_list(session, "Crime", ["ann@example.com"])
    yield runtime


def emails(found: object) -> list[str]:
    return [c.email for c in found.contacts]  # type: ignore[attr-defined]


# --- search, on SQLite and PostgreSQL ---------------------------------------------------------


def test_text_matches_name_address_or_outlet_in_any_letter_case(newsroom: Runtime) -> None:
    with newsroom.sessions() as session:
        # A name whose capital is not ASCII, written in capitals
        assert emails(search_contacts(session, text="ÅNGSTRÖM")) == ["zoe@bücher.example"]
        # Part of an address, and an outlet's name, in the wrong case
        assert emails(search_contacts(session, text="GAZETTE.EXAMPLE")) == [
            "bob@gazette.example.org"
        ]
        assert emails(search_contacts(session, text="süddeutsche")) == ["zoe@bücher.example"]
        assert emails(search_contacts(session, text="EXAMPLE.COM")) == [
            "ann@example.com",
            "per_cent@example.com",
            "perxcent@example.com",
        ]
        assert emails(search_contacts(session, text="weekly")) == ["perxcent@example.com"]
        assert search_contacts(session, text="nobody at all").total == 0


def test_like_wildcards_in_the_text_are_matched_literally(newsroom: Runtime) -> None:
    with newsroom.sessions() as session:
        assert emails(search_contacts(session, text="per_cent")) == ["per_cent@example.com"]
        assert emails(search_contacts(session, text="100%")) == ["per_cent@example.com"]
        assert emails(search_contacts(session, text="%")) == ["per_cent@example.com"]
        assert emails(search_contacts(session, text="_")) == ["per_cent@example.com"]
        assert search_contacts(session, text="\\").total == 0


def test_text_and_filter_combine_and_suppressed_contacts_are_marked(newsroom: Runtime) -> None:
    with newsroom.sessions() as session:
        crime = search_contacts(session, matching='beat = "crime"')
        assert emails(crime) == [
            "ann@example.com",
            "bob@gazette.example.org",
            "zoe@bücher.example",
        ]
        assert [c.suppressed for c in crime.contacts] == [False, True, False]
        both = search_contacts(session, text="example", matching='country = "GB"')
        assert emails(both) == ["ann@example.com", "per_cent@example.com"]
        ann = both.contacts[0]
        assert (ann.name, ann.outlet, ann.role, ann.country) == (
            "Ann Archer",
            "Daily Example",
            "Crime correspondent",
            "GB",
        )
        with pytest.raises(InvalidFilterError):
            search_contacts(session, text="ann", matching="beat = crime")
        with pytest.raises(DistributorError, match="give TEXT"):
            search_contacts(session, text="  ", matching=" ")


def test_results_come_a_page_at_a_time(newsroom: Runtime) -> None:
    with newsroom.sessions() as session:
        first = search_contacts(session, text="e", per_page=2)
        second = search_contacts(session, text="e", per_page=2, page=2)
        third = search_contacts(session, text="e", per_page=2, page=3)
        beyond = search_contacts(session, text="e", per_page=2, page=4)
        shifted = search_contacts(session, text="e", per_page=2, offset=1)
    assert (first.total, first.pages, first.page) == (5, 3, 1)
    assert emails(first) + emails(second) + emails(third) == [
        "ann@example.com",
        "bob@gazette.example.org",
        "per_cent@example.com",
        "perxcent@example.com",
        "zoe@bücher.example",
    ]
    assert (beyond.total, beyond.contacts) == (5, [])
    assert emails(shifted) == ["bob@gazette.example.org", "per_cent@example.com"]


def test_forgotten_people_are_never_found(newsroom: Runtime) -> None:
    with newsroom.sessions.begin() as session:
        forget(session, email="zoe@bücher.example", actor=OFFICER, now=NOW)
    with newsroom.sessions() as session:
        assert search_contacts(session, matching="email is not empty or email is empty").total == 4
        assert search_contacts(session, text="forgotten").total == 0
        with pytest.raises(NotFoundError, match="asked to be forgotten"):
            contact_detail(session, "zoe@bücher.example")
        # The erased row's placeholder key is not an address anyone can look up.
        placeholder = session.scalar(
            select(Contact.email_key).where(Contact.forgotten_at.is_not(None))
        )
        assert placeholder is not None
        with pytest.raises(NotFoundError, match="import it first"):
            contact_detail(session, placeholder)


# --- show ---------------------------------------------------------------------------------


def _deliveries(session: Session, email: str, count: int) -> None:
    """`count` sends of one release to the contact: the first sent, the rest pending."""
    release = create_release(
        session,
        ReleaseDraft(
            headline="Charity report", dateline="London", body="Text.", notes_to_editors=""
        ),
        now=NOW,
    )
    contact_id = session.scalar(select(Contact.id).where(Contact.email_key == email))
    assert contact_id is not None
    for number in range(count):
        send = Send(
            release_id=release.id,
            state=SendState.SCHEDULED,
            embargo_at=NOW + timedelta(days=number),
            embargo_zone="UTC",
            created_at=NOW,
        )
        session.add(send)
        session.flush()
        sent = number == 0
        session.add(
            Delivery(
                send_id=send.id,
                contact_id=contact_id,
                batch_no=0,
                state=DeliveryState.SENT if sent else DeliveryState.PENDING,
                claimed_at=NOW if sent else None,
                finished_at=NOW + timedelta(seconds=1) if sent else None,
                smtp_code=250 if sent else None,
                smtp_reply="250 2.0.0 Ok: queued as ABC" if sent else None,
            )
        )
    session.flush()


def test_show_gives_fields_lists_suppression_and_the_last_deliveries(newsroom: Runtime) -> None:
    with newsroom.sessions.begin() as session:
        _deliveries(session, "ann@example.com", 3)
        outlet = session.scalar(select(Outlet).where(Outlet.name_key == "daily example"))
        assert outlet is not None
        outlet.embargo_breaker = True
    with newsroom.sessions() as session:
        ann = contact_detail(session, "ANN@Example.com", deliveries_shown=2)
        bob = contact_detail(session, "bob@gazette.example.org")
    assert (ann.email, ann.name, ann.role, ann.country) == (
        "ann@example.com",
        "Ann Archer",
        "Crime correspondent",
        "GB",
    )
    assert ann.outlet is not None
    assert (ann.outlet.name, ann.outlet.embargo_vetted, ann.outlet.embargo_breaker) == (
        "Daily Example",
        False,
        True,
    )
    assert (ann.embargo_vetted, ann.embargo_breaker) == (False, False)
    assert (ann.beats, ann.time_zone, ann.attributes) == (
        ["crime", "policing"],
        "Europe/London",
        {"desk": "news"},
    )
    assert ann.lists == ["Crime", "Newsdesks"]
    assert ann.suppression is None
    # The newest two of three, newest first; the oldest was sent and keeps the relay's reply.
    assert ann.deliveries_total == 3
    assert [d.state for d in ann.deliveries] == [DeliveryState.PENDING, DeliveryState.PENDING]
    assert ann.deliveries[0].embargo_at == NOW + timedelta(days=2)
    assert ann.deliveries[0].headline == "Charity report"
    with newsroom.sessions() as session:
        (oldest,) = contact_detail(session, "ann@example.com").deliveries[-1:]
    assert (oldest.state, oldest.smtp_reply) == (DeliveryState.SENT, "250 2.0.0 Ok: queued as ABC")
    assert bob.suppression is not None
    assert (bob.suppression.reason, bob.suppression.source, bob.suppression.note) == (
        SuppressionReason.UNSUBSCRIBED,
        "one-click unsubscribe",
        "from the footer",
    )
    assert bob.deliveries == [] and bob.deliveries_total == 0


def test_an_unknown_address_is_not_found(newsroom: Runtime) -> None:
    with newsroom.sessions() as session, pytest.raises(NotFoundError) as refused:
        contact_detail(session, "nobody@example.com")
    assert str(refused.value) == "no contact with the address nobody@example.com; import it first"


# --- edit ---------------------------------------------------------------------------------


def edit(rt: Runtime, address: str, **changes: str) -> list[tuple[str, str, str]]:
    with rt.sessions.begin() as session:
        result = edit_contact(
            session, email=address, assignments=list(changes.items()), now=NOW + timedelta(hours=1)
        )
    return [(c.field, c.old, c.new) for c in result.changes]


def test_edit_changes_fields_and_says_what_changed(newsroom: Runtime) -> None:
    changes = edit(
        newsroom,
        "Ann@Example.com",
        name="  Ann   Smith ",
        beats="Courts; crime",
        embargo_vetted="yes",
        media_type="Print",
        **{"attributes.desk": "", "attributes.Phone": "+44 20 7946 0000"},
    )
    assert changes == [
        ("name", "Ann Archer", "Ann Smith"),
        ("beats", "crime; policing", "courts; crime"),
        ("media_type", "", "print"),
        ("embargo_vetted", "no", "yes"),
        ("attributes.desk", "news", ""),
        ("attributes.phone", "", "+44 20 7946 0000"),
    ]
    with newsroom.sessions() as session:
        ann = contact_detail(session, "ann@example.com")
        # Ann's two beats replaced hers; Bob's and Zoë's are untouched.
        assert session.scalar(select(func.count()).select_from(ContactBeat)) == 4
    assert (ann.name, ann.beats, ann.media_type, ann.embargo_vetted) == (
        "Ann Smith",
        ["courts", "crime"],
        "print",
        True,
    )
    assert ann.attributes == {"phone": "+44 20 7946 0000"}
    assert ann.updated_at == NOW + timedelta(hours=1)
    # Untouched fields stay as they were, and a second identical edit changes nothing.
    assert (ann.role, ann.time_zone, ann.lists) == (
        "Crime correspondent",
        "Europe/London",
        ["Crime", "Newsdesks"],
    )
    assert edit(newsroom, "ann@example.com", name="Ann Smith") == []


def test_setting_the_outlet_links_an_existing_one_or_creates_it(newsroom: Runtime) -> None:
    with newsroom.sessions.begin() as session:
        existing = edit_contact(
            session, email="zoe@bücher.example", assignments=[("outlet", "THE  GAZETTE")], now=NOW
        )
        created = edit_contact(
            session, email="ann@example.com", assignments=[("outlet", "Morning Star")], now=NOW
        )
    assert existing.created_outlet is None
    assert [(c.old, c.new) for c in existing.changes] == [("Süddeutsche Zeitung", "THE GAZETTE")]
    assert created.created_outlet == "Morning Star"
    with newsroom.sessions() as session:
        zoe = contact_detail(session, "zoe@bücher.example")
        # Linked to the stored outlet, which keeps the spelling it was first stored with.
        assert zoe.outlet is not None and zoe.outlet.name == "The Gazette"
        assert emails(search_contacts(session, text="morning star")) == ["ann@example.com"]
        assert session.scalar(select(func.count()).select_from(Outlet)) == 5
    assert edit(newsroom, "ann@example.com", outlet="") == [("outlet", "Morning Star", "")]


def test_a_new_address_keeps_the_contacts_lists_and_history(newsroom: Runtime) -> None:
    with newsroom.sessions.begin() as session:
        _deliveries(session, "ann@example.com", 1)
    assert edit(newsroom, "ann@example.com", email="Ann.Archer@Example.COM") == [
        ("email", "ann@example.com", "Ann.Archer@example.com")
    ]
    with newsroom.sessions() as session:
        ann = contact_detail(session, "ann.archer@example.com")
        assert (ann.lists, ann.deliveries_total) == (["Crime", "Newsdesks"], 1)
        with pytest.raises(NotFoundError):
            contact_detail(session, "ann@example.com")
        assert session.scalar(select(func.count()).select_from(Contact)) == 5


def test_a_suppressed_old_address_is_pointed_out_when_the_address_changes(
    newsroom: Runtime,
) -> None:
    with newsroom.sessions.begin() as session:
        result = edit_contact(
            session,
            email="bob@gazette.example.org",
            assignments=[("e-mail", "robert@gazette.example.org")],
            now=NOW,
        )
    (notice,) = result.notices
    assert "bob@gazette.example.org stays on the suppression list" in notice
    assert "suppressions add robert@gazette.example.org" in notice


@pytest.mark.parametrize(
    ("assignments", "message"),
    [
        ([("colour", "red")], "'colour' is not a field of a contact; the fields are email, name"),
        ([("email", "zoe@BÜCHER.example")], "another contact has that address"),
        ([("email", "not an address")], "is not a valid address"),
        ([("name", "Ann"), ("time_zone", "Mars/Olympus")], "not an IANA time zone"),
        ([("name", "Ann"), ("embargo_vetted", "perhaps")], "neither true nor false"),
        ([("name", "A"), ("Name", "B")], "the name is set twice"),
        ([("name", "Ann\u202eLiam")], "the name contains invisible or text-direction"),
        ([("legal_basis", "")], "the legal_basis cannot be emptied"),
        ([("attributes", "{}"), ("attributes.desk", "x")], "not both at once"),
        ([("attributes", "[1]")], "the attributes must be a JSON object"),
    ],
)
def test_a_refused_edit_changes_nothing(
    newsroom: Runtime, assignments: list[tuple[str, str]], message: str
) -> None:
    with newsroom.sessions() as session:
        before = contact_detail(session, "ann@example.com")
    with newsroom.sessions.begin() as session, pytest.raises(DistributorError) as refused:
        edit_contact(session, email="ann@example.com", assignments=assignments, now=NOW)
    assert message in str(refused.value)
    with newsroom.sessions() as session:
        assert contact_detail(session, "ann@example.com") == before


def test_an_address_whose_owner_was_forgotten_cannot_be_given_to_a_contact(
    newsroom: Runtime,
) -> None:
    with newsroom.sessions.begin() as session:
        forget(session, email="zoe@bücher.example", actor=OFFICER, now=NOW)
    with newsroom.sessions.begin() as session, pytest.raises(ContactEditRefusedError) as refused:
        edit_contact(
            session, email="ann@example.com", assignments=[("email", "zoe@bücher.example")], now=NOW
        )
    assert "asked to be forgotten" in str(refused.value)


# --- the command line -----------------------------------------------------------------------


def test_show_on_the_command_line_as_a_table_and_as_json(
    cli: Cli,  # noqa: F811
    tmp_path: Path,
) -> None:
    cli("suppressions", "add", "bob@news.example.org", "--reason", "unsubscribed", "--note", "tel")
    cli("lists", "create", "Crime")
    cli("lists", "add", "Crime", "ann@example.com")
    table = cli("contacts", "show", "ANN@example.com").splitlines()
    assert "name:        Ann Archer" in table
    assert "outlet:      Daily Example (outlet vetted no, embargo breaker no)" in table
    assert "beats:       crime, policing" in table
    assert "lists:       Crime" in table
    assert "suppressed:  no" in table
    assert table[-1] == "deliveries:  none"
    shown = cli.json("contacts", "show", "ann@example.com")
    assert (shown["name"], shown["outlet"]["name"], shown["beats"], shown["lists"]) == (
        "Ann Archer",
        "Daily Example",
        ["crime", "policing"],
        ["Crime"],
    )
    assert (shown["suppression"], shown["deliveries"], shown["deliveries_total"]) == (None, [], 0)
    bob = cli.json("contacts", "show", "bob@news.example.org")
    assert bob["suppression"]["reason"] == "unsubscribed" and bob["suppression"]["note"] == "tel"
    assert "suppressed:  yes, unsubscribed since " in cli(
        "contacts", "show", "bob@news.example.org"
    )
    rt = Runtime(Settings(data_dir=tmp_path / "var"))
    try:
        with rt.sessions.begin() as session:
            _deliveries(session, "bob@news.example.org", 2)
    finally:
        rt.close()
    assert cli("contacts", "show", "bob@news.example.org").splitlines()[-4:] == [
        "deliveries:  last 2 of 2, newest first",
        "  send 2     pending    due 2026-06-16 12:00 UTC  Charity report",
        "  send 1     sent       2026-06-15 12:00 UTC      Charity report",
        "             250 2.0.0 Ok: queued as ABC",
    ]
    deliveries = cli.json("contacts", "show", "bob@news.example.org")["deliveries"]
    assert [(d["send_id"], d["state"], d["smtp_reply"]) for d in deliveries] == [
        (2, "pending", None),
        (1, "sent", "250 2.0.0 Ok: queued as ABC"),
    ]
    assert deliveries[1]["finished_at"] == "2026-06-15T12:00:01+00:00"
    err = cli.fails("contacts", "show", "nobody@example.com")
    assert "no contact with the address nobody@example.com" in err
    cli("contacts", "forget", "ann@example.com", "--yes")
    assert "asked to be forgotten" in cli.fails("contacts", "show", "ann@example.com", "--json")


def test_search_on_the_command_line_pages_and_counts(cli: Cli) -> None:  # noqa: F811
    out = cli("contacts", "search", "--matching", 'country = "GB"', "--limit", "1", "--page", "2")
    assert out.splitlines() == [
        "email                 name       outlet",
        "bob@news.example.org  Bob Baker  The Gazette",
        "page 2 of 2 (2 contact(s))",
    ]
    found = cli.json("contacts", "search", "EXAMPLE", "--limit", "2")
    assert (found["total"], found["page"], found["pages"], found["per_page"]) == (3, 1, 2, 2)
    assert [c["email"] for c in found["contacts"]] == ["ann@example.com", "bob@news.example.org"]
    assert found["contacts"][0] == {
        "email": "ann@example.com",
        "name": "Ann Archer",
        "outlet": "Daily Example",
        "role": "",
        "country": "GB",
        "suppressed": False,
    }
    assert cli("contacts", "search", "nobody") == "no contacts found\n"
    assert "give TEXT" in cli.fails("contacts", "search")
    assert "not both" in cli.fails("contacts", "search", "a", "--page", "2", "--offset", "1")


def test_edit_on_the_command_line_prints_old_and_new(cli: Cli) -> None:  # noqa: F811
    out = cli(
        "contacts",
        "edit",
        "ann@example.com",
        "--set",
        "name=Ann Smith",
        "--set",
        "outlet=Morning Star",
        "--set",
        "attributes.desk=news",
    )
    assert out == (
        "changed ann@example.com:\n"
        "  name: 'Ann Archer' -> 'Ann Smith'\n"
        "  outlet: 'Daily Example' -> 'Morning Star'\n"
        "  attributes.desk: '' -> 'news'\n"
        "created the outlet 'Morning Star'\n"
    )
    assert cli("contacts", "edit", "ann@example.com", "--set", "name=Ann Smith") == (
        "ann@example.com: nothing changed (the values given are those it has)\n"
    )
    err = cli.fails("contacts", "edit", "ann@example.com", "--set", "colour=red")
    assert "'colour' is not a field of a contact" in err and "attributes.NAME" in err
    assert "is not FIELD=VALUE" in cli.fails("contacts", "edit", "ann@example.com", "--set", "x")
    err = cli.fails("contacts", "edit", "ann@example.com", "--set", "email=bob@news.example.org")
    assert "another contact has that address" in err
    assert cli.json("contacts", "show", "ann@example.com")["name"] == "Ann Smith"
