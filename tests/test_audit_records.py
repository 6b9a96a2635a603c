"""Every change people make to lists, contacts, segments, suppressions, breaches and sends in
flight leaves one audit entry in its own transaction: who, what, to which record, the values
before and after, and never an address, a name or a phone number."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from distributor.actors import Actor, Role
from distributor.audit import jsonable
from distributor.breaches import clear_breaker, record_breach
from distributor.clock import ManualClock
from distributor.contacts.editing import (
    edit_contact,
    get_contact,
    set_contact_flags,
    set_outlet_flags,
)
from distributor.contacts.importing import ImportOptions, import_contacts_file
from distributor.errors import PermissionDeniedError, TransportError
from distributor.gdpr import forget
from distributor.lists import (
    add_matching_to_list,
    add_to_list,
    create_list,
    delete_list,
    remove_from_list,
)
from distributor.mail.unsubscribe import UnsubscribeTokens
from distributor.models import AuditEntry, MediaList
from distributor.releases import create_release
from distributor.runtime import Runtime
from distributor.scheduling import get_send, schedule_send
from distributor.segments.store import delete_segment, save_segment
from distributor.send_control import pause_send, resume_send, retry_deliveries
from distributor.states import SendState
from distributor.suppression import SuppressionReason, lift_suppression, suppress
from distributor.transport import Envelope, InMemoryTransport
from distributor.unsubscribes import ONE_CLICK_SOURCE, handle_unsubscribe
from tests.conftest import SAMPLE_DRAFT
from tests.support.engine import (
    EMBARGO,
    add_audience,
    armed_send,
    batch_job,
    run_batch,
    run_tick,
    schedule,
)
from tests.support.media import NOW, contact, store

PAT = Actor("Pat", Role.PRESS_OFFICER)
ADA = Actor("Ada", Role.ADMIN)
VIC = Actor("Vic", Role.VIEWER)
ANN = "ann.lee@herald.example.com"
BOB = "bob.stone@globe.example.com"
CAT = "cat.ng@herald.example.com"
# Whatever else is personal that the tests put into a contact.
PHONE = "+44 7700 900123"
PERSONAL = [ANN, BOB, CAT, "Ann Lee", "Bob Stone", "Cat Ng", PHONE]
UNSUBSCRIBE_KEY = "a-long-random-secret-key"


@pytest.fixture
def newsroom(runtime: Runtime) -> Runtime:
    """Three journalists at two outlets, stored by the system; later sessions act for Pat."""
    with runtime.sessions.begin() as session:
        store(
            session,
            [
                contact(ANN, name="Ann Lee", outlet="Herald", beats="science"),
                contact(BOB, name="Bob Stone", outlet="Globe"),
                contact(CAT, name="Cat Ng", outlet="Herald"),
            ],
        )
    runtime.act_as(PAT)
    return runtime


def entries(rt: Runtime, prefix: str = "") -> list[AuditEntry]:
    """The entries whose action starts with `prefix`, oldest first."""
    with rt.sessions() as session:
        return list(
            session.scalars(
                select(AuditEntry)
                .where(AuditEntry.action.startswith(prefix))
                .order_by(AuditEntry.id)
            )
        )


def only(rt: Runtime, action: str) -> AuditEntry:
    (entry,) = [e for e in entries(rt) if e.action == action]
    return entry


def contact_id(rt: Runtime, email: str) -> int:
    with rt.sessions() as session:
        return get_contact(session, email).id


def assert_no_personal_data(rt: Runtime, *extra: str) -> None:
    """No column of any audit row holds an address, a name or a phone number of the tests."""
    columns = [c.key for c in AuditEntry.__table__.columns]
    rows = [{c: jsonable(getattr(e, c)) for c in columns} for e in entries(rt)]
    text = json.dumps(rows, ensure_ascii=False).casefold()
    for needle in [*PERSONAL, *extra]:
        assert needle.casefold() not in text, f"{needle!r} is in the audit trail"


def by(entry: AuditEntry) -> tuple[str, str]:
    return entry.actor, entry.actor_role


# --- lists -------------------------------------------------------------------------------------


def test_list_changes_are_recorded_with_counts_and_never_the_addresses(newsroom: Runtime) -> None:
    with newsroom.sessions.begin() as session:
        list_id = create_list(session, "Science desk", now=NOW).id
        assert add_to_list(session, "Science desk", [ANN, BOB]) == 2
    with newsroom.sessions.begin() as session:
        # Adding who is on it already changes nothing, and records nothing.
        assert add_to_list(session, "Science desk", [ANN.upper()]) == 0
        assert (
            add_matching_to_list(session, "Science desk", f'outlet = "Herald" and email != "{BOB}"')
            == 1
        )
    with newsroom.sessions.begin() as session:
        assert remove_from_list(session, "Science desk", [BOB]) == 1
        delete_list(session, "Science desk")

    recorded = entries(newsroom, "list.")
    target = f"list {list_id} (Science desk)"
    assert [(e.action, e.target, by(e)) for e in recorded] == [
        ("list.created", target, ("Pat", "press_officer")),
        ("list.members_added", target, ("Pat", "press_officer")),
        ("list.members_added", target, ("Pat", "press_officer")),
        ("list.members_removed", target, ("Pat", "press_officer")),
        ("list.deleted", target, ("Pat", "press_officer")),
    ]
    created, added, matched, removed, deleted = recorded
    assert (created.before, created.after) == (None, {"name": "Science desk"})
    assert added.after == {"added": 2, "already_on": 0}
    # The filter is kept, with the address it names withheld.
    assert matched.after == {
        "added": 1,
        "matching": '(outlet = "herald" and email != "[withheld]")',
    }
    assert removed.after == {"removed": 1}
    assert deleted.before == {"name": "Science desk", "members": 2}
    assert all(e.release_id is None for e in recorded)
    assert_no_personal_data(newsroom)


def test_a_viewer_is_refused_and_nothing_changes(newsroom: Runtime) -> None:
    newsroom.act_as(VIC)
    with (
        pytest.raises(PermissionDeniedError, match="Vic is a viewer"),
        newsroom.sessions.begin() as session,
    ):
        create_list(session, "Viewer's list", now=NOW)
    with pytest.raises(PermissionDeniedError), newsroom.sessions.begin() as session:
        set_contact_flags(session, email=ANN, now=NOW, embargo_vetted=True)

    with newsroom.sessions() as session:
        assert session.scalar(select(MediaList).where(MediaList.name == "Viewer's list")) is None
        assert not get_contact(session, ANN).embargo_vetted
    assert [e.action for e in entries(newsroom)] == ["contacts.imported"]


# --- sends in flight ---------------------------------------------------------------------------


def test_pausing_and_resuming_a_send_are_recorded_against_its_release(runtime: Runtime) -> None:
    release_id, _ = add_audience(runtime, 2)
    send_id = schedule(runtime, release_id)
    runtime.act_as(ADA)
    with runtime.sessions.begin() as session:
        pause_send(session, send_id=send_id, now=EMBARGO - timedelta(hours=1))
    with runtime.sessions.begin() as session:
        resume_send(
            session,
            send_id=send_id,
            now=EMBARGO - timedelta(minutes=30),
            arm_lead=timedelta(seconds=10),
        )

    paused, resumed = entries(runtime, "send.")[-2:]
    for entry in (paused, resumed):
        assert (entry.target, entry.release_id, by(entry)) == (
            f"send {send_id}",
            release_id,
            ("Ada", "admin"),
        )
    assert (paused.action, paused.before, paused.after) == (
        "send.paused",
        {"state": "scheduled"},
        {"state": "paused"},
    )
    assert (resumed.action, resumed.before, resumed.after) == (
        "send.resumed",
        {"state": "paused"},
        {"state": "scheduled"},
    )


def test_retrying_records_how_many_went_back_in_line_and_bounces_are_the_systems(
    runtime: Runtime,
) -> None:
    send_id, emails = armed_send(runtime, 4)
    refused, bounced = emails[0], emails[1]

    def refuse(envelope: Envelope) -> TransportError | None:
        if envelope.recipient == refused:
            return TransportError("550 5.7.1 Message rejected by policy", code=550)
        if envelope.recipient == bounced:
            return TransportError("550 5.1.1 User unknown", code=550)
        return None

    run_batch(
        runtime, batch_job(runtime, send_id), ManualClock(EMBARGO), InMemoryTransport(refuse=refuse)
    )
    assert run_tick(runtime, EMBARGO + timedelta(seconds=1)).completed == [send_id]
    runtime.act_as(ADA)
    with runtime.sessions.begin() as session:
        assert retry_deliveries(session, send_id=send_id, now=EMBARGO + timedelta(hours=1)) == 2

    retried = only(runtime, "deliveries.retried")
    assert (retried.target, by(retried)) == (f"send {send_id}", ("Ada", "admin"))
    assert retried.release_id is not None
    assert retried.before == {"state": "completed"}
    assert retried.after == {"deliveries": 2, "of_states": ["bounced", "failed"], "state": "armed"}
    # The worker suppressed the bounced address on its own: the system's entry, by id.
    bounce = only(runtime, "suppression.added")
    assert by(bounce) == ("distributor", "system")
    assert bounce.target.startswith("suppression ")
    assert bounce.after is not None and bounce.after["reason"] == "hard_bounced"
    assert_no_personal_data(runtime, *emails)


def test_retrying_nothing_records_nothing(runtime: Runtime) -> None:
    send_id, _ = armed_send(runtime, 1)
    runtime.act_as(ADA)
    with runtime.sessions.begin() as session:
        assert retry_deliveries(session, send_id=send_id, now=EMBARGO) == 0
    assert entries(runtime, "deliveries.") == []


# --- suppressions ------------------------------------------------------------------------------


def test_a_suppression_and_its_lifting_name_the_entry_never_the_address(
    newsroom: Runtime,
) -> None:
    with newsroom.sessions.begin() as session:
        assert suppress(
            session,
            email=ANN,
            reason=SuppressionReason.DO_NOT_CONTACT,
            source="added by Pat (press_officer)",
            note=f"asked by phone, {PHONE}",
            now=NOW,
        )
    with newsroom.sessions.begin() as session:
        # Already there: nothing changes, nothing is recorded.
        assert not suppress(
            session, email=ANN, reason=SuppressionReason.COMPLAINED, source="again", now=NOW
        )
    newsroom.act_as(ADA)
    with newsroom.sessions.begin() as session:
        assert lift_suppression(session, email=ANN.upper(), actor=ADA)

    added, lifted = entries(newsroom, "suppression.")
    assert added.target == lifted.target
    assert added.target.startswith("suppression ")
    assert (added.action, by(added), added.before, added.after) == (
        "suppression.added",
        ("Pat", "press_officer"),
        None,
        {"reason": "do_not_contact", "source": "added by Pat (press_officer)"},
    )
    assert (lifted.action, by(lifted), lifted.before, lifted.after) == (
        "suppression.lifted",
        ("Ada", "admin"),
        {"reason": "do_not_contact", "source": "added by Pat (press_officer)"},
        None,
    )
    assert_no_personal_data(newsroom)


def test_an_unsubscribe_link_is_recorded_as_the_journalists_own_act(newsroom: Runtime) -> None:
    newsroom.act_as(Actor("distributor", Role.SYSTEM))
    with newsroom.sessions.begin() as session:
        release_id = create_release(session, SAMPLE_DRAFT, now=NOW).id
        create_list(session, "Desks", now=NOW)
        add_to_list(session, "Desks", [ANN])
        send_id = schedule_send(
            session,
            release_id=release_id,
            list_names=["Desks"],
            embargo_at=NOW + timedelta(hours=1),
            embargo_zone="UTC",
            now=NOW,
            batch_size=10,
        ).send_id
    token = UnsubscribeTokens(UNSUBSCRIBE_KEY).issue(
        email=ANN, send_id=send_id, issued_at=int(NOW.timestamp())
    )
    for _ in range(2):
        with newsroom.sessions.begin() as session:
            handle_unsubscribe(session, token=token, key=UNSUBSCRIBE_KEY, now=NOW)

    unsubscribed = only(newsroom, "contact.unsubscribed")
    assert (unsubscribed.target, unsubscribed.release_id, by(unsubscribed)) == (
        f"contact {contact_id(newsroom, ANN)}",
        release_id,
        ("distributor", "system"),
    )
    assert unsubscribed.after is not None
    assert unsubscribed.after["reason"] == "unsubscribed"
    assert unsubscribed.after["source"] == ONE_CLICK_SOURCE
    assert unsubscribed.after["send"] == send_id
    # The unsubscribe is the one entry: not a second one for its suppression.
    assert entries(newsroom, "suppression.") == []
    assert_no_personal_data(newsroom)


# --- segments ----------------------------------------------------------------------------------


def test_saving_and_deleting_a_segment_keep_its_filter_without_personal_values(
    newsroom: Runtime,
) -> None:
    with newsroom.sessions.begin() as session:
        segment_id = save_segment(
            session, name="Herald", filter_text=' outlet = "Herald" ', actor=PAT, now=NOW
        ).id
    with newsroom.sessions.begin() as session:
        save_segment(
            session,
            name="Herald",
            filter_text='outlet = "Herald" and not name in ("Ann Lee", "Cat Ng")',
            actor=PAT,
            now=NOW + timedelta(minutes=1),
            replace=True,
        )
    with newsroom.sessions.begin() as session:
        delete_segment(session, name="Herald")

    created, replaced, deleted = entries(newsroom, "segment.")
    target = f"segment {segment_id} (Herald)"
    assert {(e.target, by(e)) for e in (created, replaced, deleted)} == {
        (target, ("Pat", "press_officer"))
    }
    withheld = '(outlet = "herald" and not name in ("[withheld]", "[withheld]"))'
    assert (created.action, created.before, created.after) == (
        "segment.saved",
        None,
        {"filter": 'outlet = "Herald"'},
    )
    assert (replaced.action, replaced.before, replaced.after) == (
        "segment.saved",
        {"filter": 'outlet = "Herald"'},
        {"filter": withheld},
    )
    assert (deleted.action, deleted.before, deleted.after) == (
        "segment.deleted",
        {"filter": withheld},
        None,
    )
    assert_no_personal_data(newsroom)


# --- contacts ----------------------------------------------------------------------------------


def test_an_edit_names_every_changed_field_but_shows_values_only_where_not_personal(
    newsroom: Runtime,
) -> None:
    ann_id = contact_id(newsroom, ANN)
    new_address = "ann.lee@globe.example.com"
    with newsroom.sessions.begin() as session:
        edit_contact(
            session,
            email=ANN,
            assignments=[
                ("email", new_address),
                ("name", "Ann Lee-Marsh"),
                ("outlet", "Globe"),
                ("time_zone", "Europe/Berlin"),
                ("beats", "science; health"),
                ("attributes.mobile", PHONE),
            ],
            now=NOW,
        )
    with newsroom.sessions.begin() as session:
        # The same values again: no change, no entry.
        edit_contact(session, email=new_address, assignments=[("outlet", "Globe")], now=NOW)

    edited = only(newsroom, "contact.edited")
    assert (edited.target, by(edited)) == (f"contact {ann_id}", ("Pat", "press_officer"))
    assert edited.detail == "changed: email, name, outlet, beats, time_zone, attributes.mobile"
    assert edited.before == {"outlet": "Herald", "beats": ["science"], "time_zone": ""}
    assert edited.after == {
        "outlet": "Globe",
        "beats": ["health", "science"],
        "time_zone": "Europe/Berlin",
    }
    assert_no_personal_data(newsroom, new_address, "Ann Lee-Marsh")


def test_flags_of_a_journalist_and_of_an_outlet_are_recorded(newsroom: Runtime) -> None:
    with newsroom.sessions.begin() as session:
        set_contact_flags(session, email=BOB, now=NOW, embargo_vetted=True, embargo_breaker=False)
        outlet_id = set_outlet_flags(session, name="herald", now=NOW, embargo_breaker=True).id

    journalist = only(newsroom, "contact.edited")
    assert (journalist.target, journalist.before, journalist.after, journalist.detail) == (
        f"contact {contact_id(newsroom, BOB)}",
        {"embargo_vetted": False},
        {"embargo_vetted": True},
        "changed: embargo_vetted",
    )
    outlet = only(newsroom, "outlet.edited")
    assert (outlet.target, by(outlet), outlet.before, outlet.after) == (
        f"outlet {outlet_id} (Herald)",
        ("Pat", "press_officer"),
        {"embargo_breaker": False},
        {"embargo_breaker": True},
    )
    assert_no_personal_data(newsroom)


def test_an_import_is_one_entry_with_counts_and_the_file_name_only(
    newsroom: Runtime, tmp_path: Path
) -> None:
    folder = tmp_path / "Ann Lee"  # a folder named after a person stays out of the trail
    folder.mkdir()
    path = folder / "desks.csv"
    path.write_text(
        "email,name,outlet\n"
        f"{BOB},Bob Stone,Globe Weekly\n"
        "dan.fox@courier.example.com,Dan Fox,Courier\n"
        "not an address,Eve Nobody,Courier\n",
        encoding="utf-8",
    )
    with newsroom.sessions.begin() as session:
        report = import_contacts_file(
            session, path, now=NOW, options=ImportOptions(skip_invalid=True)
        )
    assert (report.created, report.updated, report.problem_count) == (1, 1, 1)

    imported = entries(newsroom, "contacts.imported")[-1]
    assert (imported.target, by(imported), imported.detail) == (
        "contacts",
        ("Pat", "press_officer"),
        "from the file desks.csv",
    )
    assert imported.after == {"created": 1, "updated": 1, "skipped": 1, "forgotten": 0}
    assert_no_personal_data(newsroom, "dan.fox@courier.example.com", "Dan Fox", "Eve Nobody")


def test_forgetting_is_recorded_by_contact_id_with_nothing_left_to_erase(
    newsroom: Runtime,
) -> None:
    cat_id = contact_id(newsroom, CAT)
    stranger = "zoe.quinn@elsewhere.example.com"
    with newsroom.sessions.begin() as session:
        forget(session, email=CAT, actor=PAT, now=NOW)
    with newsroom.sessions.begin() as session:
        forget(session, email=stranger, actor=PAT, now=NOW)

    held, not_held = entries(newsroom, "contact.forgotten")
    assert (held.target, by(held)) == (f"contact {cat_id}", ("Pat", "press_officer"))
    assert held.after is not None
    assert (held.after["forgotten"], held.after["deliveries_stopped"]) == (True, 0)
    assert held.after["suppression"] is not None
    assert (not_held.target, not_held.after is not None and not_held.after["forgotten"]) == (
        "one address",
        True,
    )
    # The erasure is the one entry: not a second one for the suppression it keeps.
    assert entries(newsroom, "suppression.") == []
    assert_no_personal_data(newsroom, stranger)


# --- breaches ----------------------------------------------------------------------------------


def test_a_breach_and_its_clearing_are_recorded_against_the_release(newsroom: Runtime) -> None:
    with newsroom.sessions.begin() as session:
        release_id = create_release(session, SAMPLE_DRAFT, now=NOW).id
    with newsroom.sessions.begin() as session:
        breach_id = record_breach(
            session,
            email=ANN,
            release_id=release_id,
            actor=PAT,
            now=NOW,
            outlet_too=True,
            note="published at 22:00 the night before",
        ).record_id
    newsroom.act_as(ADA)
    with newsroom.sessions.begin() as session:
        cleared_id = clear_breaker(session, actor=ADA, now=NOW, email=ANN, note="apologised").id
        clear_breaker(session, actor=ADA, now=NOW, outlet_name="Herald")

    ann_target = f"contact {contact_id(newsroom, ANN)}"
    recorded = only(newsroom, "breach.recorded")
    assert (recorded.target, recorded.release_id, by(recorded), recorded.detail) == (
        ann_target,
        release_id,
        ("Pat", "press_officer"),
        "published at 22:00 the night before",
    )
    assert (recorded.before, recorded.after) == (
        {"embargo_breaker": False},
        {"embargo_breaker": True, "outlet_marked": "Herald", "breach_record": breach_id},
    )
    journalist, outlet = entries(newsroom, "breach.cleared")
    assert (journalist.target, by(journalist), journalist.detail) == (
        ann_target,
        ("Ada", "admin"),
        "apologised",
    )
    assert (journalist.before, journalist.after) == (
        {"embargo_breaker": True},
        {"embargo_breaker": False, "breach_record": cleared_id},
    )
    assert outlet.target.startswith("outlet ") and outlet.target.endswith("(Herald)")
    assert_no_personal_data(newsroom)


def test_a_send_stays_scheduled_when_a_viewer_tries_to_pause_it(runtime: Runtime) -> None:
    release_id, _ = add_audience(runtime, 1)
    send_id = schedule(runtime, release_id)
    runtime.act_as(VIC)
    with pytest.raises(PermissionDeniedError), runtime.sessions.begin() as session:
        pause_send(session, send_id=send_id, now=EMBARGO - timedelta(hours=1))
    with runtime.sessions() as session:
        assert get_send(session, send_id).state is SendState.SCHEDULED
    assert entries(runtime, "send.paused") == []
