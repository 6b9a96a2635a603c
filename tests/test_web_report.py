"""A release's report in the dashboard: counts by state (and the document the page polls),
the deliveries-per-second chart, failures by reason with the retry, one recipient's history
and the CSV export, against the real database (SQLite and PostgreSQL)."""

from __future__ import annotations

import csv
import html
import io
import logging
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, insert, select, update

from distributor.acting import acting_info
from distributor.actors import Actor, Role
from distributor.contacts_import import ContactRow, ParsedContacts, import_contacts
from distributor.lists import add_to_list, create_list
from distributor.models import AuditEntry, Contact, Delivery, DeliveryEvent, Send
from distributor.releases import ReleaseDraft, create_release
from distributor.runtime import Runtime
from distributor.scheduling import schedule_send
from distributor.states import DeliveryState, SendState
from tests.support.web import (
    PEOPLE,
    client_fixture,  # noqa: F401 - fixture
    csrf_in,
    log_in,
    people_fixture,  # noqa: F401 - fixture
    web_runtime_fixture,  # noqa: F401 - fixture
)

OFFICER = PEOPLE[Role.PRESS_OFFICER]
VIEWER = PEOPLE[Role.VIEWER]
REFUSED = "550 5.1.1 <{email}>: mailbox unavailable"
SPAM = "554 5.7.1 refused as spam"
DEFERRED = "421 4.7.0 try again later"


@dataclass
class SentRelease:
    release_id: int
    send_id: int
    embargo_at: datetime
    emails: list[str]


def sent_release(
    runtime: Runtime,
    *,
    contacts: int = 20,
    failed: int = 3,
    deferred: int = 2,
    pending: int = 0,
    headline: str = "Charity opens three new refuges",
) -> SentRelease:
    """A release whose send lifted a minute ago: most deliveries accepted in the first
    seconds after the embargo, `failed` refused for good, `deferred` waiting for a retry and
    `pending` not yet claimed (the send is then still armed)."""
    officer = Actor(OFFICER, Role.PRESS_OFFICER)
    embargo_at = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=1)
    scheduled_at = embargo_at - timedelta(days=1)
    rows = [
        ContactRow(line=n + 2, email=f"reporter{n}@news{n % 3}.example.com", name=f"Reporter {n}")
        for n in range(contacts)
    ]
    with runtime.sessions(info=acting_info(officer)) as session, session.begin():
        import_contacts(session, ParsedContacts(rows=rows), now=scheduled_at)
        list_name = f"Desks for {headline}"
        create_list(session, list_name, now=scheduled_at)
        add_to_list(session, list_name, [r.email for r in rows])
        release = create_release(
            session,
            ReleaseDraft(
                headline=headline,
                dateline="Leeds",
                body="The charity today opened three new refuges.",
                notes_to_editors="",
            ),
            now=scheduled_at,
        )
        send_id = schedule_send(
            session,
            release_id=release.id,
            list_names=[list_name],
            embargo_at=embargo_at,
            embargo_zone="Europe/London",
            now=scheduled_at,
            batch_size=100,
        ).send_id
        deliveries = session.execute(
            select(Delivery.id, Contact.email)
            .join(Contact, Contact.id == Delivery.contact_id)
            .where(Delivery.send_id == send_id)
            .order_by(Delivery.id)
        ).all()
        for index, (delivery_id, email) in enumerate(deliveries):
            at = embargo_at + timedelta(seconds=0.2 + index * 0.15)
            if index < failed:
                values = {"state": DeliveryState.FAILED, "error": REFUSED.format(email=email)}
            elif index < failed + deferred:
                values = {
                    "state": DeliveryState.DEFERRED,
                    "error": DEFERRED,
                    "next_attempt_at": at + timedelta(minutes=5),
                }
            elif index >= len(deliveries) - pending:
                continue
            else:
                values = {"state": DeliveryState.SENT, "smtp_code": 250, "smtp_reply": "250 ok"}
            final = values["state"] is not DeliveryState.DEFERRED
            session.execute(
                update(Delivery)
                .where(Delivery.id == delivery_id)
                .values(
                    claimed_at=at - timedelta(seconds=0.1),
                    finished_at=at if final else None,
                    attempts=1,
                    **values,
                )
            )
            session.execute(
                insert(DeliveryEvent).values(
                    delivery_id=delivery_id,
                    at=at,
                    state=values["state"],
                    detail=values.get("error") or values.get("smtp_reply"),
                )
            )
        state = SendState.ARMED if pending or deferred else SendState.COMPLETED
        session.execute(update(Send).where(Send.id == send_id).values(state=state))
    return SentRelease(release.id, send_id, embargo_at, [r.email for r in rows])


