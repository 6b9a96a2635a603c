"""Bounces, complaints and automatic replies that come back to the VERP return path: each
report ends where it should, the same report twice counts once, a forged address is
refused, and nothing that arrives stops the receiver."""

from __future__ import annotations

import io
import json
import logging
import mailbox
import os
import smtplib
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from distributor.bounces.kinds import BounceKind
from distributor.bounces.listing import list_bounces
from distributor.bounces.processing import BounceProcessor, Processed, process_message
from distributor.bounces.receiver import start_receiver
from distributor.bounces.reputation import ReputationLimits
from distributor.bounces.sources import read_messages
from distributor.cli import main
from distributor.cli.status_view import status_lines
from distributor.clock import ManualClock
from distributor.demo import free_port
from distributor.mail.builder import message_id_for
from distributor.models import Bounce, Delivery, Suppression
from distributor.runtime import Runtime
from distributor.send_control import resume_send
from distributor.states import DeliveryState, SendState
from distributor.status import send_statuses
from distributor.suppression import is_suppressed
from distributor.vocabulary import SuppressionReason
from tests.support.engine import (
    EMBARGO,
    add_audience,
    deliveries_by_email,
    delivery_history,
    run_tick,
    schedule,
    send_by_hand,
    send_row,
)

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "bounces"
# Reports arrive a while after the messages went out at the embargo.
ARRIVAL = EMBARGO + timedelta(hours=1)
HARD_BOUNCES = {
    "postfix_user_unknown.eml": "5.1.1",
    "exim_user_unknown.eml": "5.1.1",
    "microsoft365_recipient_not_found.eml": "5.1.10",
    "gmail_address_not_found.eml": "5.1.1",
    "qmail_nonstandard.eml": "5.1.1",
}
# A guard that judges from the first few messages, so that small sends show it.
EAGER_GUARD = ReputationLimits(minimum_delivered=10)


@dataclass(frozen=True)
class Sent:
    """A send whose every message the relay accepted at the embargo."""

    send_id: int
    release_id: int
    deliveries: dict[str, Delivery]  # by address

    def delivery(self, index: int = 0) -> tuple[str, Delivery]:
        return list(self.deliveries.items())[index]


def send_to_everyone(rt: Runtime, count: int) -> Sent:
    release_id, _ = add_audience(rt, count)
    return send_again(rt, release_id)


def send_again(rt: Runtime, release_id: int) -> Sent:
    """Another send of the release to the same list, armed and sent by hand."""
    send_id = schedule(rt, release_id)
    run_tick(rt, EMBARGO - timedelta(seconds=10))
    send_by_hand(rt, send_id, 0, at=EMBARGO)
    return Sent(send_id, release_id, deliveries_by_email(rt, send_id))


def report(
    name: str,
    rt: Runtime,
    send_id: int,
    delivery: Delivery,
    email: str,
    *,
    verp: str | None = None,
    nonce: str = "0",
) -> bytes:
    """The fixture, as it would come back for this delivery."""
    text = (FIXTURES / name).read_text(encoding="utf-8")
    values = {
        "@@VERP@@": verp or rt.bounces.address(send_id=send_id, delivery_id=delivery.id),
        "@@RECIPIENT@@": email,
        "@@MESSAGE_ID@@": message_id_for(delivery.id, send_id, rt.settings.message_id_domain),
        "@@NONCE@@": nonce,
    }
    for placeholder, value in values.items():
        text = text.replace(placeholder, value)
    return text.replace("\n", "\r\n").encode("utf-8")  # as on the wire


def process(
    rt: Runtime,
    data: bytes,
    *,
    envelope: tuple[str, ...] = (),
    at: datetime = ARRIVAL,
    limits: ReputationLimits | None = None,
) -> Processed:
    with rt.sessions.begin() as session:
        return process_message(
            session,
            data,
            verp=rt.bounces,
            message_id_domain=rt.settings.message_id_domain,
            now=at,
            source="test",
            envelope_recipients=envelope,
            limits=limits,
        )


