"""The suppression list: the interface one-click unsubscribe calls, and who may lift an entry."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from distributor.actors import Actor, Role
from distributor.contacts.addresses import address_hash
from distributor.errors import DistributorError, PermissionDeniedError
from distributor.hash_key import installation_secret
from distributor.models import AddressHashKey, Suppression
from distributor.runtime import Runtime
from distributor.suppression import (
    SuppressionReason,
    is_suppressed,
    lift_suppression,
    list_suppressions,
    suppress,
)
from tests.support.media import NOW

ADMIN = Actor("Sam", Role.ADMIN)
OFFICER = Actor("Pat", Role.PRESS_OFFICER)


def test_the_reasons_are_the_agreed_values() -> None:
    assert [r.value for r in SuppressionReason] == [
        "unsubscribed",
        "hard_bounced",
        "complained",
        "do_not_contact",
    ]


def test_suppressing_is_idempotent_and_matches_every_spelling(runtime: Runtime) -> None:
    with runtime.sessions.begin() as session:
        first = suppress(
            session,
            email=" Zoë@Bücher.example ",
            reason=SuppressionReason.UNSUBSCRIBED,
            source="one-click unsubscribe",
            now=NOW,
        )
    with runtime.sessions.begin() as session:
        again = suppress(
            session,
            email="zoë@xn--bcher-kva.example",
            reason=SuppressionReason.COMPLAINED,
            source="feedback loop",
            now=NOW + timedelta(days=1),
        )
    assert (first, again) == (True, False)
    with runtime.sessions() as session:
        assert is_suppressed(session, "ZOË@BÜCHER.EXAMPLE")
        assert not is_suppressed(session, "zoe@bücher.example")
        (entry,) = list_suppressions(session)
    # The first entry stays as it was made.
    assert (entry.email, entry.reason, entry.source, entry.created_at) == (
        "zoë@bücher.example",
        SuppressionReason.UNSUBSCRIBED,
        "one-click unsubscribe",
        NOW,
    )


def test_an_address_that_is_not_valid_can_still_be_suppressed(runtime: Runtime) -> None:
    # A bounce may name a mailbox email-validator refuses; it must still never be mailed.
    with runtime.sessions.begin() as session:
        assert suppress(
            session,
            email="Broken..Address@example.com",
            reason=SuppressionReason.HARD_BOUNCED,
            source="bounce",
            now=NOW,
        )
        assert is_suppressed(session, "broken..address@EXAMPLE.com")


def test_a_suppression_needs_an_address_and_a_source(runtime: Runtime) -> None:
    with runtime.sessions.begin() as session:
        with pytest.raises(DistributorError, match="needs a source"):
            suppress(
                session,
                email="a@example.com",
                reason=SuppressionReason.DO_NOT_CONTACT,
                source="  ",
                now=NOW,
            )
        with pytest.raises(DistributorError, match="needs an address"):
            suppress(
                session, email=" ", reason=SuppressionReason.DO_NOT_CONTACT, source="x", now=NOW
            )


def test_anyone_may_add_but_only_an_admin_may_remove(runtime: Runtime) -> None:
    with runtime.sessions.begin() as session:
        suppress(
            session,
            email="ann@example.com",
            reason=SuppressionReason.DO_NOT_CONTACT,
            source=f"added by {OFFICER.label}",
            now=NOW,
        )
    with runtime.sessions.begin() as session:
        with pytest.raises(PermissionDeniedError, match="only an admin may remove") as refused:
            lift_suppression(session, email="ann@example.com", actor=OFFICER)
        assert "--role admin" in str(refused.value)
    with runtime.sessions.begin() as session:
        assert is_suppressed(session, "ann@example.com")
        assert lift_suppression(session, email="ANN@example.com", actor=ADMIN) is True
        assert lift_suppression(session, email="ann@example.com", actor=ADMIN) is False
        assert not is_suppressed(session, "ann@example.com")


def test_entries_are_keyed_by_a_hash_made_with_the_installation_key(runtime: Runtime) -> None:
    with runtime.sessions.begin() as session:
        suppress(
            session,
            email="Ann@Example.com",
            reason=SuppressionReason.UNSUBSCRIBED,
            source="x",
            now=NOW,
        )
    with runtime.sessions() as session:
        (stored,) = session.scalars(select(Suppression.address_hash))
        (key_hex,) = session.scalars(select(AddressHashKey.key_hex))
        assert installation_secret(session) == bytes.fromhex(key_hex)
    assert len(key_hex) == 64
    assert stored == address_hash("ann@example.com", secret=bytes.fromhex(key_hex))
    # A bare hash of the address would be open to a dictionary of known addresses.
    assert stored != address_hash("ann@example.com", secret=b"")


def test_the_list_can_be_filtered_by_reason(runtime: Runtime) -> None:
    with runtime.sessions.begin() as session:
        for index, reason in enumerate(SuppressionReason):
            suppress(
                session,
                email=f"person{index}@example.com",
                reason=reason,
                source="x",
                now=NOW + timedelta(minutes=index),
            )
    with runtime.sessions() as session:
        everyone = list_suppressions(session)
        bounced = list_suppressions(session, reason=SuppressionReason.HARD_BOUNCED)
    assert [e.email for e in everyone] == [f"person{i}@example.com" for i in (3, 2, 1, 0)]
    assert [e.email for e in bounced] == ["person1@example.com"]