def report_url(sent: SentRelease) -> str:
    return f"/releases/{sent.release_id}/report"


def test_the_report_counts_each_state_charts_the_lift_and_groups_what_did_not_go(
    client: TestClient, people: dict[Role, str], web_runtime: Runtime
) -> None:
    sent = sent_release(web_runtime, contacts=14, failed=3, deferred=2, pending=2)
    log_in(client, VIEWER)

    page = client.get(report_url(sent))

    assert page.status_code == 200
    html = page.text
    for state, count in (("sent", 7), ("failed", 3), ("deferred", 2), ("pending", 2)):
        assert f'<span class="tile-n" data-count="{state}">{count}</span>' in html
    assert "<strong>10</strong> of 14 finished" in html
    # The chart says what it shows without a pointer: both axes, the embargo, the peak.
    assert "seconds from the embargo" in html and "deliveries a second" in html
    assert f"embargo {sent.embargo_at:%H:%M:%S} UTC" in html
    assert 'class="embargo-line"' in html and 'class="peak-label"' in html
    assert "10 outcomes shown, counted per second" in html
    # Failures grouped by what the relay said, the address in it left out.
    table = html[html.index("Not delivered, by reason") :]
    assert "550 5.1.1 &lt;recipient&gt;: mailbox unavailable" in table
    assert '<td data-label="Deliveries" class="num">3</td>' in table
    assert DEFERRED in table and "next attempt" in table
    assert "@news" not in table
    # A viewer reads; the retry is not offered.
    assert "/report/retry" not in html
    # The page polls with its own script, which its policy lets it load, and nothing else.
    policy = page.headers["content-security-policy"]
    assert "script-src 'self'" in policy and "connect-src 'self'" in policy
    assert "unsafe-inline" not in policy
    assert '<script src="/static/report.js?v=' in html

    first = client.get(f"{report_url(sent)}/live").json()
    assert first["active"] is True
    assert first["sends"][0]["counts"]["pending"] == 2
    assert "deliveries a second" in first["charts"][str(sent.send_id)]
    with web_runtime.sessions.begin() as session:
        session.execute(
            update(Delivery)
            .where(Delivery.send_id == sent.send_id, Delivery.state == DeliveryState.PENDING)
            .values(state=DeliveryState.SENT, finished_at=datetime.now(UTC))
        )
        session.execute(
            update(Send).where(Send.id == sent.send_id).values(state=SendState.COMPLETED)
        )
    second = client.get(f"{report_url(sent)}/live").json()
    assert second["sends"][0]["counts"]["sent"] == 9
    assert second["sends"][0]["finished"] == 12
    assert second["sends"][0]["state"] == "completed"
    # Nothing can change any more: the page stops polling, and no chart is drawn again.
    assert second["active"] is False and second["charts"] == {}


