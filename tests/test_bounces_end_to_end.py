"""End to end: the relay accepts a message for a mailbox that does not exist, the remote
server's bounce comes back to `distributor bounces serve` (a process of its own), and the
address is left out of the next send."""

from __future__ import annotations

import smtplib
import socket
import time
from datetime import timedelta
from pathlib import Path

import pytest

from distributor.cli.status_view import status_lines
from distributor.clock import ManualClock
from distributor.demo import free_port
from distributor.processes import ManagedProcess, start_process
from distributor.runtime import Runtime
from distributor.states import DeliveryState
from distributor.status import send_statuses
from distributor.suppression import is_suppressed
from tests.support.engine import (
    EMBARGO,
    armed_send,
    batch_job,
    deliveries_by_email,
    run_batch,
    run_tick,
    schedule,
    send_row,
    wait_until,
)
from tests.support.smtp import RecordingSMTPServer
from tests.test_bounces import forge, report

pytestmark = pytest.mark.slow


def wait_until_listening(process: ManagedProcess, port: int, *, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.process.poll() is not None:
            raise AssertionError(f"bounces serve exited early:\n{process.log_text()}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.05)
    raise AssertionError(f"bounces serve did not listen within {timeout} s:\n{process.log_text()}")


def test_a_bounce_after_acceptance_marks_the_delivery_and_keeps_the_address_out_of_the_next_send(
    runtime: Runtime, smtp_server: RecordingSMTPServer, tmp_path: Path
) -> None:
    # Given a send whose messages the relay accepted, one of them for a dead mailbox
    rt = runtime
    send_id, emails = armed_send(rt, 3)
    dead = emails[1]
    transport = rt.open_transport()
    try:
        run_batch(rt, batch_job(rt, send_id), ManualClock(EMBARGO), transport)
    finally:
        transport.close()
    received = {r.recipient: r for r in smtp_server.wait_for(3, timeout=10)}
    delivery = deliveries_by_email(rt, send_id)[dead]
    assert delivery.state is DeliveryState.SENT
    return_path = received[dead].mail_from
    assert return_path.startswith("bounces+")

    # When the remote server's bounce comes back to the return path the message carried
    port = free_port()
    server = start_process(
        "bounces",
        ["bounces", "serve", "--host", "127.0.0.1", "--port", str(port)],
        settings=rt.settings,
        log_dir=tmp_path / "logs",
    )
    try:
        wait_until_listening(server, port)
        with smtplib.SMTP("127.0.0.1", port, timeout=10) as client:
            # A forged return path is refused at RCPT, and the server carries on.
            with pytest.raises(smtplib.SMTPRecipientsRefused):
                client.sendmail("", [forge(return_path)], b"Subject: forged\r\n\r\nx\r\n")
            client.sendmail(
                "", [return_path], report("postfix_user_unknown.eml", rt, send_id, delivery, dead)
            )

        # Then that delivery becomes bounced and the address is suppressed
        wait_until(
            lambda: deliveries_by_email(rt, send_id)[dead].state is DeliveryState.BOUNCED,
            timeout=20,
            what="the delivery to become bounced",
        )
    finally:
        server.stop()
    assert "Traceback" not in server.log_text()
    others = [e for e in emails if e != dead]
    assert {e: d.state for e, d in deliveries_by_email(rt, send_id).items()} == {
        dead: DeliveryState.BOUNCED,
        **{e: DeliveryState.SENT for e in others},
    }
    with rt.sessions() as session:
        assert is_suppressed(session, dead)
        (shown,) = send_statuses(session, send_id)
    # The press officer sees it in the send's status.
    assert shown.came_back == {"hard": 1}
    assert any(
        f"came back to the return path: 1 hard (`distributor bounces list --send {send_id}`)"
        in line
        for line in status_lines(shown, now=EMBARGO, detailed=True)
    )

    # And the next send of the release, once armed and sent, leaves them out
    next_send = schedule(rt, send_row(rt, send_id).release_id)
    assert run_tick(rt, EMBARGO - timedelta(seconds=10)).armed == [next_send]
    assert sorted(deliveries_by_email(rt, next_send)) == sorted(others)
    transport = rt.open_transport()
    try:
        run_batch(rt, batch_job(rt, next_send), ManualClock(EMBARGO), transport)
    finally:
        transport.close()
    second_round = smtp_server.wait_for(5, timeout=10)[3:]
    assert sorted(r.recipient for r in second_round) == sorted(others)