def state_of(rt: Runtime, delivery_id: int) -> DeliveryState:
    with rt.sessions() as session:
        delivery = session.get(Delivery, delivery_id)
        assert delivery is not None
        return delivery.state


def suppression_reason(rt: Runtime, email: str) -> SuppressionReason | None:
    with rt.sessions() as session:
        if not is_suppressed(session, email):
            return None
        return session.scalars(
            select(Suppression.reason).where(Suppression.email_key == email.lower())
        ).one()


def bounces(rt: Runtime) -> list[Bounce]:
    with rt.sessions() as session:
        return list(session.scalars(select(Bounce).order_by(Bounce.id)))


def forge(address: str) -> str:
    """The same VERP address with one hex digit of its MAC changed."""
    local, _, domain = address.partition("@")
    last = "0" if local[-1] != "0" else "1"
    return f"{local[:-1]}{last}@{domain}"


# --- each report ends where it should -------------------------------------------------


@pytest.mark.parametrize(("fixture", "status"), sorted(HARD_BOUNCES.items()))
def test_a_hard_bounce_marks_the_delivery_bounced_and_suppresses_the_address(
    runtime: Runtime, fixture: str, status: str
) -> None:
    sent = send_to_everyone(runtime, 3)
    email, delivery = sent.delivery(1)

    processed = process(runtime, report(fixture, runtime, sent.send_id, delivery, email))

    assert processed.kind is BounceKind.HARD
    assert processed.delivery_id == delivery.id
    assert state_of(runtime, delivery.id) is DeliveryState.BOUNCED
    last_state, detail = delivery_history(runtime, delivery.id)[-1]
    assert last_state is DeliveryState.BOUNCED
    assert detail is not None and status in detail and email not in detail
    assert suppression_reason(runtime, email) is SuppressionReason.HARD_BOUNCED
    # Nobody else is touched.
    others = [e for e in sent.deliveries if e != email]
    assert [state_of(runtime, sent.deliveries[e].id) for e in others] == [DeliveryState.SENT] * 2
    assert not any(suppression_reason(runtime, e) for e in others)
    (row,) = bounces(runtime)
    assert (row.kind, row.status, row.send_id) == (BounceKind.HARD, status, sent.send_id)


def test_a_bounce_returning_a_large_release_is_read_from_its_report(runtime: Runtime) -> None:
    sent = send_to_everyone(runtime, 1)
    email, delivery = sent.delivery()
    data = report("exim_user_unknown.eml", runtime, sent.send_id, delivery, email)
    attachment = b"QUJD" * 19 + b"\r\n"  # a base64 line
    data = data.replace(b"First paragraph of the release.", attachment * 80_000)

    processed = process(runtime, data)

    assert (processed.kind, processed.delivery_id) == (BounceKind.HARD, delivery.id)
    (row,) = bounces(runtime)
    assert row.size == len(data) > 6_000_000


def test_an_abuse_report_suppresses_the_address_as_complained(runtime: Runtime) -> None:
    # An ARF report reaches the feedback-loop mailbox, not the VERP address: it is matched by
    # the VERP address it gives as the original envelope sender.
    sent = send_to_everyone(runtime, 2)
    email, delivery = sent.delivery()

    processed = process(
        runtime, report("arf_abuse_complaint.eml", runtime, sent.send_id, delivery, email)
    )

    assert (processed.kind, processed.delivery_id) == (BounceKind.COMPLAINT, delivery.id)
    assert suppression_reason(runtime, email) is SuppressionReason.COMPLAINED
    assert state_of(runtime, delivery.id) is DeliveryState.SENT  # it was delivered


