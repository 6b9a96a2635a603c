"""Per-delivery envelope senders (VERP), so a bounce names the delivery it is about.

    bounces+<send id>.<delivery id>.<mac>@<bounce domain>

The short MAC (40 bits, lower-case hex: mail systems may fold case) keeps strangers from
making bounces for deliveries of their choosing.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from distributor.mail.headers import ascii_domain
from distributor.mail.signing import derive_key, mac

PREFIX = "bounces"
MAC_BYTES = 5
PATTERN = re.compile(rf"^{PREFIX}\+(\d+)\.(\d+)\.([0-9a-f]{{{MAC_BYTES * 2}}})@(.+)$")


@dataclass(frozen=True, slots=True)
class BounceTarget:
    send_id: int
    delivery_id: int


class VerpAddresses:
    def __init__(self, *, secret: str | bytes, domain: str) -> None:
        self._key = derive_key(secret, "verp")
        self._domain = ascii_domain(domain)

    def _mac(self, send_id: int, delivery_id: int) -> str:
        return mac(self._key, f"{send_id}.{delivery_id}".encode("ascii"), length=MAC_BYTES).hex()

    def address(self, *, send_id: int, delivery_id: int) -> str:
        signature = self._mac(send_id, delivery_id)
        return f"{PREFIX}+{send_id}.{delivery_id}.{signature}@{self._domain}"

    def parse(self, address: str) -> BounceTarget | None:
        """The delivery a bounce address names; None if it is not one of ours or was forged."""
        match = PATTERN.match(address.strip().strip("<>").lower())
        if match is None or match.group(4) != self._domain:
            return None
        send_id, delivery_id = int(match.group(1)), int(match.group(2))
        if match.group(3) != self._mac(send_id, delivery_id):
            return None
        return BounceTarget(send_id=send_id, delivery_id=delivery_id)
