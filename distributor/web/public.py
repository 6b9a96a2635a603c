"""Pages for anyone, without a login: the one-click unsubscribe.

`POST /u/{token}` is the RFC 8058 one-click unsubscribe that a message's List-Unsubscribe
header points at: a mail provider posts `List-Unsubscribe=One-Click` to it, with no cookie
and no form of ours. `GET /u/{token}` only shows a page with the button, because mail
scanners and link previews follow links. The same routes answer under /unsubscribe/, the
path the links in messages sent so far carry (distributor.mail.unsubscribe.URL_PATH).
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import PlainTextResponse, Response

from distributor.actors import Actor, Role
from distributor.mail.unsubscribe import URL_PATH, InvalidTokenError, UnsubscribeTokens, token_from
from distributor.unsubscribes import (
    TEST_COPY_SEND_ID,
    UnsubscribeOutcome,
    handle_unsubscribe,
    test_copy_tokens,
)
from distributor.web.database import open_session, runtime_of
from distributor.web.pages import pages_of

router = APIRouter(include_in_schema=False)

# The journalist's own act: the audit trail names the link, not a member of staff.
ONE_CLICK_ACTOR = Actor(name="one-click unsubscribe link", role=Role.SYSTEM)
# A token names one address: far shorter than this. Longer input is refused unread.
MAX_TOKEN_CHARS = 2048
UNSUBSCRIBE_PATHS = ("/u/{token}", URL_PATH + "{token}")
NOT_VALID = (
    "This unsubscribe link is not valid: it may have been cut short or changed on its way. "
    "Open the link from the email again, copying all of it, or reply to the email and ask "
    "to be taken off the list."
)


def _checked(token: str, key: str) -> tuple[str, bool] | None:
    """The address a token names and whether it comes from a test copy; None if forged.

    Only reads the token (the database is not touched), as the page before the button must.
    """
    if len(token) > MAX_TOKEN_CHARS:
        return None
    text = token_from(token)
    try:
        request = UnsubscribeTokens(key).verify(text)
        return request.email, request.send_id == TEST_COPY_SEND_ID
    except InvalidTokenError:
        pass
    try:
        return test_copy_tokens(key).verify(text).email, True
    except InvalidTokenError:
        return None


def _wants_page(request: Request) -> bool:
    return "text/html" in request.headers.get("accept", "")


def confirm_page(request: Request, token: str) -> Response:
    """The page a link opens: the address, and a button that unsubscribes it."""
    pages = pages_of(request)
    checked = _checked(token, runtime_of(request).settings.secret_key)
    if checked is None:
        return pages.render(
            request,
            "unsubscribe_invalid.html.j2",
            {"message": NOT_VALID},
            status_code=400,
            with_forms=False,
        )
    email, test_copy = checked
    return pages.render(
        request,
        "unsubscribe.html.j2",
        {"email": email, "test_copy": test_copy},
        with_forms=False,
    )


def one_click(request: Request, token: str) -> Response:
    """Unsubscribe the address, once however often it is posted (RFC 8058).

    No CSRF token: the link's own token is the proof. It is unguessable, names one address,
    and whoever holds it could post it anyway; a forged request could only unsubscribe the
    address of the link it forged from.
    """
    runtime = runtime_of(request)
    if len(token) > MAX_TOKEN_CHARS:
        return _answer(request, None, status=400)
    try:
        with open_session(runtime, ONE_CLICK_ACTOR) as session, session.begin():
            outcome = handle_unsubscribe(
                session, token=token, key=runtime.settings.secret_key, now=runtime.clock.now()
            )
    except InvalidTokenError:
        return _answer(request, None, status=400)
    return _answer(request, outcome, status=200)


def _answer(request: Request, outcome: UnsubscribeOutcome | None, *, status: int) -> Response:
    if _wants_page(request):
        if outcome is None:
            return pages_of(request).render(
                request,
                "unsubscribe_invalid.html.j2",
                {"message": NOT_VALID},
                status_code=status,
                with_forms=False,
            )
        return pages_of(request).render(
            request, "unsubscribed.html.j2", {"outcome": outcome}, with_forms=False
        )
    if outcome is None:
        return PlainTextResponse(NOT_VALID + "\n", status_code=status)
    if outcome.test_copy:
        text = "This link comes from a test copy of a release: nobody was unsubscribed."
    else:
        text = "Unsubscribed: no more releases will be sent to this address."
    return PlainTextResponse(text + "\n", status_code=status)


for _path in UNSUBSCRIBE_PATHS:
    router.add_api_route(_path, confirm_page, methods=["GET"])
    router.add_api_route(_path, one_click, methods=["POST"])