def test_an_out_of_office_reply_is_not_a_bounce(runtime: Runtime) -> None:
    sent = send_to_everyone(runtime, 2)
    email, delivery = sent.delivery()

    processed = process(
        runtime, report("out_of_office.eml", runtime, sent.send_id, delivery, email)
    )

    assert (processed.kind, processed.delivery_id) == (BounceKind.AUTO_REPLY, delivery.id)
    assert "not a bounce" in processed.outcome
    assert state_of(runtime, delivery.id) is DeliveryState.SENT
    assert suppression_reason(runtime, email) is None
    # Nothing of the person's reply is kept beyond what says what it was.
    (row,) = bounces(runtime)
    assert row.headers is None and row.recipient is None


def test_a_delay_warning_changes_nothing(runtime: Runtime) -> None:
    sent = send_to_everyone(runtime, 2)
    email, delivery = sent.delivery()

    processed = process(
        runtime, report("postfix_delayed.eml", runtime, sent.send_id, delivery, email)
    )

    assert processed.kind is BounceKind.WARNING
    assert state_of(runtime, delivery.id) is DeliveryState.SENT
    assert suppression_reason(runtime, email) is None


def test_three_soft_bounces_within_30_days_suppress_and_a_repeat_counts_once(
    runtime: Runtime,
) -> None:
    first = send_to_everyone(runtime, 2)
    email, _ = first.delivery()
    sends = [first, send_again(runtime, first.release_id), send_again(runtime, first.release_id)]

    def soft_bounce(sent: Sent, at: datetime) -> Processed:
        delivery = sent.deliveries[email]
        data = report(
            "postfix_mailbox_full.eml",
            runtime,
            sent.send_id,
            delivery,
            email,
            nonce=str(sent.send_id),
        )
        return process(runtime, data, at=at)

    # The first send's bounce arrives twice (a mailbox read again): it counts once.
    assert soft_bounce(sends[0], ARRIVAL).kind is BounceKind.SOFT
    again = soft_bounce(sends[0], ARRIVAL + timedelta(minutes=5))
    assert again.duplicate and "already processed" in again.outcome
    second = soft_bounce(sends[1], ARRIVAL + timedelta(days=10))
    assert "2 of 3" in second.outcome
    assert suppression_reason(runtime, email) is None
    assert state_of(runtime, sends[0].deliveries[email].id) is DeliveryState.SENT

    third = soft_bounce(sends[2], ARRIVAL + timedelta(days=20))

    assert "3 of 3" in third.outcome
    assert suppression_reason(runtime, email) is SuppressionReason.HARD_BOUNCED
    assert len(bounces(runtime)) == 3


def test_soft_bounces_further_apart_than_30_days_do_not_suppress(runtime: Runtime) -> None:
    first = send_to_everyone(runtime, 1)
    email, _ = first.delivery()
    sends = [first, send_again(runtime, first.release_id), send_again(runtime, first.release_id)]

    for n, sent in enumerate(sends):
        delivery = sent.deliveries[email]
        data = report(
            "postfix_mailbox_full.eml", runtime, sent.send_id, delivery, email, nonce=str(n)
        )
        process(runtime, data, at=ARRIVAL + timedelta(days=20 * n))

    assert suppression_reason(runtime, email) is None


def test_the_same_hard_bounce_twice_is_applied_once(runtime: Runtime) -> None:
    sent = send_to_everyone(runtime, 2)
    email, delivery = sent.delivery()
    data = report("postfix_user_unknown.eml", runtime, sent.send_id, delivery, email)
    verp = runtime.bounces.address(send_id=sent.send_id, delivery_id=delivery.id)

    first = process(runtime, data, envelope=(verp,))
    # Read again from the mailbox the relay also filed it in: the same report.
    second = process(runtime, data)

    assert not first.duplicate and second.duplicate
    assert second.bounce_id == first.bounce_id
    assert [s for s, _ in delivery_history(runtime, delivery.id)].count(DeliveryState.BOUNCED) == 1
    assert len(bounces(runtime)) == 1


