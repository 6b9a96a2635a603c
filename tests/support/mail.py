"""Builders, parsers and a slow reference for the tests of rendering and messages."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from email import message_from_bytes, policy
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime
from pathlib import Path

from markupsafe import escape

from distributor.clock import ManualClock
from distributor.mail.builder import MessageBuilder, Recipient, Sender
from distributor.mail.headers import one_line
from distributor.mail.unsubscribe import UnsubscribeLinks, UnsubscribeTokens
from distributor.mail.verp import VerpAddresses
from distributor.releases.content import OrganisationProfile, ReleaseContent
from distributor.releases.draft import ImageFile, ReleaseDraft
from distributor.releases.plain_text import parse_release_text
from distributor.releases.structured import parse_release_markdown
from distributor.rendering import RenderSetup, default_environment, prepare_release
from distributor.rendering.embargo_notice import EmbargoNotice
from distributor.rendering.personal import (
    EMAIL,
    LOCAL_EMBARGO,
    NAME,
    OUTLET,
    UNSUBSCRIBE_URL,
    Variant,
)
from distributor.rendering.render import PreparedRelease

ROOT = Path(__file__).resolve().parent.parent.parent
FIXTURES = ROOT / "tests" / "fixtures"
DEMO_RELEASE = ROOT / "demo" / "safelives-police-response-2017-11-14.txt"
SECRET = "test-secret-key"
EMBARGO = datetime(2017, 11, 14, 0, 1, tzinfo=UTC)
SENDER = Sender(
    address="press@charity.example.org",
    display_name="Charity Press Office",
    message_id_domain="mail.charity.example.org",
)
ALICE = Recipient(
    delivery_id=17,
    email="alice@news.example.com",
    name="Alice Reporter",
    outlet="Daily Example",
    time_zone="America/New_York",
)
SAFELIVES = OrganisationProfile(
    name="SafeLives",
    website="https://safelives.example.org",
    about="We are a national charity dedicated to ending domestic abuse, for good.",
    primary_colour="#5b2c6f",
    accent_colour="#c0392b",
    logo=ImageFile(
        filename="logo.png",
        content_type="image/png",
        data=(FIXTURES / "logo.png").read_bytes(),
        alt="SafeLives",
    ),
)


def sample_content() -> ReleaseContent:
    """The plain-text sample release in demo/."""
    return ReleaseContent(parse_release_text(DEMO_RELEASE.read_text(encoding="utf-8")))


def rich_draft() -> ReleaseDraft:
    text = (FIXTURES / "refuge-release.md").read_text(encoding="utf-8")
    return parse_release_markdown(text, read_file=lambda name: (FIXTURES / name).read_bytes())


def rich_content() -> ReleaseContent:
    """A Markdown release with a quote, contact, link, images (one in the body), a PDF and
    an organisation with a logo."""
    return ReleaseContent(rich_draft(), SAFELIVES)


def links(base_url: str | None = "https://press.charity.example.org") -> UnsubscribeLinks:
    return UnsubscribeLinks(
        tokens=UnsubscribeTokens(SECRET), base_url=base_url, mailto_domain="charity.example.org"
    )


def prepared(
    content: ReleaseContent | None = None,
    *,
    notice: EmbargoNotice | None = None,
    test: bool = False,
    setup: RenderSetup | None = None,
) -> PreparedRelease:
    return prepare_release(
        content or sample_content(),
        setup=setup or RenderSetup(environment=default_environment()),
        notice=notice,
        test=test,
    )


def builder(
    content: ReleaseContent | None = None,
    *,
    clock: ManualClock | None = None,
    notice: EmbargoNotice | None = None,
    sender: Sender = SENDER,
    send_id: int = 3,
    test: bool = False,
    base_url: str | None = "https://press.charity.example.org",
    rendered: PreparedRelease | None = None,
) -> MessageBuilder:
    return MessageBuilder(
        rendered=rendered or prepared(content, notice=notice, test=test),
        sender=sender,
        send_id=send_id,
        clock=clock or ManualClock(EMBARGO),
        unsubscribe=links(base_url),
        bounces=VerpAddresses(secret=SECRET, domain="bounces.charity.example.org"),
    )


def parse(data: bytes) -> EmailMessage:
    message = message_from_bytes(data, policy=policy.default)
    assert isinstance(message, EmailMessage)
    return message


def header_block(data: bytes) -> bytes:
    head, separator, _ = data.partition(b"\r\n\r\n")
    assert separator, "no blank line ends the headers"
    return head


def leaves(message: EmailMessage) -> Iterator[EmailMessage]:
    for part in message.walk():
        assert isinstance(part, EmailMessage)
        if not part.is_multipart():
            yield part


def html_of(message: EmailMessage) -> str:
    part = message.get_body(preferencelist=("html",))
    assert isinstance(part, EmailMessage)
    return str(part.get_content())


def text_of(message: EmailMessage) -> str:
    part = message.get_body(preferencelist=("plain",))
    assert isinstance(part, EmailMessage)
    return str(part.get_content())


def structure(message: EmailMessage) -> list[str]:
    """Content types in order, indented by depth."""
    lines: list[str] = []

    def walk(part: EmailMessage, depth: int) -> None:
        lines.append("  " * depth + part.get_content_type())
        if part.is_multipart():
            for child in part.iter_parts():
                assert isinstance(child, EmailMessage)
                walk(child, depth + 1)

    walk(message, 0)
    return lines


def reference_message(
    rendered: PreparedRelease,
    recipient: Recipient,
    *,
    sender: Sender,
    send_id: int,
    now: datetime,
    unsubscribe_url: str,
    list_unsubscribe: str,
) -> EmailMessage:
    """The straightforward, slow way: the stdlib builds the same message from scratch."""
    recipient = Recipient(
        recipient.delivery_id,
        recipient.email,
        one_line(recipient.name),  # names and outlets are written on one line
        one_line(recipient.outlet),
        recipient.time_zone,
    )
    notice = rendered.notice
    embargoed = notice is not None and notice.is_embargoed(now)
    local = notice.in_zone_of(recipient.time_zone) if embargoed and notice else ""
    variant = Variant(embargoed, bool(local), bool(recipient.name), bool(recipient.outlet))
    shown = rendered.variant(variant)
    values = {
        NAME: recipient.name,
        OUTLET: recipient.outlet,
        EMAIL: recipient.email,
        LOCAL_EMBARGO: local,
        UNSUBSCRIBE_URL: unsubscribe_url,
    }
    alternative = EmailMessage(policy=policy.SMTP)
    alternative.set_content(shown.text.fill(values.__getitem__))
    alternative.add_alternative(
        shown.html.fill(lambda slot: str(escape(values[slot]))), subtype="html"
    )
    message = alternative
    if shown.images:
        message = EmailMessage(policy=policy.SMTP)
        message.add_header("Content-Type", "multipart/related", type="multipart/alternative")
        message.attach(alternative)
        for image in shown.images:
            maintype, subtype = image.content_type.split("/")
            picture = EmailMessage(policy=policy.SMTP)
            picture.set_content(
                image.data,
                maintype=maintype,
                subtype=subtype,
                cid=f"<{image.content_id}>",
                disposition="inline",
                filename=image.filename,
            )
            message.attach(picture)
    if rendered.attachments:
        body = message
        message = EmailMessage(policy=policy.SMTP)
        message.add_header("Content-Type", "multipart/mixed")
        message.attach(body)
        for attachment in rendered.attachments:
            maintype, subtype = attachment.content_type.split("/")
            file = EmailMessage(policy=policy.SMTP)
            file.set_content(
                attachment.data,
                maintype=maintype,
                subtype=subtype,
                disposition="attachment",
                filename=attachment.filename,
            )
            message.attach(file)
    message["From"] = Address(sender.display_name, addr_spec=sender.address)
    message["Reply-To"] = Address(sender.display_name, addr_spec=sender.address)
    message["To"] = Address(recipient.name, addr_spec=recipient.email)
    message["Subject"] = shown.subject
    message["Date"] = format_datetime(now)
    message["Message-ID"] = (
        f"<delivery.{send_id}.{recipient.delivery_id}@{sender.message_id_domain}>"
    )
    message["List-Unsubscribe"] = list_unsubscribe
    return message
