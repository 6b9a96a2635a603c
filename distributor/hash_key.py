"""The installation's key for address hashes, read from the database (and made on first use)."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from distributor.models import AddressHashKey

_KEY_ROW = 1
_SESSION_INFO_KEY = "distributor.address_hash_secret"


def installation_secret(session: Session) -> bytes:
    """The secret every address hash is made with; the same in every process, forever.

    Migration 0002 creates it; a database built without migrations gets one on first use,
    and two processes racing to make it agree on the first one written.
    """
    cached = session.info.get(_SESSION_INFO_KEY)
    if isinstance(cached, bytes):
        return cached
    key_hex = session.scalar(select(AddressHashKey.key_hex).where(AddressHashKey.id == _KEY_ROW))
    if key_hex is None:
        values = {
            "id": _KEY_ROW,
            "key_hex": secrets.token_hex(32),
            "created_at": datetime.now(UTC),
        }
        if session.get_bind().dialect.name == "postgresql":
            session.execute(
                postgresql.insert(AddressHashKey).values(values).on_conflict_do_nothing()
            )
        else:
            session.execute(sqlite.insert(AddressHashKey).values(values).on_conflict_do_nothing())
        key_hex = session.scalar(
            select(AddressHashKey.key_hex).where(AddressHashKey.id == _KEY_ROW)
        )
    assert key_hex is not None
    secret = bytes.fromhex(key_hex)
    session.info[_SESSION_INFO_KEY] = secret
    return secret
