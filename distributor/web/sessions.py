"""Browser sessions: a cookie signed with a key derived from the secret key, holding who is
logged in, since when, the CSRF token of their forms, and a message for the next page.

The cookie is HttpOnly and SameSite=Lax always, and Secure (with the __Host- prefix, which
browsers accept only from https, for the whole site and no other domain) when the app is
served over https. Nothing secret is in it: it is signed, not encrypted.
"""

from __future__ import annotations

import hmac
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi import FastAPI
from starlette.middleware.sessions import SessionMiddleware
from starlette.requests import HTTPConnection

from distributor.mail.signing import derive_key
from distributor.settings import Environment, Settings

# How long a login lasts, from the moment of logging in (not extended by activity): a
# working day, so that a forgotten browser on a shared computer does not stay logged in.
SESSION_LIFETIME = timedelta(hours=12)
COOKIE_NAME = "distributor_session"
SECURE_COOKIE_NAME = "__Host-" + COOKIE_NAME
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "X-CSRF-Token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})

# The login instant is kept in whole microseconds, exactly as the database keeps the
# instant a logout ends the sessions before it.
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MICROSECOND = timedelta(microseconds=1)

_USER = "uid"
_SINCE = "since"
_CSRF = "csrf"
_FLASH = "flash"


def served_over_https(settings: Settings) -> bool:
    """Whether browsers reach the app over https: said by the public base URL, and assumed
    in production, which refuses a public base URL that is not https."""
    base = settings.effective_public_base_url or ""
    return base.startswith("https://") or settings.environment is Environment.PRODUCTION


def session_middleware_options(settings: Settings) -> dict[str, Any]:
    https = served_over_https(settings)
    return {
        "secret_key": derive_key(settings.secret_key, "web-session").hex(),
        "session_cookie": SECURE_COOKIE_NAME if https else COOKIE_NAME,
        "max_age": int(SESSION_LIFETIME.total_seconds()),
        "same_site": "lax",
        "https_only": https,
    }


def add_session_middleware(app: FastAPI, settings: Settings) -> None:
    app.add_middleware(SessionMiddleware, **session_middleware_options(settings))


def csrf_token(connection: HTTPConnection) -> str:
    """The session's CSRF token, made on first use; every form carries it."""
    session = connection.session
    token = session.get(_CSRF)
    if not isinstance(token, str) or not token:
        token = secrets.token_urlsafe(32)
        session[_CSRF] = token
    return token


def csrf_matches(connection: HTTPConnection, presented: str) -> bool:
    expected = connection.session.get(_CSRF)
    return (
        isinstance(expected, str)
        and bool(expected)
        and hmac.compare_digest(expected.encode(), presented.encode())
    )


@dataclass(frozen=True, slots=True)
class Login:
    user_id: int
    since: datetime


def start_login(connection: HTTPConnection, *, user_id: int, now: datetime) -> None:
    """A new session for the person who just logged in: nothing of the anonymous one (its
    CSRF token included) is carried over."""
    connection.session.clear()
    connection.session.update(
        {
            _USER: user_id,
            _SINCE: (now - EPOCH) // MICROSECOND,
            _CSRF: secrets.token_urlsafe(32),
        }
    )


def end_login(connection: HTTPConnection) -> None:
    connection.session.clear()


def current_login(connection: HTTPConnection, *, now: datetime) -> Login | None:
    """Who this browser logged in as, and when, while the login lasts."""
    session = connection.session
    user_id, since_us = session.get(_USER), session.get(_SINCE)
    if not isinstance(user_id, int) or not isinstance(since_us, int):
        return None
    since = EPOCH + since_us * MICROSECOND
    if now - since > SESSION_LIFETIME:
        return None
    return Login(user_id=user_id, since=since)


def flash(connection: HTTPConnection, message: str) -> None:
    """A message for the next page this browser shows (after a redirect)."""
    connection.session[_FLASH] = message


def take_flash(connection: HTTPConnection) -> str | None:
    message = connection.session.pop(_FLASH, None)
    return message if isinstance(message, str) else None