def test_a_persons_reply_to_the_return_path_changes_nothing(runtime: Runtime) -> None:
    sent = send_to_everyone(runtime, 1)
    email, delivery = sent.delivery()
    verp = runtime.bounces.address(send_id=sent.send_id, delivery_id=delivery.id)
    data = (
        f"From: {email}\r\nTo: {verp}\r\nSubject: Re: Charity welcomes report\r\n"
        "Message-ID: <reply-1@newsroom.example.com>\r\n\r\nCan I have an interview?\r\n"
    ).encode()

    processed = process(runtime, data, envelope=(verp,))

    assert (processed.kind, processed.delivery_id) == (BounceKind.UNKNOWN, delivery.id)
    assert "nothing changed" in processed.outcome
    assert state_of(runtime, delivery.id) is DeliveryState.SENT
    assert suppression_reason(runtime, email) is None
    (row,) = bounces(runtime)
    assert row.headers is not None and "Subject: Re: Charity welcomes report" in row.headers
    assert "interview" not in row.headers


# --- what cannot be matched is kept, with the reason ----------------------------------


def test_a_forged_verp_address_is_rejected_even_when_the_rest_points_at_a_delivery(
    runtime: Runtime,
) -> None:
    sent = send_to_everyone(runtime, 2)
    email, delivery = sent.delivery()
    forged = forge(runtime.bounces.address(send_id=sent.send_id, delivery_id=delivery.id))
    # Our Message-ID and the right recipient inside, but the MAC of the address is wrong.
    data = report("postfix_user_unknown.eml", runtime, sent.send_id, delivery, email, verp=forged)

    processed = process(runtime, data, envelope=(forged,))

    assert processed.forged and not processed.matched
    assert "forged" in processed.outcome
    assert state_of(runtime, delivery.id) is DeliveryState.SENT
    assert suppression_reason(runtime, email) is None
    (row,) = bounces(runtime)
    assert row.delivery_id is None and "forged" in row.outcome


def test_without_a_verp_address_our_message_id_matches_only_with_the_right_recipient(
    runtime: Runtime,
) -> None:
    # A relay that rewrote the return path to a plain mailbox: no VERP address anywhere.
    sent = send_to_everyone(runtime, 3)
    (email, delivery), (other_email, other) = sent.delivery(0), sent.delivery(1)

    def plain(data: bytes) -> bytes:
        verp = runtime.bounces.address(send_id=sent.send_id, delivery_id=delivery.id)
        return data.replace(verp.encode(), b"bounces@example.org")

    trusted = process(
        runtime, plain(report("postfix_user_unknown.eml", runtime, sent.send_id, delivery, email))
    )
    # Someone else's address with this delivery's Message-ID: not trusted.
    mismatched = process(
        runtime,
        plain(report("gmail_address_not_found.eml", runtime, sent.send_id, delivery, other_email)),
    )

    assert trusted.delivery_id == delivery.id
    assert state_of(runtime, delivery.id) is DeliveryState.BOUNCED
    assert not mismatched.matched and "not trusted" in mismatched.outcome
    assert state_of(runtime, other.id) is DeliveryState.SENT
    assert suppression_reason(runtime, other_email) is None


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(b"\x00\xff\xfe garbage \x80\x81" * 50, id="garbage bytes"),
        pytest.param(b"", id="empty"),
        pytest.param(b"just some text with no header at all\r\n", id="no headers"),
        pytest.param(
            b"From: someone@example.net\r\nSubject: hello\r\n\r\n" + b"x" * 2_000_000 + b"\r\n",
            id="a huge line",
        ),
        pytest.param(
            b"Content-Type: multipart/report; report-type=delivery-status; boundary=x\r\n\r\n"
            b"--x\r\nContent-Type: message/delivery-status\r\n\r\nAction: failed\r\n"
            b"Status: 9.9.9.9\r\nFinal-Recipient: \xff\r\n--x",
            id="a broken report",
        ),
    ],
)
def test_a_malformed_message_is_kept_for_an_admin(runtime: Runtime, data: bytes) -> None:
    processed = process(runtime, data)

    assert not processed.matched
    assert processed.outcome.startswith("kept for an admin: ")
    (row,) = bounces(runtime)
    assert row.delivery_id is None and row.size == len(data)
    # Little is kept of it: some headers at most, never the body.
    assert len(row.headers or "") <= 1024
    assert b"x" * 100 not in (row.headers or "").encode()