def test_a_press_officer_confirms_a_retry_and_a_viewer_may_not_make_one(
    client: TestClient, people: dict[Role, str], web_runtime: Runtime
) -> None:
    sent = sent_release(web_runtime, contacts=8, failed=3, deferred=0)
    other = sent_release(web_runtime, contacts=2, failed=1, deferred=0, headline="Another")
    url = f"/releases/{sent.release_id}/report/retry"
    viewer = TestClient(client.app, follow_redirects=False)
    viewer_token = log_in(viewer, VIEWER)
    assert viewer.get(url, params={"send_id": sent.send_id, "state": "failed"}).status_code == 403
    form = {"send_id": sent.send_id, "state": "failed", "csrf_token": viewer_token}
    assert viewer.post(url, data=form).status_code == 403

    token = log_in(client, OFFICER)
    assert "Retry 3 failed" in client.get(report_url(sent)).text
    confirm = client.get(url, params={"send_id": sent.send_id, "state": "failed"})
    assert confirm.status_code == 200
    assert "Put 3 failed deliveries back in line?" in confirm.text
    assert client.post(url, data={"send_id": sent.send_id, "state": "failed"}).status_code == 403
    wrong_send = client.post(
        url, data={"send_id": other.send_id, "state": "failed", "csrf_token": token}
    )
    assert wrong_send.status_code == 404
    assert f"release {sent.release_id} has no send {other.send_id}" in wrong_send.text
    bad_state = client.post(
        url, data={"send_id": sent.send_id, "state": "sent", "csrf_token": token}
    )
    assert bad_state.status_code == 400 and "state" in bad_state.text

    done = client.post(
        url, data={"send_id": sent.send_id, "state": "failed", "csrf_token": csrf_in(confirm.text)}
    )

    assert done.status_code == 303
    assert done.headers["location"] == f"{report_url(sent)}#send-{sent.send_id}"
    report = client.get(report_url(sent)).text
    assert f"3 failed deliveries of send {sent.send_id} put back in line" in report
    assert '<span class="tile-n" data-count="pending">3</span>' in report
    with web_runtime.sessions() as session:
        entry = session.scalars(
            select(AuditEntry).where(AuditEntry.action == "deliveries.retried")
        ).one()
    assert entry.actor == OFFICER


def test_each_reason_has_its_own_retry_which_puts_back_only_its_deliveries(
    client: TestClient, people: dict[Role, str], web_runtime: Runtime
) -> None:
    sent = sent_release(web_runtime, contacts=10, failed=5, deferred=2)
    with web_runtime.sessions.begin() as session:
        spam = session.scalars(
            select(Delivery.id)
            .where(Delivery.send_id == sent.send_id, Delivery.state == DeliveryState.FAILED)
            .order_by(Delivery.id)
            .limit(2)
        ).all()
        session.execute(update(Delivery).where(Delivery.id.in_(spam)).values(error=SPAM))
    url = f"/releases/{sent.release_id}/report/retry"
    viewer = TestClient(client.app, follow_redirects=False)
    log_in(viewer, VIEWER)
    assert "Retry these" not in viewer.get(report_url(sent)).text
    asked_by_viewer = viewer.get(
        url, params={"send_id": sent.send_id, "state": "failed", "reason": SPAM}
    )
    assert asked_by_viewer.status_code == 403

    token = log_in(client, OFFICER)
    page = client.get(report_url(sent)).text
    # A button for each group a person may retry; deferrals are left to the workers.
    assert "Retry these 3…" in page and "Retry these 2…" in page
    assert "reason=550" in page and "reason=421" not in page
    link = re.search(r'href="([^"]*reason=550[^"]*)"', page)
    assert link is not None
    asked = client.get(html.unescape(link.group(1)))
    assert asked.status_code == 200
    assert "Put 3 failed deliveries back in line?" in asked.text
    assert "550 5.1.1 &lt;recipient&gt;: mailbox unavailable" in asked.text
    assert "Other failed deliveries of the send stay as they are." in asked.text
    form = {
        "send_id": sent.send_id,
        "state": "failed",
        "reason": SPAM,
        "csrf_token": token,
    }

    done = client.post(url, data=form)

    assert done.status_code == 303
    report = client.get(report_url(sent)).text
    assert f"2 failed deliveries of send {sent.send_id} (“{SPAM}”) put back in line" in report
    with web_runtime.sessions() as session:
        states = dict(
            session.execute(
                select(Delivery.id, Delivery.state).where(Delivery.send_id == sent.send_id)
            ).all()
        )
        entry = session.scalars(
            select(AuditEntry).where(AuditEntry.action == "deliveries.retried")
        ).one()
    assert [states[i] for i in spam] == [DeliveryState.PENDING, DeliveryState.PENDING]
    assert list(states.values()).count(DeliveryState.FAILED) == 3
    assert list(states.values()).count(DeliveryState.DEFERRED) == 2
    assert entry.actor == OFFICER and entry.after is not None
    assert entry.after["deliveries"] == 2
    # Nothing of that group is left: asking again retries nothing and says so.
    again = client.get(url, params={"send_id": sent.send_id, "state": "failed", "reason": SPAM})
    assert "No failed delivery with this reason is left to retry." in again.text
    assert client.post(url, data=form).status_code == 303
    assert "No failed delivery of send" in client.get(report_url(sent)).text
    # A deferral is not a person's to retry, and a reason longer than any group's is refused.
    deferred = client.post(url, data=form | {"state": "deferred"})
    assert deferred.status_code == 400 and "state" in deferred.text
    too_long = client.post(url, data=form | {"reason": "x" * 401})
    assert too_long.status_code == 400 and "reason" in too_long.text
    with web_runtime.sessions() as session:
        assert (
            session.scalar(
                select(func.count()).where(
                    Delivery.send_id == sent.send_id, Delivery.state == DeliveryState.FAILED
                )
            )
            == 3
        )


