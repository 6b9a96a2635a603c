"""Keys for each purpose, derived from the one secret key, so a token of one kind can never
pass as another."""

from __future__ import annotations

import hashlib
import hmac


def derive_key(secret: str | bytes, purpose: str) -> bytes:
    raw = secret.encode("utf-8") if isinstance(secret, str) else secret
    return hmac.digest(raw, b"distributor/" + purpose.encode("ascii"), hashlib.sha256)


def mac(key: bytes, message: bytes, *, length: int) -> bytes:
    return hmac.digest(key, message, hashlib.sha256)[:length]
