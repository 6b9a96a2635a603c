"""Passwords: hashed with Argon2id, checked in constant time, never stored or logged."""

from __future__ import annotations

from functools import cache

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from distributor.errors import DistributorError

# Long enough that guessing online, under the login throttle, is hopeless; the upper bound
# keeps one login attempt from costing the server more than hashing a sentence.
MIN_PASSWORD_LENGTH = 12
MAX_PASSWORD_LENGTH = 1024

_hasher = PasswordHasher()


@cache
def _no_account_hash() -> str:
    """Checked against when no account has the address typed, so that a wrong address takes
    as long to refuse as a wrong password and the response time does not tell which it was.
    Made on first use: every command imports this module, few log anyone in."""
    return _hasher.hash("no account has this address")


class WeakPasswordError(DistributorError):
    """A new password that is too short, too long or empty."""


def check_new_password(password: str) -> None:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise WeakPasswordError(
            f"the password has {len(password)} character(s); give at least "
            f"{MIN_PASSWORD_LENGTH} (a few unrelated words make a good one)"
        )
    if len(password) > MAX_PASSWORD_LENGTH:
        raise WeakPasswordError(
            f"the password is longer than {MAX_PASSWORD_LENGTH} characters; give a shorter one"
        )


def hash_password(password: str) -> str:
    check_new_password(password)
    return _hasher.hash(password)


def password_matches(stored_hash: str | None, password: str) -> bool:
    """Whether `password` is the one hashed; None (no such account) costs the same and fails."""
    if len(password) > MAX_PASSWORD_LENGTH:
        return False
    try:
        return _hasher.verify(stored_hash or _no_account_hash(), password) and (
            stored_hash is not None
        )
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def needs_rehash(stored_hash: str) -> bool:
    """True when the hash was made with weaker parameters than today's."""
    try:
        return _hasher.check_needs_rehash(stored_hash)
    except InvalidHashError:
        return True
