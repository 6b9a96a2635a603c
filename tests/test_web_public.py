"""The journalists' public pages: one-click unsubscribe (RFC 8058) and the health check."""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from distributor.mail.unsubscribe import UnsubscribeTokens, token_from
from distributor.models import AuditEntry, Suppression
from distributor.runtime import Runtime
from distributor.suppression import is_suppressed
from distributor.unsubscribes import TEST_COPY_SEND_ID
from tests.support.web import (
    client_fixture,  # noqa: F401 - fixture
    web_runtime_fixture,  # noqa: F401 - fixture
)

JOURNALIST = "jo.bloggs@news.example.com"
ISSUED = int(datetime(2031, 3, 4, 8, 0, tzinfo=UTC).timestamp())


def real_token(runtime: Runtime, email: str = JOURNALIST, send_id: int = 7) -> str:
    return runtime.unsubscribe_links.tokens.issue(email=email, send_id=send_id, issued_at=ISSUED)


def copy_token(runtime: Runtime, email: str = JOURNALIST) -> str:
    return runtime.test_copy_unsubscribe_links.tokens.issue(
        email=email, send_id=TEST_COPY_SEND_ID, issued_at=ISSUED
    )


def suppressed(runtime: Runtime, email: str = JOURNALIST) -> bool:
    with runtime.sessions() as session:
        return is_suppressed(session, email)


def suppression_count(runtime: Runtime) -> int:
    with runtime.sessions() as session:
        return len(session.scalars(select(Suppression)).all())


def one_click(client: TestClient, path: str) -> Any:
    """What a mail provider sends for the List-Unsubscribe-Post header: no cookie, no page."""
    return client.post(
        path,
        content="List-Unsubscribe=One-Click",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )


def test_opening_the_link_shows_a_button_and_unsubscribes_nobody(
    client: TestClient, web_runtime: Runtime
) -> None:
    token = real_token(web_runtime)
    for _ in range(3):  # a scanner, a link preview, the journalist
        page = client.get(f"/u/{token}", headers={"Accept": "text/html"})
        assert page.status_code == 200
        assert JOURNALIST in page.text
        assert re.search(r'<form method="post"[^>]*>\s*<button type="submit"', page.text)
    assert not suppressed(web_runtime)
    assert suppression_count(web_runtime) == 0


def test_the_button_unsubscribes_once_however_often_it_is_pressed(
    client: TestClient, web_runtime: Runtime
) -> None:
    token = real_token(web_runtime)
    first = client.post(f"/u/{token}", headers={"Accept": "text/html"})
    assert first.status_code == 200
    assert f"{JOURNALIST} will receive no more press releases" in first.text
    again = client.post(f"/u/{token}", headers={"Accept": "text/html"})
    assert again.status_code == 200
    assert "was already unsubscribed; nothing changed" in again.text

    assert suppressed(web_runtime) and suppression_count(web_runtime) == 1
    with web_runtime.sessions() as session:
        (entry,) = session.scalars(select(AuditEntry)).all()
    assert entry.action == "contact.unsubscribed"
    assert (entry.actor, entry.actor_role) == ("one-click unsubscribe link", "system")
    assert JOURNALIST not in str(entry.after) and JOURNALIST not in entry.target


def test_a_mail_providers_one_click_post_is_answered_briefly_with_200(
    client: TestClient, web_runtime: Runtime
) -> None:
    token = real_token(web_runtime)
    started = time.perf_counter()
    response = one_click(client, f"/u/{token}")
    elapsed = time.perf_counter() - started
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    assert len(response.content) < 200
    assert suppressed(web_runtime)
    assert one_click(client, f"/u/{token}").status_code == 200
    assert suppression_count(web_runtime) == 1
    # Generous for a loaded test machine; it takes a few milliseconds.
    assert elapsed < 5


def test_the_link_in_a_sent_message_works_as_it_was_written(
    client: TestClient, web_runtime: Runtime
) -> None:
    token = real_token(web_runtime)
    link = web_runtime.unsubscribe_links.https(token)
    assert link is not None and token_from(link) == token
    path = link.removeprefix(web_runtime.settings.effective_public_base_url or "")
    assert path.startswith("/unsubscribe/")
    assert client.get(path).status_code == 200 and not suppressed(web_runtime)
    assert one_click(client, path).status_code == 200
    assert suppressed(web_runtime)


