"""Editing one contact from the contacts pages, and deleting a list or a segment after a
confirmation: by role, with CSRF, problems beside their fields and nothing typed lost, and a
list or segment that a send not yet sent goes to kept, naming the release; against the real
database (SQLite and PostgreSQL)."""

from __future__ import annotations

import html
import re
from datetime import UTC, datetime, timedelta

from fastapi.testclient import TestClient
from sqlalchemy import select

from distributor.acting import acting_info
from distributor.actors import Actor, Role
from distributor.contacts.lookup import ContactDetail, contact_detail
from distributor.contacts_import import ContactRow, ParsedContacts, import_contacts
from distributor.lists import add_to_list, create_list, list_sizes
from distributor.models import AuditEntry
from distributor.releases import ReleaseDraft, create_release
from distributor.runtime import Runtime
from distributor.scheduling import cancel_release, schedule_send
from distributor.segments.store import list_segments, save_segment
from distributor.suppression import SuppressionReason, suppress
from tests.support.web import (
    PEOPLE,
    client_fixture,  # noqa: F401 - fixture
    csrf_in,
    log_in,
    people_fixture,  # noqa: F401 - fixture
    web_runtime_fixture,  # noqa: F401 - fixture
)

VIEWER = PEOPLE[Role.VIEWER]
OFFICER = PEOPLE[Role.PRESS_OFFICER]
SAM = Actor("sam@example.org", Role.PRESS_OFFICER)
ANN = "ann@news.example.com"
BOB = "bob@post.example.com"
HEADLINE = "Charity opens three new refuges"


def desk(runtime: Runtime) -> None:
    """Two journalists, two lists (Ann is on one), two segments."""
    moment = datetime.now(UTC)
    with runtime.sessions(info=acting_info(SAM)) as session, session.begin():
        rows = [
            ContactRow(line=2, email=ANN, name="Ann Archer", outlet="Times", beats=("crime",)),
            ContactRow(line=3, email=BOB, name="Bob Baker", outlet="Post", beats=("health",)),
        ]
        columns = frozenset({"email", "name", "outlet", "beats"})
        import_contacts(session, ParsedContacts(rows=rows, columns=columns), now=moment)
        create_list(session, "Crime desks", now=moment)
        add_to_list(session, "Crime desks", [ANN])
        create_list(session, "Health desks", now=moment)
        add_to_list(session, "Health desks", [BOB])
        save_segment(session, name="Crime", filter_text='beat = "crime"', actor=SAM, now=moment)
        save_segment(session, name="Post", filter_text='outlet = "Post"', actor=SAM, now=moment)


def scheduled_to(runtime: Runtime, *, lists: list[str] = (), segments: list[str] = ()) -> int:  # type: ignore[assignment]
    """A release scheduled for tomorrow to these lists and segments: not yet sent."""
    moment = datetime.now(UTC)
    with runtime.sessions(info=acting_info(SAM)) as session, session.begin():
        release = create_release(
            session,
            ReleaseDraft(
                headline=HEADLINE,
                dateline="Leeds",
                body="The charity today opened three new refuges.",
                notes_to_editors="",
            ),
            now=moment,
        )
        schedule_send(
            session,
            release_id=release.id,
            list_names=list(lists),
            segment_names=list(segments),
            embargo_at=moment + timedelta(days=1),
            embargo_zone="Europe/London",
            now=moment,
            batch_size=100,
        )
        return release.id


def detail(runtime: Runtime, email: str) -> ContactDetail:
    with runtime.sessions() as session:
        return contact_detail(session, email)


def beside(page: str, key: str) -> str:
    """The problem shown beside the field `key` (empty when there is none)."""
    found = re.search(
        rf'<ul class="field-error" id="error-{re.escape(key)}"[^>]*>(.*?)</ul>', page, re.S
    )
    assert found, f"the page has no place for problems with {key}"
    return html.unescape(re.sub(r"<[^>]+>", " ", found.group(1))).strip()


def value_of(page: str, field_id: str) -> str:
    found = re.search(rf'id="{re.escape(field_id)}"[^>]*value="([^"]*)"', page)
    assert found, f"no field {field_id}"
    return html.unescape(found.group(1))


