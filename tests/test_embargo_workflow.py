"""The press office's embargo workflow with real worker and scheduler processes and a real
SMTP server: a pre-brief before the public send, and the embargo moved, lifted and
withdrawn, with the notices to those who hold the embargoed copy."""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Callable
from datetime import timedelta

import pytest

from distributor.contacts.editing import get_contact
from distributor.embargo_changes import lift_embargo, move_embargo, withdraw_release
from distributor.prebriefs import PrebriefRequest
from distributor.processes import ManagedProcess
from distributor.runtime import Runtime
from distributor.scheduling import ScheduledSend, schedule_send
from distributor.states import SendState
from tests.conftest import now, seconds_from_now
from tests.support.smtp import RecordingSMTPServer
from tests.test_end_to_end import (  # noqa: F401 - fixtures
    audience,
    stack,
    stack_runtime,
    wait_for_send_state,
)

pytestmark = pytest.mark.slow

Start = Callable[..., ManagedProcess]
LEAD = timedelta(seconds=10)


def vet(rt: Runtime, emails: list[str], *, breaker: bool = False) -> None:
    with rt.sessions.begin() as session:
        for email in emails:
            contact = get_contact(session, email)
            contact.embargo_vetted = True
            contact.embargo_breaker = breaker


def schedule_with_prebrief(rt: Runtime, release_id: int, lift_in: float) -> ScheduledSend:
    with rt.sessions.begin() as session:
        return schedule_send(
            session,
            release_id=release_id,
            list_names=["Home affairs", "Crime"],
            embargo_at=seconds_from_now(lift_in),
            embargo_zone="Europe/London",
            now=now(),
            batch_size=rt.settings.batch_size,
            prebrief=PrebriefRequest(at=now(), min_lead=timedelta(seconds=3)),
        )


def subjects_by_recipient(
    server: RecordingSMTPServer, *, since: int = 0
) -> dict[str, list[tuple[float, str]]]:
    found: dict[str, list[tuple[float, str]]] = defaultdict(list)
    for message in server.received[since:]:
        found[message.recipient].append((message.arrived, str(message.parsed()["Subject"])))
    return found