def test_an_unmatched_bounce_keeps_the_reason_and_little_else(runtime: Runtime) -> None:
    sent = send_to_everyone(runtime, 1)
    email, delivery = sent.delivery()
    data = report("exim_user_unknown.eml", runtime, sent.send_id, delivery, email)
    # Delivered to an address that is not ours at all, with no Message-ID of ours.
    data = data.replace(b"delivery.", b"unrelated.")
    verp = runtime.bounces.address(send_id=sent.send_id, delivery_id=delivery.id)
    data = data.replace(verp.encode(), b"someone@elsewhere.example")

    processed = process(runtime, data)

    (row,) = bounces(runtime)
    assert not processed.matched
    assert row.outcome == (
        "kept for an admin: no bounce address of ours and no Message-ID of ours in it"
    )
    assert (row.kind, row.status, row.recipient) == (BounceKind.HARD, "5.1.1", email)
    assert row.headers is not None and "Subject: Mail delivery failed" in row.headers
    kept = " ".join(str(v) for v in (row.headers, row.diagnostic, row.outcome))
    assert "First paragraph of the release" not in kept
    assert state_of(runtime, delivery.id) is DeliveryState.SENT


# --- the reputation guard -------------------------------------------------------------


def test_a_send_past_the_hard_bounce_limit_pauses_itself_and_says_why(
    runtime: Runtime, caplog: pytest.LogCaptureFixture
) -> None:
    sent = send_to_everyone(runtime, 20)
    hard = "postfix_user_unknown.eml"

    def bounce(index: int) -> Processed:
        email, delivery = sent.delivery(index)
        return process(
            runtime, report(hard, runtime, sent.send_id, delivery, email), limits=EAGER_GUARD
        )

    # One of twenty is 5 %: at the limit, not past it.
    assert bounce(0).paused is None
    assert send_row(runtime, sent.send_id).state is SendState.ARMED

    with caplog.at_level(logging.WARNING, logger="distributor.bounces"):
        paused = bounce(1)

    reason = (
        "10.0 % of delivered messages bounced hard (2 of 20; limit 5 %), so the reputation "
        f"guard paused it; look at `distributor bounces list --send {sent.send_id}`, then "
        f"`distributor send resume {sent.send_id}` or cancel it"
    )
    assert paused.paused == reason
    with runtime.sessions() as session:
        (status,) = send_statuses(session, sent.send_id)
    assert (status.state, status.hold_reason) == (SendState.PAUSED, reason)
    assert f"  paused: {reason}" in status_lines(status, now=ARRIVAL, detailed=False)
    assert "paused by the reputation guard: 10.0 % of delivered messages bounced hard" in (
        caplog.text
    )


def test_a_send_past_the_complaint_limit_pauses_and_stays_resumed_once_an_admin_resumes(
    runtime: Runtime,
) -> None:
    sent = send_to_everyone(runtime, 20)
    arf = "arf_abuse_complaint.eml"

    def complaint(index: int) -> Processed:
        email, delivery = sent.delivery(index)
        return process(
            runtime, report(arf, runtime, sent.send_id, delivery, email), limits=EAGER_GUARD
        )

    paused = complaint(0).paused
    assert paused is not None and paused.startswith(
        "5.0 % of delivered messages were reported as spam (1 of 20; limit 0.3 %)"
    )
    with runtime.sessions.begin() as session:
        resume_send(session, send_id=sent.send_id, now=ARRIVAL, arm_lead=timedelta(seconds=10))

    assert complaint(1).paused is None
    assert send_row(runtime, sent.send_id).state is SendState.ARMED