def ticked(page: str) -> list[str]:
    return [
        html.unescape(name) for name in re.findall(r'name="lists" value="([^"]*)" checked', page)
    ]


def form_of(page: str, **changes: object) -> dict[str, object]:
    """The edit form as the page shows it, with some fields changed."""
    form: dict[str, object] = {
        "csrf_token": csrf_in(page),
        "contact": html.unescape(re.search(r'name="contact" value="([^"]*)"', page).group(1)),  # type: ignore[union-attr]
        **{name: value_of(page, name) for name in ("email", "name", "outlet", "role", "beats")},
        "lists": ticked(page),
        "lists_shown": [
            html.unescape(n) for n in re.findall(r'name="lists_shown" value="([^"]*)"', page)
        ],
    }
    if 'name="embargo_vetted" value="true" checked' in page:
        form["embargo_vetted"] = "true"
    form.update(changes)
    return {key: value for key, value in form.items() if value is not None}


def test_a_press_officer_edits_a_contact_from_the_contacts_page(
    client: TestClient, people: dict[Role, str], web_runtime: Runtime
) -> None:
    desk(web_runtime)
    log_in(client, OFFICER)
    listing = client.get("/contacts").text
    assert f'href="/contacts/edit?email={ANN.replace("@", "%40")}"' in listing
    page = client.get("/contacts/edit", params={"email": "ANN@news.example.com"})
    assert page.status_code == 200
    assert value_of(page.text, "name") == "Ann Archer"
    assert value_of(page.text, "beats") == "crime"
    assert ticked(page.text) == ["Crime desks"]

    saved = client.post(
        "/contacts/edit",
        data=form_of(
            page.text,
            email="ann.archer@news.example.com",
            name="Ann  Smith",
            outlet="Morning Star",
            beats="Courts; crime",
            embargo_vetted="true",
            lists=["Health desks"],
        ),
    )

    assert saved.status_code == 303
    assert saved.headers["location"] == "/contacts/detail?email=ann.archer%40news.example.com"
    shown = client.get(saved.headers["location"]).text
    assert "Changed the email, name, outlet, beats and embargo vetted of" in shown
    assert "Put on “Health desks”. Taken off “Crime desks”." in shown
    assert "The outlet “Morning Star” is new." in shown
    ann = detail(web_runtime, "ann.archer@news.example.com")
    assert (ann.name, ann.outlet and ann.outlet.name, ann.beats) == (
        "Ann Smith",
        "Morning Star",
        ["courts", "crime"],
    )
    assert ann.embargo_vetted is True and ann.lists == ["Health desks"]
    with web_runtime.sessions() as session:
        done = session.execute(
            select(AuditEntry.action, AuditEntry.actor).order_by(AuditEntry.id.desc()).limit(3)
        ).all()
    assert sorted(done) == [
        ("contact.edited", OFFICER),
        ("list.members_added", OFFICER),
        ("list.members_removed", OFFICER),
    ]
    # Saving the form unchanged changes nothing, and says so.
    again = client.get("/contacts/edit", params={"email": "ann.archer@news.example.com"}).text
    unchanged = client.post("/contacts/edit", data=form_of(again))
    assert unchanged.status_code == 303
    assert "Nothing changed" in client.get(unchanged.headers["location"]).text


