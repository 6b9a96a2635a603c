"""The baseline: what a user following Celery, SQLAlchemy and smtplib tutorials would write.

One task per email. Each task loads its row and the release through the ORM, renders the
HTML template, makes the text part with html2text, builds a stdlib EmailMessage, opens a new
SMTP connection, sends, quits, and commits the row's new state. It is deliberately plain,
not deliberately slow: the Message-ID domain is given, so no DNS lookup is timed.

Configured from NAIVE_* environment variables, as a worker module would be:
`celery -A benchmarks.naive_app worker`.
"""

from __future__ import annotations

import os
import smtplib
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid

import html2text
from celery import Celery
from jinja2 import Environment, select_autoescape
from sqlalchemy import DateTime, String, create_engine
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

from distributor.models import Contact, Release

TASK_NAME = "naive.send_release_email"

BROKER_URL = os.environ.get("NAIVE_BROKER_URL", "redis://127.0.0.1:6379/0")
QUEUE = os.environ.get("NAIVE_QUEUE", "naive")
DATABASE_URL = os.environ.get("NAIVE_DATABASE_URL", "postgresql+psycopg://postgres@127.0.0.1/test")
SMTP_HOST = os.environ.get("NAIVE_SMTP_HOST", "127.0.0.1")
SMTP_PORT = int(os.environ.get("NAIVE_SMTP_PORT", "2525"))
FROM = "Press Office <press@example.org>"

# The tutorial's own email template: a table layout with inline styles, as email needs.
TEMPLATE = """<!DOCTYPE html>
<html lang="en">
<head><meta charset="utf-8"><title>{{ headline }}</title></head>
<body style="margin:0;padding:0;background:#f4f4f4;">
<table role="presentation" width="100%" cellpadding="0" cellspacing="0" style="background:#f4f4f4;">
<tr><td align="center" style="padding:16px;">
<table role="presentation" width="600" cellpadding="0" cellspacing="0"
 style="max-width:600px;background:#ffffff;font-family:Arial,Helvetica,sans-serif;color:#222222;">
<tr><td style="padding:24px 24px 8px 24px;">
<p style="font-size:14px;margin:0 0 16px 0;">Dear {{ name }},</p>
<h1 style="font-size:24px;line-height:30px;margin:0 0 8px 0;">{{ headline }}</h1>
{% if dateline %}<p style="font-size:14px;color:#555555;margin:0;">{{ dateline }}</p>{% endif %}
</td></tr>
<tr><td style="padding:8px 24px 24px 24px;font-size:16px;line-height:24px;">
{% for paragraph in body %}<p style="margin:0 0 16px 0;">{{ paragraph }}</p>
{% endfor %}
{% if notes %}<h2 style="font-size:18px;margin:24px 0 8px 0;">Notes to editors</h2>
{% for paragraph in notes %}<p style="margin:0 0 12px 0;font-size:14px;line-height:21px;">
{{ paragraph }}</p>
{% endfor %}{% endif %}
</td></tr>
</table>
</td></tr>
</table>
</body>
</html>
"""


class Base(DeclarativeBase):
    pass


class Outbox(Base):
    """One row per email to send; the task sets `state` to 'sent' and commits."""

    __tablename__ = "naive_outbox"

    id: Mapped[int] = mapped_column(primary_key=True)
    contact_id: Mapped[int]
    release_id: Mapped[int]
    state: Mapped[str] = mapped_column(String(16), default="pending")
    sent_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


app = Celery("naive", broker=BROKER_URL)
app.conf.task_default_queue = QUEUE
app.conf.broker_connection_retry_on_startup = True

engine = create_engine(DATABASE_URL)
templates = Environment(autoescape=select_autoescape(default_for_string=True))
template = templates.from_string(TEMPLATE)


def paragraphs(text: str) -> list[str]:
    return [" ".join(block.split()) for block in text.split("\n\n") if block.strip()]


def build_email(contact: Contact, release: Release) -> EmailMessage:
    html = template.render(
        name=contact.name,
        headline=release.headline,
        dateline=release.dateline,
        body=paragraphs(release.body),
        notes=paragraphs(release.notes_to_editors),
    )
    message = EmailMessage()
    message["Subject"] = release.headline
    message["From"] = FROM
    message["To"] = f"{contact.name} <{contact.email}>"
    message["Date"] = format_datetime(datetime.now(UTC))
    message["Message-ID"] = make_msgid(domain="example.org")
    message.set_content(html2text.html2text(html))
    message.add_alternative(html, subtype="html")
    return message


@app.task(name=TASK_NAME)  # type: ignore[untyped-decorator]
def send_release_email(outbox_id: int) -> None:
    with Session(engine) as session:
        row = session.get(Outbox, outbox_id)
        if row is None or row.state == "sent":
            return
        contact = session.get(Contact, row.contact_id)
        release = session.get(Release, row.release_id)
        assert contact is not None and release is not None
        message = build_email(contact, release)

        with smtplib.SMTP(SMTP_HOST, SMTP_PORT) as smtp:
            smtp.send_message(message)

        row.state = "sent"
        row.sent_at = datetime.now(UTC)
        session.commit()
