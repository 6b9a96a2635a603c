"""Headers: encoded as RFC 5322 and 2047 require, and impossible to inject into."""

from __future__ import annotations

import re
from email.header import decode_header, make_header
from email.message import EmailMessage

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from distributor.mail.headers import (
    HeaderValueError,
    ascii_address,
    encoded_words,
    fold,
    one_line,
    phrase,
    unstructured,
)
from distributor.mail.unsubscribe import UnsubscribeLinks, UnsubscribeTokens
from distributor.mail.verp import VerpAddresses
from distributor.message import Recipient, Sender
from distributor.releases.content import ReleaseContent
from distributor.releases.draft import AttachmentFile, ImageFile, ReleaseDraft
from distributor.settings import Settings
from distributor.visible_text import strip_hidden
from tests.support.mail import ALICE, FIXTURES, SENDER, builder, parse, rich_draft, text_of

INJECTION = "Innocent\r\nBcc: everyone@example.net\r\nX-Injected: yes"
LINE_BREAKS = ["\r\n", "\n", "\r", "\x0b", "\x0c", "\x00", "\x85", "\u2028", "\u2029", "\x1b"]


def header_lines(data: bytes) -> list[bytes]:
    """Every header line of the message and of each MIME part."""
    lines: list[bytes] = []
    for block in re.split(rb"\r\n--=_[^\r\n]+\r\n", data):
        head = block.partition(b"\r\n\r\n")[0]
        lines.extend(head.split(b"\r\n"))
    return lines


def assert_not_injected(data: bytes) -> EmailMessage:
    for line in header_lines(data):
        assert not re.match(rb"(?i)(bcc|x-injected):", line), line
    assert b"\n" not in data.replace(b"\r\n", b"")
    assert b"\r" not in data.replace(b"\r\n", b"")
    message = parse(data)
    for part in message.walk():
        assert part["Bcc"] is None and part["X-Injected"] is None
    return message


def content(**changes: object) -> ReleaseContent:
    fields: dict[str, object] = {
        "headline": "Headline",
        "dateline": "",
        "body": "Body.",
        "notes_to_editors": "",
    }
    fields.update(changes)
    return ReleaseContent(ReleaseDraft(**fields))  # type: ignore[arg-type]


# --- each header that carries data ----------------------------------------------------------


def test_from_and_reply_to_display_name() -> None:
    sender = Sender(
        address="press@charity.example.org",
        display_name=INJECTION,
        message_id_domain="mail.charity.example.org",
    )
    message = assert_not_injected(builder(content(), sender=sender).build(ALICE))
    cleaned = "Innocent Bcc: everyone@example.net X-Injected: yes"
    assert message["From"].addresses[0].display_name == cleaned
    assert message["Reply-To"].addresses[0].display_name == cleaned
    assert message["List-Id"].startswith(f'"{cleaned}"')


@pytest.mark.parametrize("field", ["address", "reply_to", "message_id_domain", "list_id"])
def test_sender_values_that_must_be_exact_are_refused(field: str) -> None:
    values = {
        "address": SENDER.address,
        "display_name": SENDER.display_name,
        "message_id_domain": SENDER.message_id_domain,
        "reply_to": "desk@charity.example.org",
        "list_id": "releases.charity.example.org",
    }
    values[field] = values[field] + "\r\nBcc: everyone@example.net"
    with pytest.raises(HeaderValueError):
        builder(content(), sender=Sender(**values))


def test_to_display_name() -> None:
    recipient = Recipient(delivery_id=1, email="a@example.com", name=INJECTION)
    message = assert_not_injected(builder(content()).build(recipient))
    assert message["To"].addresses[0].addr_spec == "a@example.com"


@pytest.mark.parametrize("line_break", LINE_BREAKS)
def test_to_address_with_a_control_character_is_refused(line_break: str) -> None:
    recipient = Recipient(1, f"a@example.com{line_break}Bcc: b@example.net", "A")
    with pytest.raises(HeaderValueError):
        builder(content()).build(recipient)


def test_an_outlet_never_reaches_a_header_and_is_one_line_in_the_body() -> None:
    recipient = Recipient(1, "a@example.com", "A", outlet="Daily\r\nBcc: x@example.net")
    message = assert_not_injected(builder(content()).build(recipient))
    assert "A, Daily Bcc: x@example.net, at" in " ".join(text_of(message).split())


def test_subject() -> None:
    message = assert_not_injected(builder(content(headline=INJECTION)).build(ALICE))
    assert message["Subject"] == "Innocent Bcc: everyone@example.net X-Injected: yes"


def test_list_id_name() -> None:
    sender = Sender(
        address="press@charity.example.org",
        display_name="Press",
        message_id_domain="mail.charity.example.org",
        list_name=INJECTION,
    )
    message = assert_not_injected(builder(content(), sender=sender).build(ALICE))
    assert "X-Injected: yes" in message["List-Id"]


def test_attachment_and_image_file_names() -> None:
    png = (FIXTURES / "refuge.png").read_bytes()
    pdf = (FIXTURES / "report.pdf").read_bytes()
    release = content(
        images=(ImageFile(INJECTION + ".png", "image/png", png, alt="A picture"),),
        attachments=(AttachmentFile("Bericht über\r\nBcc: x@y.z.pdf", "application/pdf", pdf),),
    )
    message = assert_not_injected(builder(release).build(ALICE))
    names = sorted(p.get_filename() for p in message.walk() if p.get_filename())
    assert names == [
        "Bericht über Bcc: x@y.z.pdf",
        "Innocent Bcc: everyone@example.net X-Injected: yes.png",
    ]