def test_problems_are_shown_beside_their_fields_and_nothing_typed_is_lost(
    client: TestClient, people: dict[Role, str], web_runtime: Runtime
) -> None:
    desk(web_runtime)
    log_in(client, OFFICER)
    page = client.get("/contacts/edit", params={"email": ANN}).text
    before = detail(web_runtime, ANN)

    refused = client.post(
        "/contacts/edit",
        data=form_of(
            page,
            email="not an address",
            name="Ann\u202eLiam",
            role="R" * 400,
            beats="crime; courts",
            embargo_vetted="true",
            lists=["Health desks"],
        ),
    )

    assert refused.status_code == 422
    text = refused.text
    assert "Nothing was changed: fix the fields marked below." in text
    assert "'not an address' is not a valid address" in beside(text, "email")
    assert "invisible or text-direction characters" in beside(text, "name")
    assert "keep it to" in beside(text, "role")
    assert beside(text, "beats") == "" and beside(text, "outlet") == ""
    assert 'id="email" name="email" type="email" value="not an address"' in text
    assert value_of(text, "name") == "Ann\u202eLiam"
    assert value_of(text, "role") == "R" * 400
    assert value_of(text, "beats") == "crime; courts"
    assert 'name="embargo_vetted" value="true" checked' in text
    assert ticked(text) == ["Health desks"]
    assert detail(web_runtime, ANN) == before, "a refused edit changes nothing"

    # Another contact's address, beside the address; an unknown list, at the top.
    taken = client.post("/contacts/edit", data=form_of(page, email="BOB@post.example.com"))
    assert taken.status_code == 422
    assert "another contact has that address" in beside(taken.text, "email")
    gone = client.post("/contacts/edit", data=form_of(page, name="Ann B", lists=["Nope"]))
    assert gone.status_code == 404 and "no media list named &#39;Nope&#39;" in gone.text
    assert "distributor lists show" not in gone.text
    assert value_of(gone.text, "name") == "Ann B"
    assert detail(web_runtime, ANN) == before, "nothing of a refused edit is kept"


def test_a_list_made_meanwhile_is_left_alone_and_a_moved_address_noted_in_page_words(
    client: TestClient, people: dict[Role, str], web_runtime: Runtime
) -> None:
    desk(web_runtime)
    log_in(client, OFFICER)
    page = client.get("/contacts/edit", params={"email": ANN}).text
    moment = datetime.now(UTC)
    with web_runtime.sessions(info=acting_info(SAM)) as session, session.begin():
        create_list(session, "Made meanwhile", now=moment)
        add_to_list(session, "Made meanwhile", [ANN])
        suppress(
            session, email=ANN, reason=SuppressionReason.DO_NOT_CONTACT, source="t", now=moment
        )

    saved = client.post("/contacts/edit", data=form_of(page, email="ann2@news.example.com"))

    assert saved.status_code == 303
    shown = client.get(saved.headers["location"]).text
    assert (
        "Note: ann@news.example.com stays on the suppression list but ann2@news.example.com is "
        "not on it: add ann2@news.example.com to the suppression list too" in shown
    )
    assert "distributor suppressions add" not in shown
    assert detail(web_runtime, "ann2@news.example.com").lists == ["Crime desks", "Made meanwhile"]


def test_viewers_may_not_edit_and_every_change_needs_its_token(
    client: TestClient, people: dict[Role, str], web_runtime: Runtime
) -> None:
    desk(web_runtime)
    viewer = TestClient(client.app, follow_redirects=False)
    viewer_token = log_in(viewer, VIEWER)
    assert "/contacts/edit" not in viewer.get("/contacts").text
    assert "/contacts/edit" not in viewer.get("/contacts/detail", params={"email": ANN}).text
    assert viewer.get("/contacts/edit", params={"email": ANN}).status_code == 403
    form = {"csrf_token": viewer_token, "contact": ANN, "email": ANN, "name": "Mallory"}
    assert viewer.post("/contacts/edit", data=form).status_code == 403
    assert viewer.get("/contacts/list/delete", params={"name": "Crime desks"}).status_code == 403
    form = {"csrf_token": viewer_token, "name": "Crime desks"}
    assert viewer.post("/contacts/list/delete", data=form).status_code == 403
    assert viewer.post("/contacts/segments/delete", data=form).status_code == 403

    log_in(client, OFFICER)
    assert client.get("/contacts/edit", params={"email": "x@example.org"}).status_code == 404
    page = client.get("/contacts/edit", params={"email": ANN}).text
    unsigned = form_of(page, name="Mallory")
    del unsigned["csrf_token"]
    assert client.post("/contacts/edit", data=unsigned).status_code == 403
    assert client.post("/contacts/list/delete", data={"name": "Crime desks"}).status_code == 403
    assert detail(web_runtime, ANN).name == "Ann Archer"
    with web_runtime.sessions() as session:
        assert [name for name, _ in list_sizes(session)] == ["Crime desks", "Health desks"]


