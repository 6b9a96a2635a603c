"""The fast path against the straightforward one, and the MIME pieces it is made of."""

from __future__ import annotations

import binascii
import re
from datetime import timedelta
from email.message import EmailMessage

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from distributor.clock import ManualClock
from distributor.mail.headers import ascii_domain, one_line
from distributor.mail.quoted_printable import encode_piece, encode_value
from distributor.message import Recipient
from distributor.rendering import render as render_module
from distributor.rendering.embargo_notice import EmbargoNotice
from tests.support.mail import (
    ALICE,
    EMBARGO,
    SENDER,
    builder,
    leaves,
    parse,
    prepared,
    reference_message,
    rich_content,
    sample_content,
    structure,
)

RECIPIENTS = [
    ALICE,
    Recipient(2, "desk@news.example.com", "", ""),
    Recipient(
        3, "jose@diario.example.es", 'José Muñoz <Jefe> & "Co"', "El Diario", "Europe/Madrid"
    ),
    Recipient(4, "zoe@bücher.example", "Zoë Ångström", "Süddeutsche", "Asia/Kolkata"),
    Recipient(5, "x@example.org", "X " * 60, "Outlet = Equals", None),
]


def decoded_leaves(message: EmailMessage) -> list[tuple[str, str | None, str | bytes]]:
    """Each leaf part: its type, file name and decoded content."""
    found: list[tuple[str, str | None, str | bytes]] = []
    for part in leaves(message):
        content = part.get_content()
        found.append((part.get_content_type(), part.get_filename(), content))
    return found


@pytest.mark.parametrize("content", [sample_content, rich_content], ids=["plain", "rich"])
@pytest.mark.parametrize("recipient", RECIPIENTS, ids=lambda r: str(r.delivery_id))
@pytest.mark.parametrize("embargoed", [True, False], ids=["before lift", "after lift"])
def test_the_fast_message_matches_the_one_the_email_package_builds(
    content: object, recipient: Recipient, embargoed: bool
) -> None:
    notice = EmbargoNotice(at=EMBARGO, zone_name="Europe/London")
    now = EMBARGO - timedelta(minutes=5) if embargoed else EMBARGO + timedelta(minutes=5)
    made = builder(content(), clock=ManualClock(now), notice=notice)  # type: ignore[operator]
    fast = parse(made.build(recipient))
    https, mailto = re.findall(r"<([^>]+)>", fast["List-Unsubscribe"])

    reference = reference_message(
        made.rendered,
        recipient,
        sender=SENDER,
        send_id=3,
        now=now,
        unsubscribe_url=https,
        list_unsubscribe=f"<{https}>, <{mailto}>",
    )
    slow = parse(reference.as_bytes())

    assert structure(fast) == structure(slow)
    assert decoded_leaves(fast) == decoded_leaves(slow)
    # The email package's folder may start a long Subject with a line break: compare words.
    for name in ("Subject", "Date", "Message-ID", "List-Unsubscribe"):
        assert str(fast[name]).split() == str(slow[name]).split(), name
    # It also writes an IDN domain as an encoded word (invalid); compare domains in IDNA.
    for name in ("From", "Reply-To", "To"):
        assert [
            (a.display_name.split(), a.username, ascii_domain(a.domain))
            for a in fast[name].addresses
        ] == [
            (a.display_name.split(), a.username, ascii_domain(a.domain))
            for a in slow[name].addresses
        ], name
    for part in leaves(fast):
        if part["Content-ID"]:
            assert part["Content-ID"] in {p["Content-ID"] for p in leaves(slow)}


def test_css_is_inlined_once_per_variant_never_per_recipient(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls = []
    real = render_module.INLINER

    class CountingInliner:
        def inline(self, html: str) -> str:
            calls.append(len(html))
            return real.inline(html)

    monkeypatch.setattr(render_module, "INLINER", CountingInliner())
    build = builder(rich_content()).build
    for number in range(300):
        build(Recipient(number, f"j{number}@example.com", f"Journalist {number}", "Outlet"))
    for number in range(300):
        build(Recipient(number, f"k{number}@example.com", f"Journalist {number}", ""))

    assert len(calls) == 2  # with an outlet, and without one


def test_inlined_css_reaches_the_elements_and_dark_mode_rules_stay() -> None:
    html = prepared(rich_content()).variant(render_module.Variant(False, False, True, True)).html
    text = html.without_placeholders()

    assert "<style>" in text and "prefers-color-scheme: dark" in text
    assert 'class="content" style="' in text  # the class rules were inlined
    assert 'width="600"' in text and "max-width: 600px" in text
    assert '<meta name="color-scheme" content="light dark">' in text
    assert "<!--[if mso]>" in text  # Outlook's fixed-width table survived inlining
    assert all('alt="' in tag for tag in re.findall(r"<img [^>]*>", text))


def test_boundaries_differ_between_sends_and_never_occur_in_the_content() -> None:
    first = builder(rich_content()).build(ALICE)
    second = builder(rich_content()).build(ALICE)
    boundaries = set(re.findall(rb'boundary="([^"]+)"', first))

    assert len(boundaries) == 3
    assert boundaries.isdisjoint(re.findall(rb'boundary="([^"]+)"', second))
    for boundary in boundaries:
        lines = [line for line in first.split(b"\r\n") if boundary in line]
        assert all(line.startswith((b"--" + boundary, b" boundary=")) for line in lines)


# --- quoted-printable pieces ---------------------------------------------------------------

TEXTS = st.text(alphabet=st.sampled_from(list("ab =\t\r\n.éü“€😀-")), max_size=300)


@settings(max_examples=300, deadline=None)
@given(pieces=st.lists(TEXTS, min_size=1, max_size=6))
def test_pieces_encoded_apart_decode_to_the_text_joined(pieces: list[str]) -> None:
    texts = []
    encoded = b""
    for number, text in enumerate(pieces):
        if number % 2:
            text = one_line(text)
            encoded += encode_value(text)
        else:
            text = text.replace("\r\n", "\n").replace("\r", "\n").replace("\n", "\r\n")
            encoded += encode_piece(text)
        texts.append(text)

    assert binascii.a2b_qp(encoded).decode("utf-8") == "".join(texts)
    assert all(len(line) <= 76 for line in encoded.split(b"\r\n"))
    assert b"\n" not in encoded.replace(b"\r\n", b"")
    assert b"\r" not in encoded.replace(b"\r\n", b"")
    assert b"=_" not in encoded  # so no content line can look like a boundary