@pytest.mark.parametrize(
    "forge",
    [
        lambda token: token[:-2] + ("00" if token[-2:] != "00" else "11"),  # signature changed
        lambda token: token[:20],  # cut short
        lambda token: "not-a-token",
        lambda token: token.replace(b"jo.bloggs".hex(), b"al.bloggs".hex()),  # address swapped
        lambda token: "ab" * 3000,  # far too long
    ],
)
def test_a_forged_or_broken_link_is_refused_and_changes_nothing(
    client: TestClient, web_runtime: Runtime, forge: Callable[[str], str]
) -> None:
    forged = forge(real_token(web_runtime))
    page = client.get(f"/u/{forged}", headers={"Accept": "text/html"})
    assert page.status_code == 400
    assert "This unsubscribe link is not valid" in page.text
    assert "<form" not in page.text
    button = client.post(f"/u/{forged}", headers={"Accept": "text/html"})
    assert button.status_code == 400 and "not valid" in button.text
    assert one_click(client, f"/u/{forged}").status_code == 400
    assert suppression_count(web_runtime) == 0


def test_a_token_signed_with_another_key_is_refused(
    client: TestClient, web_runtime: Runtime
) -> None:
    other = UnsubscribeTokens("another-installation's-key").issue(
        email=JOURNALIST, send_id=7, issued_at=ISSUED
    )
    assert client.get(f"/u/{other}").status_code == 400
    assert one_click(client, f"/u/{other}").status_code == 400
    assert suppression_count(web_runtime) == 0


@pytest.mark.parametrize("kind", ["test-copy key", "test-copy send id"])
def test_a_test_copys_link_says_so_and_unsubscribes_nobody(
    client: TestClient, web_runtime: Runtime, kind: str
) -> None:
    token = (
        copy_token(web_runtime)
        if kind == "test-copy key"
        else real_token(web_runtime, send_id=TEST_COPY_SEND_ID)
    )
    page = client.get(f"/u/{token}", headers={"Accept": "text/html"})
    assert page.status_code == 200
    assert "test copy" in page.text and "<form" not in page.text
    pressed = client.post(f"/u/{token}", headers={"Accept": "text/html"})
    assert pressed.status_code == 200 and "was not unsubscribed" in pressed.text
    provider = one_click(client, f"/u/{token}")
    assert "nobody was unsubscribed" in provider.text
    assert not suppressed(web_runtime) and suppression_count(web_runtime) == 0
    with web_runtime.sessions() as session:
        assert session.scalars(select(AuditEntry)).all() == []


def test_the_public_pages_need_no_login_cookie_or_csrf_token(
    client: TestClient, web_runtime: Runtime
) -> None:
    token = real_token(web_runtime)
    page = client.get(f"/u/{token}")
    assert "set-cookie" not in page.headers  # nothing to remember about a journalist
    assert one_click(client, f"/u/{token}").status_code == 200


def test_the_token_never_reaches_the_log(
    client: TestClient, web_runtime: Runtime, caplog: pytest.LogCaptureFixture
) -> None:
    token = real_token(web_runtime)
    with caplog.at_level(logging.DEBUG):
        client.get(f"/u/{token}")
        one_click(client, f"/u/{token}")
        client.get(f"/u/{token[:-4]}")
    # The app's own lines; the test's HTTP client logs its requests too.
    logged = [r.getMessage() for r in caplog.records if r.name.startswith("distributor")]
    access = [r.getMessage() for r in caplog.records if r.name == "distributor.web.access"]
    assert len(access) == 3 and all("/u/{token}" in line for line in access)
    assert not any(token[:16] in line or JOURNALIST in line for line in logged)


def test_the_pages_carry_the_security_headers_and_no_inline_script_or_style(
    client: TestClient, web_runtime: Runtime
) -> None:
    token = real_token(web_runtime)
    for path in (f"/u/{token}", "/u/broken", "/login"):
        response = client.get(path, headers={"Accept": "text/html"})
        csp = response.headers["content-security-policy"]
        assert "default-src 'none'" in csp and "frame-ancestors 'none'" in csp
        assert "unsafe-inline" not in csp and "script-src" not in csp
        assert response.headers["x-content-type-options"] == "nosniff"
        assert response.headers["referrer-policy"] == "no-referrer"
        assert response.headers["cache-control"] == "no-store"
        html = response.text
        assert "<script" not in html and "<style" not in html and " style=" not in html
        assert "noindex" in html
        stylesheet = re.search(r'<link rel="stylesheet" href="([^"]+)"', html)
        assert stylesheet is not None
        css = client.get(stylesheet.group(1))
        assert css.status_code == 200 and css.headers["content-type"].startswith("text/css")


def test_healthz_answers_without_a_login(client: TestClient) -> None:
    response = client.get("/healthz")
    assert response.status_code == 200 and response.json() == {"status": "ok"}