def test_a_list_is_deleted_after_a_confirmation_unless_a_send_not_yet_sent_goes_to_it(
    client: TestClient, people: dict[Role, str], web_runtime: Runtime
) -> None:
    desk(web_runtime)
    release_id = scheduled_to(web_runtime, lists=["Health desks"])
    token = log_in(client, OFFICER)
    assert (
        "/contacts/list/delete?name=Crime+desks"
        in client.get("/contacts/list", params={"name": "Crime desks"}).text
    )

    asked = client.get("/contacts/list/delete", params={"name": "Crime desks"})
    assert asked.status_code == 200
    assert "Delete the list “Crime desks”?" in asked.text
    assert "its 1 contact stays in the database" in asked.text
    deleted = client.post(
        "/contacts/list/delete", data={"name": "Crime desks", "csrf_token": token}
    )
    assert deleted.status_code == 303 and deleted.headers["location"] == "/contacts/lists"
    lists_page = client.get("/contacts/lists").text
    assert "Deleted the list “Crime desks”; its contacts stay in the database." in lists_page
    assert detail(web_runtime, ANN).lists == []

    # The release waiting for its embargo is named, and the list stays.
    kept = client.get("/contacts/list/delete", params={"name": "Health desks"})
    assert kept.status_code == 200
    assert "cannot be deleted" in kept.text and "Delete the list</button>" not in kept.text
    refused = client.post(
        "/contacts/list/delete", data={"name": "Health desks", "csrf_token": token}
    )
    assert refused.status_code == 409
    message = html.unescape(refused.text)
    assert f"release {release_id} “{HEADLINE}”" in message and "not yet sent" in message
    assert "scheduled, embargo" in message
    with web_runtime.sessions() as session:
        assert [name for name, _ in list_sizes(session)] == ["Health desks"]
    # Cancelled, the send keeps the list as its record.
    with web_runtime.sessions(info=acting_info(SAM)) as session, session.begin():
        cancel_release(session, release_id=release_id, now=datetime.now(UTC))
    after = html.unescape(client.get("/contacts/list/delete", params={"name": "Health desks"}).text)
    assert "was the audience of" in after and "take its contacts off instead" in after
    missing = client.get("/contacts/list/delete", params={"name": "Nope"})
    assert missing.status_code == 404 and "no media list named" in missing.text
    assert "distributor" not in missing.text.split("<main", 1)[1].split("</main>")[0].replace(
        "distributor.", ""
    )


def test_a_segment_is_deleted_after_a_confirmation_unless_a_send_goes_to_it(
    client: TestClient, people: dict[Role, str], web_runtime: Runtime
) -> None:
    desk(web_runtime)
    release_id = scheduled_to(web_runtime, segments=["Crime"])
    token = log_in(client, OFFICER)
    segments = client.get("/contacts/segments").text
    assert "/contacts/segments/delete?name=Post" in segments

    asked = client.get("/contacts/segments/delete", params={"name": "Post"})
    assert asked.status_code == 200 and "Delete the segment “Post”?" in asked.text
    assert "outlet = &#34;Post&#34;" in asked.text
    deleted = client.post("/contacts/segments/delete", data={"name": "Post", "csrf_token": token})
    assert deleted.status_code == 303
    assert "Deleted the segment “Post”" in client.get("/contacts/segments").text

    refused = client.post("/contacts/segments/delete", data={"name": "Crime", "csrf_token": token})
    assert refused.status_code == 409
    message = html.unescape(refused.text)
    assert f"release {release_id} “{HEADLINE}”" in message and "not yet sent" in message
    assert "Changing its filter changes who the sends not yet sent go to" in message
    with web_runtime.sessions() as session:
        assert [segment.name for segment in list_segments(session)] == ["Crime"]
    missing = client.post("/contacts/segments/delete", data={"name": "Nope", "csrf_token": token})
    assert missing.status_code == 404 and "no segment named" in missing.text
    assert "segments show" not in missing.text
