"""Data protection: forgetting a person, showing what is held on them, and stale contacts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import JSON, String, Text, cast, func, inspect, select, update

from distributor.actors import Actor, Role
from distributor.bounces.kinds import BounceKind
from distributor.contacts_import import ParsedContacts, import_contacts
from distributor.gdpr import export_personal_data, forget, months_before, not_mailed_since
from distributor.lists import add_to_list, create_list
from distributor.models import Base, Bounce, Contact, Delivery, DeliveryEvent, ListMembership
from distributor.releases import create_release
from distributor.runtime import Runtime
from distributor.scheduling import schedule_send
from distributor.states import DeliveryState
from distributor.suppression import SuppressionReason, is_suppressed, suppress
from tests.conftest import SAMPLE_DRAFT
from tests.support.media import ALL_COLUMNS, NOW, contact, store

OFFICER = Actor("Pat", Role.PRESS_OFFICER)
ANN = "ann.archer@example.com"


def ann_with_history(rt: Runtime) -> tuple[int, int]:
    """Ann, fully described, on a list, with one sent and one pending delivery."""
    with rt.sessions.begin() as session:
        store(
            session,
            [
                contact(
                    ANN,
                    name="Ann Archer",
                    outlet="Daily Example",
                    role="Crime correspondent",
                    beats="crime",
                    region="North",
                    country="GB",
                    time_zone="Europe/London",
                    source="import of press.csv",
                    attributes={"mobile": "+44 7700 900123"},
                ),
                contact("bob@example.com", name="Bob Baker"),
            ],
        )
        create_list(session, "Crime", now=NOW)
        add_to_list(session, "Crime", [ANN, "bob@example.com"])
        release_id = create_release(session, SAMPLE_DRAFT, now=NOW).id
        sends = [
            schedule_send(
                session,
                release_id=release_id,
                list_names=["Crime"],
                embargo_at=NOW + timedelta(hours=hours),
                embargo_zone="UTC",
                now=NOW,
                batch_size=10,
                again=True,  # two sends of one release, on purpose
            ).send_id
            for hours in (1, 2)
        ]
        ann_id = session.scalar(select(Contact.id).where(Contact.email_key == ANN))
        session.execute(
            update(Delivery)
            .where(Delivery.send_id == sends[0], Delivery.contact_id == ann_id)
            .values(
                state=DeliveryState.SENT,
                finished_at=NOW + timedelta(hours=1),
                smtp_reply=f"250 2.0.0 Ok: queued for <{ANN.upper()}>",
            )
        )
    return sends[0], sends[1]


def text_columns_holding(rt: Runtime, needle: str) -> list[str]:
    """Every table.column in the database whose text contains `needle`, any letter case."""
    found = []
    with rt.sessions() as session:
        for table in Base.metadata.sorted_tables:
            if not inspect(session.connection()).has_table(table.name):
                continue
            for column in table.columns:
                if not isinstance(column.type, String | Text | JSON):
                    continue
                as_text = cast(column, Text) if isinstance(column.type, JSON) else column
                hits = session.scalar(
                    select(func.count())
                    .select_from(table)
                    .where(func.lower(as_text).contains(needle.lower(), autoescape=True))
                )
                if hits:
                    found.append(f"{table.name}.{column.name}")
    return found


def test_forgetting_erases_every_trace_but_keeps_the_address_suppressed(runtime: Runtime) -> None:
    # Given Ann with a sent release, a pending one, and her details everywhere
    sent, pending = ann_with_history(runtime)
    assert text_columns_holding(runtime, ANN)
    # When she asks to be forgotten
    with runtime.sessions.begin() as session:
        report = forget(session, email="ANN.Archer@Example.com", actor=OFFICER, now=NOW)
    assert (report.had_contact, report.deliveries_stopped) == (True, 1)
    # Then neither her address nor her name nor her phone is anywhere in the database
    assert text_columns_holding(runtime, ANN) == []
    assert text_columns_holding(runtime, "Ann Archer") == []
    assert text_columns_holding(runtime, "7700 900123") == []
    with runtime.sessions() as session:
        # ...her pending delivery will not go, and says why
        states = dict(
            session.execute(
                select(Delivery.send_id, Delivery.state)
                .join(Contact, Contact.id == Delivery.contact_id)
                .where(Contact.forgotten_at.is_not(None))
            ).all()
        )
        assert states == {sent: DeliveryState.SENT, pending: DeliveryState.SUPPRESSED}
        assert "asked to be forgotten" in (
            session.scalar(
                select(DeliveryEvent.detail).where(DeliveryEvent.state == DeliveryState.SUPPRESSED)
            )
            or ""
        )
        assert session.scalar(select(func.count()).select_from(ListMembership)) == 1
        # ...and her address is still suppressed, by its hash alone
        assert is_suppressed(session, ANN)
        data = export_personal_data(session, email=ANN)
    assert data["contact"] is None
    assert data["suppression"]["address_kept"] is False
    assert data["suppression"]["reason"] == "do_not_contact"


def test_a_forgotten_address_is_never_imported_again(runtime: Runtime) -> None:
    with runtime.sessions.begin() as session:
        forget(session, email=ANN, actor=OFFICER, now=NOW)
    with runtime.sessions.begin() as session:
        report = import_contacts(
            session,
            ParsedContacts(
                rows=[contact(ANN.upper(), name="Ann"), contact("bob@example.com", line=3)],
                columns=ALL_COLUMNS,
            ),
            now=NOW,
        )
        # Suppressing her again changes nothing: she is on the list already.
        again = suppress(
            session, email=ANN, reason=SuppressionReason.UNSUBSCRIBED, source="x", now=NOW
        )
    assert (report.created, report.updated, again) == (1, 0, False)
    assert report.forgotten == [
        "line 2: not imported: the owner of this address asked to be forgotten"
    ]
    with runtime.sessions() as session:
        emails = session.scalars(select(Contact.email).where(Contact.forgotten_at.is_(None)))
        assert list(emails) == ["bob@example.com"]


def test_everything_held_about_a_person_comes_out_as_plain_data(runtime: Runtime) -> None:
    sent, _ = ann_with_history(runtime)
    with runtime.sessions() as session:
        data = export_personal_data(session, email="ann.archer@EXAMPLE.com")
    person = data["contact"]
    assert person["email"] == ANN
    assert person["name"] == "Ann Archer"
    assert person["outlet"] == "Daily Example"
    assert person["beats"] == ["crime"]
    assert person["attributes"] == {"mobile": "+44 7700 900123"}
    assert person["source"] == "import of press.csv"
    assert person["legal_basis"] == "legitimate_interest"
    assert data["lists"] == ["Crime"]
    assert data["suppression"] is None
    first = data["deliveries"][0]
    assert (first["send_id"], first["state"], first["headline"]) == (
        sent,
        "sent",
        SAMPLE_DRAFT.headline,
    )


def test_contacts_not_mailed_for_months_are_listed_oldest_first(runtime: Runtime) -> None:
    now = datetime(2027, 3, 31, 12, 0, tzinfo=UTC)
    with runtime.sessions.begin() as session:
        store(session, [contact("old@example.com")], now=now - timedelta(days=800))
        store(session, [contact("recent@example.com")], now=now - timedelta(days=700))
        store(session, [contact("new@example.com")], now=now - timedelta(days=10))
        store(session, [contact("never@example.com")], now=now - timedelta(days=400))
        create_list(session, "All", now=now)
        add_to_list(session, "All", ["old@example.com", "recent@example.com"])
        release_id = create_release(session, SAMPLE_DRAFT, now=now).id
        send_id = schedule_send(
            session,
            release_id=release_id,
            list_names=["All"],
            embargo_at=now + timedelta(hours=1),
            embargo_zone="UTC",
            now=now,
            batch_size=10,
        ).send_id
        for email, days_ago in (("old@example.com", 500), ("recent@example.com", 20)):
            contact_id = session.scalar(select(Contact.id).where(Contact.email_key == email))
            session.execute(
                update(Delivery)
                .where(Delivery.send_id == send_id, Delivery.contact_id == contact_id)
                .values(state=DeliveryState.SENT, finished_at=now - timedelta(days=days_ago))
            )
    with runtime.sessions() as session:
        stale = list(not_mailed_since(session, months=12, now=now))
    assert [(s.email, s.last_mailed_at) for s in stale] == [
        ("never@example.com", None),
        ("old@example.com", now - timedelta(days=500)),
    ]


@pytest.mark.parametrize(
    ("moment", "months", "expected"),
    [
        (datetime(2027, 3, 31, 9, tzinfo=UTC), 1, datetime(2027, 2, 28, 9, tzinfo=UTC)),
        (datetime(2028, 3, 31, 9, tzinfo=UTC), 1, datetime(2028, 2, 29, 9, tzinfo=UTC)),
        (datetime(2027, 1, 15, 9, tzinfo=UTC), 13, datetime(2025, 12, 15, 9, tzinfo=UTC)),
        (datetime(2027, 1, 15, 9, tzinfo=UTC), 0, datetime(2027, 1, 15, 9, tzinfo=UTC)),
    ],
)
def test_months_before_counts_calendar_months(
    moment: datetime, months: int, expected: datetime
) -> None:
    assert months_before(moment, months) == expected


def test_what_came_back_about_a_person_is_exported_and_then_erased(runtime: Runtime) -> None:
    sent, _ = ann_with_history(runtime)
    with runtime.sessions.begin() as session:
        ann_delivery = session.scalar(
            select(Delivery.id)
            .join(Contact, Contact.id == Delivery.contact_id)
            .where(Delivery.send_id == sent, Contact.email_key == ANN)
        )
        session.add_all(
            [
                # An out-of-office reply matched to her delivery keeps its From header...
                Bounce(
                    received_at=NOW,
                    fingerprint="reply",
                    kind=BounceKind.AUTO_REPLY,
                    send_id=sent,
                    delivery_id=ann_delivery,
                    outcome="an automatic reply: not a bounce",
                    headers=f"From: Ann Archer <{ANN}>",
                    size=900,
                    source="file reply.eml",
                ),
                # ...and one that could not be matched names her address.
                Bounce(
                    received_at=NOW,
                    fingerprint="unmatched",
                    kind=BounceKind.HARD,
                    outcome="kept for an admin: no return address of ours",
                    recipient=ANN.upper(),
                    size=1200,
                    source="file bounce.eml",
                ),
            ]
        )
    with runtime.sessions() as session:
        exported = export_personal_data(session, email=ANN)["bounces"]
    assert [b["kind"] for b in exported] == ["auto_reply", "hard"]
    assert exported[0]["headers"] == f"From: Ann Archer <{ANN}>"

    with runtime.sessions.begin() as session:
        forget(session, email=ANN, actor=OFFICER, now=NOW)
    assert text_columns_holding(runtime, ANN) == []
    assert text_columns_holding(runtime, "Ann Archer") == []
    with runtime.sessions() as session:
        kept = session.scalars(select(Bounce).order_by(Bounce.id)).all()
        # What came back is still counted; who it was about is gone.
        assert [(b.kind, b.recipient, b.headers) for b in kept] == [
            (BounceKind.AUTO_REPLY, None, None),
            (BounceKind.HARD, None, None),
        ]