@pytest.mark.parametrize(
    "make",
    [
        lambda: UnsubscribeLinks(
            tokens=UnsubscribeTokens("k"), base_url=None, mailto_domain="evil.example\r\nBcc: x"
        ).mailto("00"),
        lambda: VerpAddresses(secret="k", domain="evil.example\r\nBcc: x"),
    ],
    ids=["unsubscribe mailto domain", "bounce domain"],
)
def test_domains_of_unsubscribe_and_bounce_addresses(make: object) -> None:
    with pytest.raises(HeaderValueError):
        make()  # type: ignore[operator]


@pytest.mark.parametrize(
    "name",
    [
        "from_address",
        "reply_to_address",
        "message_id_domain",
        "unsubscribe_domain",
        "bounce_domain",
        "list_id",
        "dkim_selector",
        "dkim_domain",
        "public_base_url",
    ],
)
@pytest.mark.parametrize("line_break", ["\r\n", "\n", "\x00", " ", "\u2028"])
def test_settings_that_reach_headers_refuse_line_breaks_and_spaces(
    name: str, line_break: str
) -> None:
    good = {"public_base_url": "https://press.example.org"}.get(name, "press@example.org")
    with pytest.raises(ValidationError, match=f"DISTRIBUTOR_{name.upper()}"):
        Settings(**{name: f"{good}{line_break}Bcc: x@example.net"})  # type: ignore[arg-type]


# --- encoding -------------------------------------------------------------------------------


def test_ascii_names_stay_readable_and_specials_are_quoted() -> None:
    assert phrase("Alice Reporter") == ["Alice", "Reporter"]
    assert phrase('Alice "Ace" Reporter, Jr.') == ['"Alice \\"Ace\\" Reporter, Jr."']
    assert fold("To", [*phrase("O'Brien, Pat"), "<pat@example.com>"]) == (
        b'To: "O\'Brien, Pat" <pat@example.com>\r\n'
    )


def test_encoded_words_are_short_and_never_split_a_character() -> None:
    text = "Zoë " * 40 + "日本語のテキスト" * 5
    words = encoded_words(text)
    assert all(len(word) <= 75 for word in words)
    joined = "".join(word[len("=?utf-8?q?") : -2] for word in words)
    raw = re.sub(r"=([0-9A-F]{2})", lambda m: chr(int(m.group(1), 16)), joined.replace("_", " "))
    assert raw.encode("latin-1").decode("utf-8") == text


def test_long_subjects_fold_at_spaces_within_78_characters() -> None:
    headline = "A long headline " * 12
    header = fold("Subject", unstructured(headline))
    assert all(len(line) <= 78 for line in header.split(b"\r\n"))
    assert header.replace(b"\r\n ", b" ") == f"Subject: {one_line(headline)}\r\n".encode()


def test_a_word_that_looks_encoded_is_encoded_so_it_reads_back_as_written() -> None:
    message = parse(builder(content(headline="Price =?utf-8?q?free?= today")).build(ALICE))
    assert message["Subject"] == "Price =?utf-8?q?free?= today"


@pytest.mark.parametrize(
    ("given_address", "written"),
    [
        ("zoe@bücher.example", "zoe@xn--bcher-kva.example"),
        ("ann@EXAMPLE.COM", "ann@example.com"),
        ("x@xn--bcher-kva.example", "x@xn--bcher-kva.example"),
    ],
)
def test_addresses_are_written_in_ascii(given_address: str, written: str) -> None:
    assert ascii_address(given_address) == written


def test_a_local_part_that_needs_smtputf8_is_refused_with_a_reason() -> None:
    with pytest.raises(HeaderValueError, match="SMTPUTF8"):
        ascii_address("zoë@example.com")


# --- whatever the data --------------------------------------------------------------------


def display_name_as_mail_programs_read_it(data: bytes) -> str:
    """The To display name decoded as RFC 2047 says (whitespace between encoded words is
    dropped), as Gmail, Outlook and Thunderbird do; the email package's address parser keeps
    that whitespace, so for long names it is not the reference here."""
    raw = re.search(rb"^To:([^\r\n]*(?:\r\n[ \t][^\r\n]*)*)", data, re.MULTILINE)
    assert raw is not None
    value = raw.group(1).replace(b"\r\n", b"").decode("ascii").strip()
    phrase_part = value.rpartition(" <")[0]
    decoded = str(make_header(decode_header(phrase_part)))
    if decoded.startswith('"') and decoded.endswith('"'):
        decoded = re.sub(r"\\(.)", r"\1", decoded[1:-1])
    return decoded


ONE_BUILDER = builder(ReleaseContent(rich_draft()))


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(name=st.text(max_size=120), outlet=st.text(max_size=60))
def test_any_name_and_outlet_give_one_well_formed_message(name: str, outlet: str) -> None:
    data = ONE_BUILDER.build(Recipient(1, "someone@example.com", name, outlet=outlet))

    data.partition(b"\r\n\r\n")[0].decode("ascii")
    assert max(len(line) for line in data.split(b"\r\n")) <= 998
    message = assert_not_injected(data)
    (to,) = message["To"].addresses
    assert to.addr_spec == "someone@example.com"
    assert display_name_as_mail_programs_read_it(data) == one_line(name)
    to_header = re.search(rb"^To:[^\r\n]*(?:\r\n[ \t][^\r\n]*)*", data, re.MULTILINE)
    assert to_header is not None
    if to_header.group(0).count(b"=?utf-8?") <= 1:  # then the email package agrees exactly
        assert to.display_name == one_line(name)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(headline=st.text(min_size=1, max_size=300).filter(lambda t: one_line(t) != ""))
def test_any_headline_gives_one_subject_that_reads_back(headline: str) -> None:
    data = builder(content(headline=headline)).build(ALICE)

    message = assert_not_injected(data)
    assert message["Subject"] == one_line(strip_hidden(one_line(headline)))