def test_one_recipients_history_and_every_delivery_as_csv_with_no_address_in_the_logs(
    client: TestClient,
    people: dict[Role, str],
    web_runtime: Runtime,
    caplog: pytest.LogCaptureFixture,
) -> None:
    sent = sent_release(web_runtime, contacts=9, failed=2, deferred=1)
    other = sent_release(web_runtime, contacts=1, failed=0, deferred=0, headline="Another")
    with web_runtime.sessions.begin() as session:
        session.execute(
            update(Delivery)
            .where(Delivery.send_id == sent.send_id, Delivery.state == DeliveryState.SENT)
            .values(smtp_reply='=HYPERLINK("http://example.net")')
        )
        failed_email = session.scalar(
            select(Contact.email)
            .join(Delivery, Delivery.contact_id == Contact.id)
            .where(Delivery.send_id == sent.send_id, Delivery.state == DeliveryState.FAILED)
        )
    assert failed_email is not None
    log_in(client, VIEWER)
    history = f"{report_url(sent)}/recipient"

    page = client.get(history, params={"email": failed_email.upper()})

    assert page.status_code == 200
    assert f"550 5.1.1 &lt;{failed_email}&gt;: mailbox unavailable" in page.text
    assert 'class="dstate dstate-failed"' in page.text and "1 attempt" in page.text
    unknown = client.get(history, params={"email": "nobody@example.org"})
    assert unknown.status_code == 404 and "nobody@example.org" in unknown.text
    only_other = client.get(f"{report_url(other)}/recipient", params={"email": sent.emails[5]})
    assert "No delivery of this release went to" in only_other.text

    with caplog.at_level(logging.DEBUG):
        response = client.get(f"{report_url(sent)}/deliveries.csv")

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    assert "attachment" in response.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(response.text)))
    assert sorted(row["email"] for row in rows) == sorted(sent.emails)
    assert {row["state"] for row in rows} == {"sent", "failed", "deferred"}
    accepted = [row for row in rows if row["state"] == "sent"]
    # A reply that a spreadsheet would run as a formula is written as text.
    assert all(row["smtp_reply"].startswith("'=HYPERLINK") for row in accepted)
    assert all(0 < float(row["seconds_after_embargo"]) < 5 for row in accepted)
    logged = "\n".join(f"{record.getMessage()} {record.__dict__}" for record in caplog.records)
    assert "delivery export started" in logged
    assert not any(email in logged for email in sent.emails)

    for suffix in ("", "/live", "/deliveries.csv", "/recipient?email=a@example.org"):
        assert client.get(f"/releases/999/report{suffix}").status_code == 404
