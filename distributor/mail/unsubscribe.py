"""One-click unsubscribe: signed tokens that name the address, checked without a database.

A token carries the address, the send it came with and when it was issued, and an HMAC of
those under a key derived from DISTRIBUTOR_SECRET_KEY. It is written in hexadecimal, so it
survives in a URL path and in the local part of an address whose case a mail system may
fold. Changing one character makes it invalid.

    https://press.example.org/unsubscribe/<token>       (POST List-Unsubscribe=One-Click)
    mailto:unsubscribe+<token>@example.org
"""

from __future__ import annotations

import hmac
import struct
from dataclasses import dataclass
from datetime import UTC, datetime

from distributor.errors import DistributorError
from distributor.mail.headers import ascii_domain
from distributor.mail.signing import derive_key, mac

VERSION = 1
HEADER = struct.Struct(">BII")  # version, send id, issued (Unix seconds)
MAC_BYTES = 12
URL_PATH = "/unsubscribe/"
MAILTO_PREFIX = "unsubscribe+"


class InvalidTokenError(DistributorError):
    """An unsubscribe token that was changed, cut short, or never issued here."""


@dataclass(frozen=True, slots=True)
class UnsubscribeRequest:
    email: str
    send_id: int
    issued_at: datetime


class UnsubscribeTokens:
    def __init__(self, secret: str | bytes) -> None:
        self._key = derive_key(secret, "unsubscribe")

    def issue(self, *, email: str, send_id: int, issued_at: int) -> str:
        payload = HEADER.pack(VERSION, send_id, issued_at) + email.encode("utf-8")
        return (payload + mac(self._key, payload, length=MAC_BYTES)).hex()

    def verify(self, token: str) -> UnsubscribeRequest:
        try:
            raw = bytes.fromhex(token.strip())
        except ValueError:
            raise InvalidTokenError(self._refusal("it is not a token")) from None
        payload, signature = raw[:-MAC_BYTES], raw[-MAC_BYTES:]
        if len(payload) <= HEADER.size or not hmac.compare_digest(
            signature, mac(self._key, payload, length=MAC_BYTES)
        ):
            raise InvalidTokenError(self._refusal("its signature does not match"))
        version, send_id, issued = HEADER.unpack_from(payload)
        if version != VERSION:
            raise InvalidTokenError(self._refusal(f"version {version} is unknown"))
        try:
            email = payload[HEADER.size :].decode("utf-8")
        except UnicodeDecodeError:
            raise InvalidTokenError(self._refusal("its address is unreadable")) from None
        return UnsubscribeRequest(
            email=email, send_id=send_id, issued_at=datetime.fromtimestamp(issued, UTC)
        )

    @staticmethod
    def _refusal(reason: str) -> str:
        return (
            f"this unsubscribe link is not valid ({reason}): it was changed, cut short, or "
            "made with another secret key; ask the person to forward the whole email"
        )


def token_from(text: str) -> str:
    """The token in a link, a mailto address or on its own."""
    text = text.strip().removeprefix("mailto:")
    if URL_PATH in text:
        text = text.rsplit(URL_PATH, 1)[1]
    if text.lower().startswith(MAILTO_PREFIX):
        text = text[len(MAILTO_PREFIX) :].split("@", 1)[0]
    return text.split("?", 1)[0].split("#", 1)[0].strip("/")


@dataclass(frozen=True, slots=True)
class UnsubscribeLinks:
    """Where a recipient's unsubscribe token is sent: a web address and a mailbox."""

    tokens: UnsubscribeTokens
    # https://host[/prefix] of the web app; None when there is none (then mailto only).
    base_url: str | None
    mailto_domain: str

    def https(self, token: str) -> str | None:
        return f"{self.base_url}{URL_PATH}{token}" if self.base_url else None

    def mailto(self, token: str) -> str:
        return (
            f"mailto:{MAILTO_PREFIX}{token}@{ascii_domain(self.mailto_domain)}?subject=unsubscribe"
        )
