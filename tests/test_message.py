"""The bytes of one release email, as a journalist's mail program will read them."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime

import pytest

from distributor.clock import ManualClock
from distributor.engine.claims import load_send
from distributor.message import MessageBuilder, Recipient, Sender, message_id_for
from distributor.releases.content import ReleaseContent
from distributor.releases.draft import ReleaseDraft
from distributor.rendering.embargo_notice import EmbargoNotice
from distributor.runtime import Runtime
from distributor.scheduling import schedule_send
from tests.conftest import SAMPLE_DRAFT
from tests.support.mail import (
    ALICE,
    EMBARGO,
    SENDER,
    builder,
    header_block,
    html_of,
    parse,
    prepared,
    rich_content,
    structure,
    text_of,
)

NOTICE = EmbargoNotice(at=EMBARGO, zone_name="Europe/London")


def content(headline: str = "Charity welcomes report", body: str = "The body.") -> ReleaseContent:
    return ReleaseContent(
        ReleaseDraft(
            headline=headline,
            dateline="4th March 2031",
            body=body,
            notes_to_editors="About the charity.",
        )
    )


def test_the_message_is_plain_text_then_html_both_with_the_headline() -> None:
    message = parse(builder(content()).build(ALICE))

    assert structure(message) == ["multipart/alternative", "  text/plain", "  text/html"]
    for part in message.iter_parts():
        assert "Charity welcomes report" in part.get_content()  # type: ignore[attr-defined]
        assert part.get_content_charset() == "utf-8"
    assert message["MIME-Version"] == "1.0"


def test_images_are_related_by_content_id_and_attachments_are_mixed() -> None:
    message = parse(builder(rich_content()).build(ALICE))

    assert structure(message) == [
        "multipart/mixed",
        "  multipart/related",
        "    multipart/alternative",
        "      text/plain",
        "      text/html",
        "    image/png",
        "    image/png",
        "  application/pdf",
    ]
    html = html_of(message)
    related = [p for p in message.walk() if p.get_content_type() == "image/png"]
    for image in related:
        content_id = image["Content-ID"].strip("<>")
        assert f'src="cid:{content_id}"' in html
        assert image.get_content_disposition() == "inline"
    (pdf,) = [p for p in message.walk() if p.get_content_type() == "application/pdf"]
    assert pdf.get_content_disposition() == "attachment"
    assert pdf.get_filename() == "report.pdf"
    assert pdf.get_payload(decode=True) == rich_content().draft.attachments[0].data


def test_the_headers_name_sender_recipient_subject_date_and_lists() -> None:
    clock = ManualClock(EMBARGO + timedelta(seconds=2))
    message = parse(builder(content(), clock=clock).build(ALICE))

    (sender,) = message["From"].addresses
    assert (sender.display_name, sender.addr_spec) == (
        "Charity Press Office",
        "press@charity.example.org",
    )
    assert message["Reply-To"].addresses[0].addr_spec == "press@charity.example.org"
    (recipient,) = message["To"].addresses
    assert (recipient.display_name, recipient.addr_spec) == ("Alice Reporter", ALICE.email)
    assert message["Subject"] == "Charity welcomes report"
    assert parsedate_to_datetime(message["Date"]) == EMBARGO + timedelta(seconds=2)
    assert message["List-Id"] == "Charity Press Office <releases.mail.charity.example.org>"
    https, mailto = re.findall(r"<([^>]+)>", message["List-Unsubscribe"])
    assert https.startswith("https://press.charity.example.org/unsubscribe/")
    assert mailto.startswith("mailto:unsubscribe+")
    assert https.rsplit("/", 1)[1] == mailto.split("+", 1)[1].split("@", 1)[0]
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    for name in ("From", "Reply-To", "To", "Subject", "Date", "Message-ID", "List-Id"):
        assert len(message.get_all(name) or []) == 1, name


def test_without_a_public_web_address_only_mailto_is_offered_and_no_one_click() -> None:
    message = parse(builder(content(), base_url=None).build(ALICE))

    assert re.fullmatch(
        r"<mailto:unsubscribe\+[0-9a-f]+@charity\.example\.org\?subject=unsubscribe>",
        message["List-Unsubscribe"],
    )
    assert message["List-Unsubscribe-Post"] is None
    assert "mailto:unsubscribe+" in html_of(message)


def test_each_recipient_gets_their_own_token_in_the_header_and_the_footer() -> None:
    build = builder(content()).build
    first, second = parse(build(ALICE)), parse(build(Recipient(18, "bob@example.net", "Bob")))

    tokens = []
    for message in (first, second):
        url = re.findall(r"<(https://[^>]+)>", message["List-Unsubscribe"])[0]
        assert f'href="{url}"' in html_of(message)
        assert f"Unsubscribe: {url}" in text_of(message)
        tokens.append(url)
    assert tokens[0] != tokens[1]


def test_a_non_ascii_headline_is_encoded_in_the_subject_and_decodes_back() -> None:
    headline = "Charité welcomes “landmark” report — Zürich, Kraków, Ærø"
    data = builder(content(headline)).build(ALICE)

    head = header_block(data)
    head.decode("ascii")  # the header block is plain ASCII
    subject = re.search(rb"^Subject:(.*(?:\r\n[ \t].*)*)", head, re.MULTILINE)
    assert subject is not None
    assert b"=?utf-8?" in subject.group(1).lower()
    message = parse(data)
    assert message["Subject"] == headline
    for part in message.iter_parts():
        assert "Charité welcomes" in part.get_content()  # type: ignore[attr-defined]


def test_a_non_ascii_name_is_encoded_and_decodes_back() -> None:
    recipient = Recipient(delivery_id=5, email="jose@diario.example.es", name="José Muñoz")
    data = builder(content()).build(recipient)

    header_block(data).decode("ascii")
    assert parse(data)["To"].addresses[0].display_name == "José Muñoz"


def test_an_idn_domain_is_written_in_punycode_not_as_an_encoded_word() -> None:
    recipient = Recipient(delivery_id=5, email="zoe@bücher.example", name="Zoë Ångström")
    data = builder(content()).build(recipient)

    to = re.search(rb"^To: (.*)\r$", header_block(data), re.MULTILINE)
    assert to is not None
    assert to.group(1).endswith(b"<zoe@xn--bcher-kva.example>")
    assert b"@=?" not in data
    (address,) = parse(data)["To"].addresses
    assert (address.display_name, address.domain) == ("Zoë Ångström", "xn--bcher-kva.example")


def test_the_message_id_is_stable_for_a_delivery_and_unique_between_deliveries() -> None:
    clock = ManualClock(EMBARGO)
    build = builder(content(), clock=clock).build
    first = parse(build(ALICE))["Message-ID"]
    clock.advance(600)  # a retry, ten minutes later
    again = parse(build(ALICE))["Message-ID"]
    other = parse(build(Recipient(18, "bob@news.example.com", "Bob")))["Message-ID"]
    other_send = parse(builder(content(), send_id=4).build(ALICE))["Message-ID"]

    assert first == again == message_id_for(17, 3, "mail.charity.example.org")
    assert len({first, other, other_send}) == 3
    assert re.fullmatch(r"<[^<>@\s]+@mail\.charity\.example\.org>", first)


def test_every_line_ends_with_crlf_and_none_is_longer_than_smtp_allows() -> None:
    long_paragraph = " ".join(["Ünïcode words make a very long paragraph indeed."] * 200)
    body = f"First paragraph.\n\nSecond,\nwrapped by hand.\r\n\r\n{long_paragraph}"
    for release in (content(body=body), rich_content()):
        data = builder(release).build(ALICE)

        assert data.endswith(b"\r\n")
        assert b"\n" not in data.replace(b"\r\n", b"")
        assert b"\r" not in data.replace(b"\r\n", b"")
        assert max(len(line) for line in data.split(b"\r\n")) <= 998
        body_lines = data.partition(b"\r\n\r\n")[2].split(b"\r\n")
        assert max(len(line) for line in body_lines) <= 78  # quoted-printable and base64: 76
    assert long_paragraph in html_of(parse(builder(content(body=body)).build(ALICE)))


def test_personal_values_are_escaped_in_html_and_plain_in_text() -> None:
    recipient = Recipient(3, "ed@example.com", 'Ed <b>"Bold"</b> & Co', outlet="<i>News</i>")
    message = parse(builder(content()).build(recipient))

    html = html_of(message)
    assert "Dear Ed &lt;b&gt;&#34;Bold&#34;&lt;/b&gt; &amp; Co," in html
    assert "<b>" not in html and "<i>News" not in html
    assert 'Dear Ed <b>"Bold"</b> & Co,' in text_of(message)


def test_greeting_and_outlet_follow_what_is_known_of_the_recipient() -> None:
    build = builder(content()).build
    named = parse(build(ALICE))
    anonymous = parse(build(Recipient(4, "desk@news.example.com", "", "")))

    assert "Dear Alice Reporter," in text_of(named)
    assert "Alice Reporter, Daily Example, at alice@news.example.com" in text_of(named)
    assert "Dear" not in text_of(anonymous)
    assert "Sent to desk@news.example.com because" in " ".join(text_of(anonymous).split())
    assert anonymous["To"].addresses[0].display_name == ""


def test_the_embargo_shows_before_the_lift_in_each_zone_and_not_after() -> None:
    clock = ManualClock(EMBARGO - timedelta(hours=2))
    build = builder(content(), clock=clock, notice=NOTICE).build
    before = parse(build(ALICE))
    london = parse(build(Recipient(9, "l@example.co.uk", "Lon", time_zone="Europe/London")))
    clock.advance(2 * 3600)
    after = parse(build(ALICE))

    prefix = "EMBARGOED UNTIL 00:01 GMT, Tuesday 14 November 2017"
    assert before["Subject"] == f"{prefix}: Charity welcomes report"
    for part in (text_of(before), html_of(before)):
        assert prefix in part
        assert "00:01 UTC, Tuesday 14 November 2017" in part
        assert "19:01 EST, Monday 13 November 2017" in part
    assert "Where you are" not in text_of(london)
    assert after["Subject"] == "Charity welcomes report"
    assert "EMBARGOED" not in text_of(after) + html_of(after)


def test_summer_embargoes_say_bst() -> None:
    summer = EmbargoNotice(at=EMBARGO.replace(month=7, hour=8), zone_name="Europe/London")
    clock = ManualClock(EMBARGO.replace(month=6))
    message = parse(builder(content(), clock=clock, notice=summer).build(ALICE))

    assert message["Subject"].startswith("EMBARGOED UNTIL 09:01 BST, Friday 14 July 2017: ")
    assert "08:01 UTC, Friday 14 July 2017" in text_of(message)


def test_test_copies_are_marked_and_get_a_message_id_of_their_own() -> None:
    build = builder(content(), test=True).build
    first, second = parse(build(ALICE)), parse(build(ALICE))

    assert first["Subject"] == "[TEST] Charity welcomes report"
    assert "TEST COPY" in text_of(first) and "TEST COPY" in html_of(first)
    assert first["Message-ID"] != second["Message-ID"]


def test_the_envelope_sender_carries_the_delivery_for_bounces() -> None:
    made = builder(content())
    built = made.build_message(ALICE)

    assert re.fullmatch(
        r"bounces\+3\.17\.[0-9a-f]{10}@bounces\.charity\.example\.org", built.envelope_sender
    )
    assert built.data.partition(b"\r\n\r\n")[0] == made.build(ALICE).partition(b"\r\n\r\n")[0]
    assert builder(content(), test=True).envelope_sender(ALICE) == SENDER.address


@pytest.mark.parametrize("line_break", ["\r\n", "\n", "\r", "\r\n\t", "\u2028", "\x85"])
def test_a_line_break_in_a_name_cannot_add_a_header(line_break: str) -> None:
    evil = Recipient(
        delivery_id=9,
        email="alice@news.example.com",
        name=f"Alice{line_break}Bcc: everyone@example.net",
    )

    data = builder(content()).build(evil)

    head = header_block(data)
    assert not re.search(rb"^bcc:", head, re.IGNORECASE | re.MULTILINE)
    assert b"\n" not in data.replace(b"\r\n", b"")
    assert b"\r" not in data.replace(b"\r\n", b"")
    message = parse(data)
    assert message["Bcc"] is None
    assert sorted(message.keys()) == sorted(
        [
            "From",
            "Reply-To",
            "To",
            "Subject",
            "Date",
            "Message-ID",
            "List-Id",
            "List-Unsubscribe",
            "List-Unsubscribe-Post",
            "MIME-Version",
            "Content-Type",
        ]
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

    data = builder(content("Headline\r\nBcc: leak@example.net"), sender=sender).build(ALICE)

    assert not re.search(rb"^bcc:", header_block(data), re.IGNORECASE | re.MULTILINE)
    message = parse(data)
    assert message["Bcc"] is None
    assert message["Subject"] == "Headline Bcc: leak@example.net"
    assert message["From"].addresses[0].display_name == "Press Bcc: leak@example.net"
    assert message["From"].addresses[0].addr_spec == "press@charity.example.org"


def test_a_line_break_in_the_address_itself_is_refused() -> None:
    # Addresses are validated on import; one that is not cannot go out at all.
    evil = Recipient(delivery_id=9, email="alice@news.example.com\r\nBcc: x@example.net", name="A")
    with pytest.raises(ValueError, match="cannot go into a mail header"):
        builder(content()).build(evil)


def test_the_builder_is_what_the_runtime_hands_workers() -> None:
    made = builder(content())
    assert isinstance(made, MessageBuilder)
    assert made.rendered is not prepared()  # one prepared release per builder


def test_the_runtime_prepares_a_send_once_and_builds_every_batch_from_it(
    runtime: Runtime, make_audience: Callable[..., tuple[int, list[str]]]
) -> None:
    # Given a scheduled send of the sample release
    release_id, emails = make_audience(3)
    now = datetime.now(UTC)
    with runtime.sessions.begin() as session:
        scheduled = schedule_send(
            session,
            release_id=release_id,
            list_names=["Newsdesks"],
            embargo_at=now + timedelta(hours=1),
            embargo_zone="Europe/London",
            now=now,
            batch_size=20,
        )
    with runtime.sessions() as session:
        first = load_send(session, scheduled.send_id)
    with runtime.sessions() as session:
        second = load_send(session, scheduled.send_id)
    assert first is not None and second is not None

    # When two batches ask for a builder
    build = runtime.make_builder(first)
    again = runtime.make_builder(second)

    # Then the second batch reuses the first one's prepared release
    assert runtime.builder_for(first) is runtime.builder_for(second)
    message = parse(build(Recipient(1, emails[0], "Journalist 0", "Outlet 0")).data)
    assert message["Subject"] == SAMPLE_DRAFT.headline  # built after the lift: no banner
    assert parse(again(Recipient(2, emails[1], "Journalist 1")).data)["Message-ID"] == (
        f"<delivery.{scheduled.send_id}.2@{runtime.settings.message_id_domain}>"
    )
