"""DKIM signatures with dkimpy, over the final bytes of each message.

Signing costs an RSA private-key operation per message (milliseconds in pure Python), so it
is optional: set DISTRIBUTOR_DKIM_PRIVATE_KEY_PATH and DISTRIBUTOR_DKIM_SELECTOR, or let
the relay sign. The signature covers the headers a forger would want to change, and the
List-Unsubscribe pair that mailbox providers require to be signed for one-click.
"""

from __future__ import annotations

from pathlib import Path

import dkim

from distributor.errors import ConfigurationError

SIGNED_HEADERS = (
    b"from",
    b"reply-to",
    b"to",
    b"subject",
    b"date",
    b"message-id",
    b"list-id",
    b"list-unsubscribe",
    b"list-unsubscribe-post",
    b"mime-version",
    b"content-type",
)
CANONICALIZATION = (b"relaxed", b"relaxed")


class DkimSigner:
    def __init__(self, *, selector: str, domain: str, private_key: bytes) -> None:
        self._selector = selector.encode("ascii")
        self._domain = domain.encode("ascii")
        self._key = private_key
        self.sign(b"From: check@" + self._domain + b"\r\nTo: x@example.com\r\n\r\nkey check\r\n")

    @classmethod
    def from_file(cls, path: Path, *, selector: str, domain: str) -> DkimSigner:
        try:
            key = path.read_bytes()
        except OSError as exc:
            raise ConfigurationError(
                f"cannot read the DKIM key {path}: {exc.strerror}; check "
                "DISTRIBUTOR_DKIM_PRIVATE_KEY_PATH"
            ) from None
        try:
            return cls(selector=selector, domain=domain, private_key=key)
        except (dkim.DKIMException, ValueError, UnicodeEncodeError) as exc:
            raise ConfigurationError(
                f"the DKIM key {path} cannot sign: {exc}; give an RSA private key in PEM "
                "(openssl genrsa -out dkim.pem 2048)"
            ) from None

    def signature(self, message: bytes) -> bytes:
        """The DKIM-Signature header (CRLF-terminated) for the message's bytes."""
        header: bytes = dkim.sign(
            message,
            self._selector,
            self._domain,
            self._key,
            canonicalize=CANONICALIZATION,
            include_headers=list(SIGNED_HEADERS),
            linesep=b"\r\n",
        )
        return header

    def sign(self, message: bytes) -> bytes:
        return self.signature(message) + message