def wait_for_messages(server: RecordingSMTPServer, count: int, *, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while len(server.received) < count and time.monotonic() < deadline:
        time.sleep(0.05)
    assert len(server.received) >= count, f"{len(server.received)} of {count} messages arrived"


def start_stack(rt: Runtime, processes: Start, *, notice_worker: bool = False) -> None:
    processes("worker", rt.settings, concurrency=2)
    if notice_worker:
        processes("worker", rt.settings, concurrency=1, notices_only=True)
    processes("scheduler", rt.settings)


def test_prebriefed_journalists_get_the_embargoed_copy_then_the_lift_notice(
    stack_runtime: Runtime,  # noqa: F811
    smtp_server: RecordingSMTPServer,
    processes: Start,
) -> None:
    rt = stack_runtime
    release_id, emails = audience(rt, 12)
    vetted, breaker = emails[:3], emails[3]
    vet(rt, vetted)
    vet(rt, [breaker], breaker=True)
    start_stack(rt, processes, notice_worker=True)
    scheduled = schedule_with_prebrief(rt, release_id, lift_in=14)
    lift = scheduled.embargo_at.timestamp()
    wait_for_send_state(rt, scheduled.send_id, SendState.COMPLETED, timeout=60)
    wait_for_messages(smtp_server, 12 + 3, timeout=20)

    received = subjects_by_recipient(smtp_server)
    for email in vetted:
        (early, early_subject), (late, late_subject) = sorted(received[email])
        assert early < lift and early_subject.startswith("EMBARGOED UNTIL ")
        assert late >= lift and late_subject.startswith("EMBARGO LIFTED: ")
    for email in emails[3:]:
        ((arrived, subject),) = received[email]
        assert arrived >= lift, f"{email} got the release before the lift"
        assert not subject.startswith(("EMBARGOED", "EMBARGO LIFTED"))


# On the production stack only: the claim and the notices are the same code on SQLite, which
# the pre-brief test above covers.
@pytest.mark.parametrize("stack", ["postgres+redis"], indirect=True)
@pytest.mark.postgres
@pytest.mark.redis
def test_the_embargo_moved_later_in_the_last_second_sends_nothing_at_the_old_time(
    stack_runtime: Runtime,  # noqa: F811
    smtp_server: RecordingSMTPServer,
    processes: Start,
) -> None:
    rt = stack_runtime
    release_id, emails = audience(rt, 10)
    vet(rt, emails[:2])
    # The notices-only worker is what lets the moved notice out while the other worker's
    # processes wait for the lift with the public batches
    start_stack(rt, processes, notice_worker=True)
    scheduled = schedule_with_prebrief(rt, release_id, lift_in=16)
    wait_for_messages(smtp_server, 2, timeout=20)  # the embargoed copies
    old_lift = scheduled.embargo_at.timestamp()
    # When, a second before the lift, the embargo moves six seconds later
    while time.time() < old_lift - 1:
        time.sleep(0.02)
    with rt.sessions.begin() as session:
        change = move_embargo(
            session,
            release_id=release_id,
            embargo_at=scheduled.embargo_at + timedelta(seconds=6),
            embargo_zone="Europe/London",
            now=now(),
            arm_lead=LEAD,
            batch_size=rt.settings.batch_size,
        )
    new_lift = change.embargo_at.timestamp()
    wait_for_send_state(rt, scheduled.send_id, SendState.COMPLETED, timeout=60)
    wait_for_messages(smtp_server, 2 + 2 + 8 + 2, timeout=20)

    received = subjects_by_recipient(smtp_server)
    for email in emails[:2]:
        subjects = [s for _, s in sorted(received[email])]
        assert subjects[0].startswith("EMBARGOED UNTIL ")
        assert subjects[1].startswith("EMBARGO MOVED TO ")
        assert subjects[2].startswith("EMBARGO LIFTED: ")
        moved_at = sorted(received[email])[1][0]
        assert moved_at < new_lift  # told before the new lift
    for email in emails[2:]:
        ((arrived, _),) = received[email]
        assert arrived >= new_lift, f"{email} got the release before the new lift"


@pytest.mark.parametrize("stack", ["postgres+redis"], indirect=True)
@pytest.mark.postgres
@pytest.mark.redis
def test_lifted_early_and_withdrawn(
    stack_runtime: Runtime,  # noqa: F811
    smtp_server: RecordingSMTPServer,
    processes: Start,
) -> None:
    rt = stack_runtime
    release_id, emails = audience(rt, 6)
    vet(rt, emails[:1])
    start_stack(rt, processes)
    # A release lifted early goes to everyone within seconds
    scheduled = schedule_with_prebrief(rt, release_id, lift_in=3600)
    wait_for_messages(smtp_server, 1, timeout=20)
    lifted_at = time.time()
    with rt.sessions.begin() as session:
        lift_embargo(session, release_id=release_id, now=now(), arm_lead=LEAD)
    wait_for_send_state(rt, scheduled.send_id, SendState.COMPLETED, timeout=30)
    wait_for_messages(smtp_server, 1 + 1 + 5, timeout=20)
    received = subjects_by_recipient(smtp_server)
    assert max(t for r in emails[1:] for t, _ in received[r]) - lifted_at < 10
    assert [s.split(":")[0] for _, s in sorted(received[emails[0]])][1] == "EMBARGO LIFTED"

    # A second release, withdrawn after its pre-brief: only the pre-briefed hear of it
    before = len(smtp_server.received)
    with rt.sessions.begin() as session:
        second = schedule_send(
            session,
            release_id=release_id,
            list_names=["Home affairs", "Crime"],
            embargo_at=seconds_from_now(3600),
            embargo_zone="Europe/London",
            now=now(),
            batch_size=rt.settings.batch_size,
            again=True,
            prebrief=PrebriefRequest(at=now(), min_lead=timedelta(seconds=3)),
        )
    wait_for_messages(smtp_server, before + 1, timeout=20)
    with rt.sessions.begin() as session:
        withdraw_release(session, release_id=release_id, now=now(), batch_size=5)
    wait_for_messages(smtp_server, before + 2, timeout=20)
    received = subjects_by_recipient(smtp_server, since=before)
    assert set(received) == {emails[0]}
    (_, embargoed), (_, withdrawn) = sorted(received[emails[0]])
    assert embargoed.startswith("EMBARGOED UNTIL ")
    assert withdrawn.startswith("WITHDRAWN, DO NOT PUBLISH: ")
    assert second.prebrief is not None
