"""Per-delivery envelope senders, so a bounce can be matched to the delivery it is about."""

from __future__ import annotations

import pytest

from distributor.mail.verp import BounceTarget, VerpAddresses

VERP = VerpAddresses(secret="a-secret", domain="bounces.example.org")


def test_the_address_names_send_and_delivery_and_parses_back() -> None:
    address = VERP.address(send_id=12, delivery_id=3456)

    assert address.startswith("bounces+12.3456.")
    assert address.endswith("@bounces.example.org")
    assert VERP.parse(address) == BounceTarget(send_id=12, delivery_id=3456)
    assert VERP.parse(f"<{address.upper()}>") == BounceTarget(send_id=12, delivery_id=3456)


@pytest.mark.parametrize(
    "address",
    [
        "bounces+12.3457.0000000000@bounces.example.org",  # made up
        "press@example.org",
        "bounces+12.3456@bounces.example.org",
        "",
    ],
)
def test_addresses_that_are_not_ours_or_forged_are_not_matched(address: str) -> None:
    assert VERP.parse(address) is None


def test_a_changed_delivery_or_domain_or_key_is_not_matched() -> None:
    address = VERP.address(send_id=12, delivery_id=3456)
    local, _, _ = address.partition("@")
    assert VERP.parse(address.replace("+12.3456.", "+12.3455.")) is None
    assert VERP.parse(f"{local}@other.example.org") is None
    assert VerpAddresses(secret="another", domain="bounces.example.org").parse(address) is None


def test_an_idn_bounce_domain_is_written_in_ascii() -> None:
    verp = VerpAddresses(secret="k", domain="bounces.bücher.example")
    address = verp.address(send_id=1, delivery_id=2)
    assert address.endswith("@bounces.xn--bcher-kva.example")
    assert verp.parse(address) == BounceTarget(send_id=1, delivery_id=2)
