"""The bytes of one release email, as a journalist's mail program will read them."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from email import message_from_bytes, policy
from email.message import EmailMessage
from email.utils import parsedate_to_datetime

import pytest

from distributor.clock import ManualClock
from distributor.message import MessageBuilder, Recipient, Sender
from distributor.models import Release
from distributor.rendering import RenderedRelease, make_environment, render_release
from distributor.settings import Settings

EMBARGO = datetime(2031, 3, 4, 9, 0, tzinfo=UTC)
SENDER = Sender(
    address="press@charity.example.org",
    display_name="Charity Press Office",
    message_id_domain="mail.charity.example.org",
)
ALICE = Recipient(delivery_id=17, email="alice@news.example.com", name="Alice Reporter")


def rendered(headline: str = "Charity welcomes report", body: str = "The body.") -> RenderedRelease:
    release = Release(
        headline=headline,
        dateline="4th March 2031",
        body=body,
        notes_to_editors="About the charity.",
    )
    environment = make_environment(Settings().effective_templates_dir)
    return render_release(environment, release, embargo_at=EMBARGO)


def builder(
    content: RenderedRelease | None = None,
    *,
    clock: ManualClock | None = None,
    sender: Sender = SENDER,
    send_id: int = 3,
) -> MessageBuilder:
    return MessageBuilder(
        rendered=content or rendered(),
        sender=sender,
        send_id=send_id,
        clock=clock or ManualClock(EMBARGO),
    )


def parse(data: bytes) -> EmailMessage:
    message = message_from_bytes(data, policy=policy.default)
    assert isinstance(message, EmailMessage)
    return message


def header_block(data: bytes) -> bytes:
    head, separator, _ = data.partition(b"\r\n\r\n")
    assert separator, "no blank line ends the headers"
    return head


def test_the_message_is_plain_text_then_html_both_with_the_headline() -> None:
    message = parse(builder().build(ALICE))

    assert message.get_content_type() == "multipart/alternative"
    parts = list(message.iter_parts())
    assert [p.get_content_type() for p in parts] == ["text/plain", "text/html"]
    for part in parts:
        assert isinstance(part, EmailMessage)
        assert "Charity welcomes report" in part.get_content()
        assert part.get_content_charset() == "utf-8"
    assert message["MIME-Version"] == "1.0"


def test_the_headers_name_sender_recipient_subject_and_date() -> None:
    clock = ManualClock(EMBARGO + timedelta(seconds=2))
    message = parse(builder(clock=clock).build(ALICE))

    (sender,) = message["From"].addresses
    assert (sender.display_name, sender.addr_spec) == (
        "Charity Press Office",
        "press@charity.example.org",
    )
    (recipient,) = message["To"].addresses
    assert (recipient.display_name, recipient.addr_spec) == (
        "Alice Reporter",
        "alice@news.example.com",
    )
    assert message["Subject"] == "Charity welcomes report"
    date = parsedate_to_datetime(message["Date"])
    assert date.tzinfo is not None
    assert date == EMBARGO + timedelta(seconds=2)
    for name in ("From", "To", "Subject", "Date", "Message-ID"):
        assert len(message.get_all(name) or []) == 1, name


def test_a_non_ascii_headline_is_encoded_in_the_subject_and_decodes_back() -> None:
    headline = "Charité welcomes “landmark” report — Zürich, Kraków, Ærø"
    data = builder(rendered(headline)).build(ALICE)

    head = header_block(data)
    head.decode("ascii")  # the header block is plain ASCII
    subject = re.search(rb"^Subject:(.*(?:\r\n[ \t].*)*)", head, re.MULTILINE)
    assert subject is not None
    assert b"=?utf-8?" in subject.group(1).lower()
    message = parse(data)
    assert message["Subject"] == headline
    for part in message.iter_parts():
        assert isinstance(part, EmailMessage)
        assert "Charité welcomes" in part.get_content()


def test_a_non_ascii_name_is_encoded_and_decodes_back() -> None:
    recipient = Recipient(delivery_id=5, email="jose@diario.example.es", name="José Muñoz")
    data = builder().build(recipient)

    header_block(data).decode("ascii")
    assert parse(data)["To"].addresses[0].display_name == "José Muñoz"


def test_the_message_id_is_stable_for_a_delivery_and_unique_between_deliveries() -> None:
    clock = ManualClock(EMBARGO)
    build = builder(clock=clock).build
    first = parse(build(ALICE))["Message-ID"]
    clock.advance(600)  # a retry, ten minutes later
    again = parse(build(ALICE))["Message-ID"]
    other = parse(build(Recipient(18, "bob@news.example.com", "Bob")))["Message-ID"]
    other_send = parse(builder(send_id=4).build(ALICE))["Message-ID"]

    assert first == again
    assert len({first, other, other_send}) == 3
    assert re.fullmatch(r"<[^<>@\s]+@mail\.charity\.example\.org>", first)


def test_every_line_ends_with_crlf() -> None:
    content = rendered(body="First paragraph.\n\nSecond paragraph,\nwrapped by hand.\r\n\r\nThird.")
    data = builder(content).build(ALICE)

    assert data.endswith(b"\r\n")
    assert b"\n" not in data.replace(b"\r\n", b"")
    assert b"\r" not in data.replace(b"\r\n", b"")


def test_no_line_is_longer_than_smtp_allows_even_for_a_long_paragraph() -> None:
    long_paragraph = " ".join(["Ünïcode words make a very long paragraph indeed."] * 200)
    data = builder(rendered(body=long_paragraph)).build(ALICE)

    assert max(len(line) for line in data.split(b"\r\n")) <= 998
    message = parse(data)
    html = message.get_body(preferencelist=("html",))
    assert html is not None
    assert isinstance(html, EmailMessage)
    assert long_paragraph in html.get_content()


@pytest.mark.parametrize("line_break", ["\r\n", "\n", "\r", "\r\n\t", "\u2028", "\x85"])
def test_a_line_break_in_a_name_cannot_add_a_header(line_break: str) -> None:
    evil = Recipient(
        delivery_id=9,
        email="alice@news.example.com",
        name=f"Alice{line_break}Bcc: everyone@example.net",
    )

    data = builder().build(evil)

    head = header_block(data)
    assert not re.search(rb"^bcc:", head, re.IGNORECASE | re.MULTILINE)
    assert b"\n" not in data.replace(b"\r\n", b"")
    assert b"\r" not in data.replace(b"\r\n", b"")
    message = parse(data)
    assert message["Bcc"] is None
    assert sorted(message.keys()) == sorted(
        ["From", "To", "Subject", "Date", "Message-ID", "MIME-Version", "Content-Type"]
    )
    (recipient,) = message["To"].addresses
    assert recipient.addr_spec == "alice@news.example.com"
    assert recipient.display_name == "Alice Bcc: everyone@example.net"


def test_a_line_break_in_the_headline_or_sender_name_cannot_add_a_header() -> None:
    sender = Sender(
        address="press@charity.example.org",
        display_name="Press\r\nBcc: leak@example.net",
        message_id_domain="mail.charity.example.org",
    )
    content = rendered()
    content = RenderedRelease(
        subject="Headline\r\nBcc: leak@example.net", html=content.html, text=content.text
    )

    data = builder(content, sender=sender).build(ALICE)

    assert not re.search(rb"^bcc:", header_block(data), re.IGNORECASE | re.MULTILINE)
    message = parse(data)
    assert message["Bcc"] is None
    assert message["Subject"] == "Headline Bcc: leak@example.net"
    assert message["From"].addresses[0].display_name == "Press Bcc: leak@example.net"
    assert message["From"].addresses[0].addr_spec == "press@charity.example.org"


def test_a_line_break_in_the_address_itself_is_refused() -> None:
    # Addresses are validated on import; one that is not cannot go out at all.
    evil = Recipient(delivery_id=9, email="alice@news.example.com\r\nBcc: x@example.net", name="A")
    with pytest.raises(ValueError):
        builder().build(evil)