def test_the_guard_waits_for_enough_delivered_messages(runtime: Runtime) -> None:
    sent = send_to_everyone(runtime, 5)
    email, delivery = sent.delivery()

    processed = process(
        runtime,
        report("postfix_user_unknown.eml", runtime, sent.send_id, delivery, email),
        limits=ReputationLimits(),
    )

    assert processed.paused is None
    assert send_row(runtime, sent.send_id).state is SendState.ARMED


# --- the SMTP receiver ----------------------------------------------------------------


@pytest.fixture
def receiver(runtime: Runtime) -> Iterator[int]:
    processor = BounceProcessor(
        sessions=runtime.sessions,
        verp=runtime.bounces,
        message_id_domain=runtime.settings.message_id_domain,
        clock=ManualClock(ARRIVAL),
        patience=0.5,
    )
    port = free_port()
    controller = start_receiver(processor, runtime.bounces, host="127.0.0.1", port=port)
    yield port
    controller.stop()


def smtp_send(port: int, recipient: str, data: bytes) -> None:
    with smtplib.SMTP("127.0.0.1", port, timeout=10) as client:
        client.sendmail("", [recipient], data)


def test_the_receiver_refuses_addresses_that_are_not_ours_at_rcpt(
    runtime: Runtime, receiver: int
) -> None:
    sent = send_to_everyone(runtime, 1)
    email, delivery = sent.delivery()
    verp = runtime.bounces.address(send_id=sent.send_id, delivery_id=delivery.id)
    data = report("postfix_user_unknown.eml", runtime, sent.send_id, delivery, email)

    for address in (forge(verp), "postmaster@example.org", "bounces+1.1@example.org", email):
        with pytest.raises(smtplib.SMTPRecipientsRefused) as refused:
            smtp_send(receiver, address, data)
        ((code, _),) = refused.value.recipients.values()
        assert code == 550, address

    assert bounces(runtime) == []
    assert state_of(runtime, delivery.id) is DeliveryState.SENT


def test_every_kind_of_report_over_smtp_ends_where_it_should_and_the_receiver_stays_up(
    runtime: Runtime, receiver: int
) -> None:
    sent = send_to_everyone(runtime, 8)
    expected: dict[str, tuple[DeliveryState, SuppressionReason | None]] = {}
    messages = [*sorted(HARD_BOUNCES), "arf_abuse_complaint.eml", "out_of_office.eml"]
    for index, name in enumerate(messages):
        email, delivery = sent.delivery(index)
        verp = runtime.bounces.address(send_id=sent.send_id, delivery_id=delivery.id)
        smtp_send(receiver, verp, report(name, runtime, sent.send_id, delivery, email))
        expected[email] = {
            "arf_abuse_complaint.eml": (DeliveryState.SENT, SuppressionReason.COMPLAINED),
            "out_of_office.eml": (DeliveryState.SENT, None),
        }.get(name, (DeliveryState.BOUNCED, SuppressionReason.HARD_BOUNCED))
    # Then what should never crash it, each to a valid address of ours.
    email, delivery = sent.delivery(len(messages))
    verp = runtime.bounces.address(send_id=sent.send_id, delivery_id=delivery.id)
    smtp_send(receiver, verp, b"\x00\xff\xfe garbage \x80")
    smtp_send(receiver, verp, b"no headers, only this line\r\n")
    with pytest.raises(smtplib.SMTPDataError) as too_long:
        smtp_send(receiver, verp, b"Subject: long\r\n\r\n" + b"y" * 100_000 + b"\r\n")
    assert too_long.value.smtp_code == 500
    expected[email] = (DeliveryState.SENT, None)

    actual = {
        e: (state_of(runtime, d.id), suppression_reason(runtime, e))
        for e, d in sent.deliveries.items()
        if e in expected
    }
    assert actual == expected
    kinds = [b.kind for b in bounces(runtime)]
    assert kinds.count(BounceKind.UNKNOWN) == 2  # the garbage and the headless one, kept
    # And it still takes the next report.
    smtp_send(
        receiver, verp, report("postfix_user_unknown.eml", runtime, sent.send_id, delivery, email)
    )
    assert state_of(runtime, delivery.id) is DeliveryState.BOUNCED


def test_the_receiver_asks_to_try_again_when_it_cannot_record(
    runtime: Runtime, receiver: int
) -> None:
    sent = send_to_everyone(runtime, 1)
    email, delivery = sent.delivery()
    verp = runtime.bounces.address(send_id=sent.send_id, delivery_id=delivery.id)
    data = report("postfix_user_unknown.eml", runtime, sent.send_id, delivery, email)
    with runtime.engine.begin() as connection:
        connection.exec_driver_sql("ALTER TABLE bounces RENAME TO bounces_away")
    try:
        with pytest.raises(smtplib.SMTPDataError) as later:
            smtp_send(receiver, verp, data)
        assert later.value.smtp_code == 451
    finally:
        with runtime.engine.begin() as connection:
            connection.exec_driver_sql("ALTER TABLE bounces_away RENAME TO bounces")

    # The sending server tries again later, and then it is recorded.
    smtp_send(receiver, verp, data)
    assert state_of(runtime, delivery.id) is DeliveryState.BOUNCED


# --- mailboxes and the command line ---------------------------------------------------


def test_messages_are_read_from_an_eml_an_mbox_a_maildir_and_a_folder(tmp_path: Path) -> None:
    one, two = b"Subject: one\n\nfirst\n", b"Subject: two\n\nsecond\n"
    (tmp_path / "one.eml").write_bytes(one)
    box = mailbox.mbox(tmp_path / "bounces.mbox")
    for data in (one, two):
        box.add(data)
    box.close()
    maildir = mailbox.Maildir(tmp_path / "Maildir")
    for data in (one, two):
        maildir.add(data)
    folder = tmp_path / "folder"
    folder.mkdir()
    (folder / "a.eml").write_bytes(one)
    (folder / "b.eml").write_bytes(two)

    def subjects(path: Path) -> list[bytes]:
        return [m.data.split(b"\n", 1)[0] for m in read_messages(str(path))]

    assert subjects(tmp_path / "one.eml") == [b"Subject: one"]
    assert subjects(tmp_path / "bounces.mbox") == [b"Subject: one", b"Subject: two"]
    assert sorted(subjects(tmp_path / "Maildir")) == [b"Subject: one", b"Subject: two"]
    assert subjects(folder) == [b"Subject: one", b"Subject: two"]


def run_cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    sys.argv = ["distributor", *args]
    try:
        main()
        status = 0
    except SystemExit as exit_:
        status = int(exit_.code or 0)
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    return status, out, err


@pytest.fixture
def installation(
    runtime: Runtime, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> Callable[..., tuple[int, str, str]]:
    for name in list(os.environ):
        if name.startswith("DISTRIBUTOR_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("DISTRIBUTOR_DATABASE_URL", runtime.settings.effective_database_url)
    monkeypatch.setenv("DISTRIBUTOR_DATA_DIR", str(tmp_path / "var"))
    monkeypatch.chdir(tmp_path)
    return run_cli


def test_process_reads_a_mailbox_once_and_list_shows_what_came_back(
    runtime: Runtime,
    installation: Callable[..., tuple[int, str, str]],
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
) -> None:
    sent = send_to_everyone(runtime, 2)
    email, delivery = sent.delivery()
    box = mailbox.mbox(tmp_path / "bounces.mbox")
    box.add(report("postfix_user_unknown.eml", runtime, sent.send_id, delivery, email))
    box.add(b"From: nobody@example.net\nSubject: hello\n\nnot a bounce\n")
    box.close()

    status, out, _ = installation(capsys, "bounces", "process", str(tmp_path / "bounces.mbox"))
    assert status == 0
    assert out.splitlines() == [
        f"bounces.mbox#1: hard (delivery {delivery.id} of send {sent.send_id}): "
        f"delivery {delivery.id} bounced; address suppressed (hard_bounced)",
        "bounces.mbox#2: unknown (not matched): kept for an admin: no bounce address of ours "
        "and no Message-ID of ours in it",
        "2 message(s): 1 matched, 1 kept for an admin, 0 processed before",
    ]
    status, out, _ = installation(capsys, "bounces", "process", str(tmp_path / "bounces.mbox"))
    assert (
        out.splitlines()[-1] == "2 message(s): 0 matched, 0 kept for an admin, 2 processed before"
    )

    status, out, _ = installation(capsys, "bounces", "list", "--json")
    listed = json.loads(out)
    # Newest first.
    assert [(b["kind"], b["matched"], b["email"]) for b in listed] == [
        ("unknown", False, None),
        ("hard", True, email),
    ]
    status, out, _ = installation(capsys, "bounces", "list", "--send", str(sent.send_id), "--json")
    assert [b["delivery_id"] for b in json.loads(out)] == [delivery.id]
    status, out, _ = installation(capsys, "bounces", "list", "--unmatched")
    assert "unmatched" in out and "no bounce address of ours" in out and email not in out


def test_process_reads_standard_input(
    runtime: Runtime,
    installation: Callable[..., tuple[int, str, str]],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    sent = send_to_everyone(runtime, 1)
    email, delivery = sent.delivery()
    data = report("qmail_nonstandard.eml", runtime, sent.send_id, delivery, email)

    class Stdin:
        buffer = io.BytesIO(b"From MAILER-DAEMON Tue Mar  4 09:30:09 2031\n" + data)

    monkeypatch.setattr(sys, "stdin", Stdin)
    status, out, _ = installation(capsys, "bounces", "process", "-", "--json")

    assert status == 0
    ((result),) = json.loads(out)
    assert (result["source"], result["kind"], result["delivery_id"]) == (
        "stdin",
        "hard",
        delivery.id,
    )
    assert state_of(runtime, delivery.id) is DeliveryState.BOUNCED


def test_process_refuses_what_is_not_a_mailbox(
    installation: Callable[..., tuple[int, str, str]],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    (tmp_path / "empty").mkdir()
    monkeypatch.setattr(sys, "stdin", io.StringIO(""))
    status, _, err = installation(capsys, "bounces", "process", "-")
    assert (status, err) == (1, "error: stdin is empty: there is no message to process\n")
    for path in ("nowhere.mbox", str(tmp_path / "empty")):
        status, _, err = installation(capsys, "bounces", "process", path)
        assert status == 1 and err.startswith("error: "), err
    status, _, err = installation(capsys, "bounces", "list", "--send", "0")
    assert status == 2


def test_list_of_an_installation_where_nothing_came_back(
    installation: Callable[..., tuple[int, str, str]], capsys: pytest.CaptureFixture[str]
) -> None:
    assert installation(capsys, "bounces", "list") == (0, "nothing came back\n", "")
    assert json.loads(installation(capsys, "bounces", "list", "--json")[1]) == []


def test_list_names_each_report_and_its_delivery(runtime: Runtime) -> None:
    sent = send_to_everyone(runtime, 2)
    email, delivery = sent.delivery()
    process(runtime, report("gmail_address_not_found.eml", runtime, sent.send_id, delivery, email))
    with runtime.sessions() as session:
        (entry,) = list_bounces(session, send_id=sent.send_id)
    assert (entry.kind, entry.delivery_id, entry.email, entry.status) == (
        BounceKind.HARD,
        delivery.id,
        email,
        "5.1.1",
    )
    assert entry.diagnostic is not None and "does not exist" in entry.diagnostic
