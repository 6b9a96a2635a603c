"""The press officer's release pages: writing and editing a release with its live preview, a
test copy to oneself, the audience count, scheduling in the officer's own zone, and moving,
lifting and cancelling after a confirmation; against the real database (SQLite, PostgreSQL).
"""

from __future__ import annotations

import html
import io
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from fastapi.testclient import TestClient
from PIL import Image
from sqlalchemy import func, select

from distributor.accounts.users import create_user
from distributor.acting import acting_info
from distributor.actors import Actor, Role
from distributor.contacts_import import ContactRow, ParsedContacts, import_contacts
from distributor.lists import add_to_list, create_list
from distributor.models import Release, Send
from distributor.organisations import save_organisation
from distributor.releases import ReleaseDraft, create_release, get_release
from distributor.runtime import Runtime
from distributor.scheduling import schedule_send
from distributor.segments.store import save_segment
from distributor.states import SendKind, SendState
from distributor.suppression import suppress
from distributor.vocabulary import SuppressionReason
from distributor.web.app import create_app
from tests.support.smtp import RecordingSMTPServer
from tests.support.web import (
    PASSWORD,
    PEOPLE,
    client_fixture,  # noqa: F401 - fixture
    csrf_in,
    log_in,
    people_fixture,  # noqa: F401 - fixture
    web_runtime_fixture,  # noqa: F401 - fixture
    web_settings,
)

OFFICER = PEOPLE[Role.PRESS_OFFICER]
VIEWER = PEOPLE[Role.VIEWER]
LONDON_OFFICER = "lou@example.org"
ADMIN = Actor("tests", Role.ADMIN)
SAM = Actor("sam@example.org", Role.PRESS_OFFICER)


def now() -> datetime:
    return datetime.now(UTC)


def png(width: int = 8, height: int = 6) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), (200, 30, 30)).save(out, format="PNG")
    return out.getvalue()


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


def newsdesks(runtime: Runtime) -> None:
    """Five journalists on two overlapping lists (one suppressed), a segment, an organisation
    that requires approval."""
    moment = now()
    with runtime.sessions(info=acting_info(SAM)) as session, session.begin():
        rows = [
            ContactRow(line=2, email="ann@news.example.com", name="Ann Archer", outlet="Times"),
            ContactRow(
                line=3, email="bob@news.example.com", name="Bob", outlet="Post", country="GB"
            ),
            ContactRow(
                line=4, email="cat@news.example.com", name="Cat", outlet="Post", country="GB"
            ),
            ContactRow(line=5, email="dan@news.example.com", name="Dan", outlet="Wire"),
            ContactRow(line=6, email="eve@news.example.com", name="Eve", outlet="Wire"),
        ]
        import_contacts(session, ParsedContacts(rows=rows), now=moment)
        create_list(session, "Health desks", now=moment)
        add_to_list(session, "Health desks", [r.email for r in rows[:3]])
        create_list(session, "Crime desks", now=moment)
        add_to_list(session, "Crime desks", [r.email for r in rows[1:]])
        save_segment(session, name="UK", filter_text='country = "GB"', actor=SAM, now=moment)
        suppress(
            session,
            email="eve@news.example.com",
            reason=SuppressionReason.UNSUBSCRIBED,
            source="test",
            now=moment,
        )
        save_organisation(session, name="SafeLives", now=moment, about="We help.")
        save_organisation(session, name="Careful Trust", now=moment, require_approval=True)


def stored_release(runtime: Runtime, *, organisation: str = "") -> int:
    with runtime.sessions(info=acting_info(SAM)) as session, session.begin():
        return create_release(
            session,
            ReleaseDraft(
                headline="Charity opens three refuges",
                dateline="Leeds",
                body="The charity opened three refuges.",
                notes_to_editors="",
                organisation=organisation,
            ),
            now=now(),
        ).id


def add_london_officer(runtime: Runtime) -> None:
    with runtime.sessions(info=acting_info(ADMIN)) as session, session.begin():
        create_user(
            session,
            email=LONDON_OFFICER,
            role=Role.PRESS_OFFICER,
            password=PASSWORD,
            now=now(),
            time_zone="Europe/London",
        )


def next_transitions(zone_name: str, after: datetime) -> tuple[datetime, datetime]:
    """Local wall times (naive) that the zone's next DST changes skip and repeat."""
    zone = ZoneInfo(zone_name)
    skipped = repeated = None
    instant = after.replace(minute=0, second=0, microsecond=0)
    offset = instant.astimezone(zone).utcoffset()
    while skipped is None or repeated is None:
        instant += timedelta(hours=1)
        new = instant.astimezone(zone).utcoffset()
        assert offset is not None and new is not None
        if new != offset:
            # A wall time half-way through the jump: skipped going forward, seen twice going back.
            middle = (instant + min(offset, new) + abs(new - offset) / 2).replace(tzinfo=None)
            if new > offset and skipped is None:
                skipped = middle
            elif new < offset and repeated is None:
                repeated = middle
            offset = new
    return skipped, repeated


def local(value: datetime) -> str:
    return f"{value:%Y-%m-%dT%H:%M}"


# --- writing and editing ----------------------------------------------------------------------


def test_an_officer_writes_a_structured_release_with_an_image_then_edits_it(
    client: TestClient, people: dict[Role, str], web_runtime: Runtime
) -> None:
    newsdesks(web_runtime)
    token = log_in(client, OFFICER)
    page = client.get("/editor/new")
    assert page.status_code == 200 and 'name="headline"' in page.text

    response = client.post(
        "/editor/new",
        data={
            "csrf_token": token,
            "headline": "Charity opens its largest refuge",
            "dateline": "Leeds",
            "standfirst": "Forty families a year will be safe.",
            "body_format": "markdown",
            "body": "The refuge opened **today**.\r\n\r\n![The garden](garden.png)",
            "notes_to_editors": "Photos on request.",
            "organisation": "SafeLives",
            "quote_text": ["Every family will be safe.", ""],
            "quote_name": ["Diana Barran", ""],
            "quote_role": ["Chief Executive", ""],
            "contact_name": ["Natalie Mantle"],
            "contact_role": ["Press officer"],
            "contact_email": ["natalie@safelives.example.org"],
            "contact_phone": ["0117 403 3220"],
            "link_label": ["The report"],
            "link_url": ["https://safelives.example.org/report"],
            "new_file_kind": "image",
            "new_file_alt": "The refuge's garden",
            "new_file_caption": "Opening day.",
        },
        files={"new_file": ("garden.png", png(), "image/png")},
    )
    assert response.status_code == 303, beside(response.text, "form")
    release_id = int(response.headers["location"].split("/")[2])
    assert response.headers["location"] == f"/releases/{release_id}/edit"

    with web_runtime.sessions() as session:
        release = get_release(session, release_id)
        assert release.body_format == "markdown"
        assert release.body == "The refuge opened **today**.\n\n![The garden](garden.png)"
        assert release.quotes == [
            {
                "text": "Every family will be safe.",
                "name": "Diana Barran",
                "role": "Chief Executive",
            }
        ]
        assert [(a.filename, a.alt_text) for a in release.assets] == [
            ("garden.png", "The refuge's garden")
        ]
        assert release.organisation is not None and release.organisation.name == "SafeLives"

    edit = client.get(f"/releases/{release_id}/edit")
    assert "Saved as a new release." in edit.text
    assert value_of(edit.text, "headline") == "Charity opens its largest refuge"
    assert value_of(edit.text, "file_alt-0") == "The refuge's garden"

    # A new headline and alt text keep the image; removing the image (and its mention) drops it.
    form = {
        "csrf_token": token,
        "headline": "Charity opens its largest refuge yet",
        "body_format": "markdown",
        "body": "The refuge opened **today**.\n\n![The garden](garden.png)",
        "organisation": "SafeLives",
        "file_name": "garden.png",
        "file_kind": "image",
        "file_size": "99",
        "file_alt": "The garden, in spring",
        "file_caption": "",
    }
    assert client.post(f"/releases/{release_id}/edit", data=form).status_code == 303
    removed = form | {"body": "The refuge opened **today**.", "file_remove": "garden.png"}
    assert client.post(f"/releases/{release_id}/edit", data=removed).status_code == 303
    with web_runtime.sessions() as session:
        release = get_release(session, release_id)
        assert release.headline == "Charity opens its largest refuge yet"
        assert release.assets == []
        assert release.quotes == [], "a quote taken off the form is taken off the release"


def test_problems_are_shown_beside_their_fields_and_nothing_typed_is_lost(
    client: TestClient, people: dict[Role, str], web_runtime: Runtime
) -> None:
    token = log_in(client, OFFICER)
    response = client.post(
        "/editor/new",
        data={
            "csrf_token": token,
            "headline": "",
            "dateline": "D" * 101,
            "body_format": "markdown",
            "body": "A body that shows ![a chart](chart.png) it does not have.",
            "quote_text": ["Words without a speaker."],
            "quote_name": [""],
            "quote_role": [""],
            "link_label": ["The report"],
            "link_url": ["ftp://example.org/report"],
            "organisation": "Nobody We Know",
            "new_file_kind": "attachment",
        },
        files={"new_file": ("notes.txt", b"plain text", "text/plain")},
    )
    assert response.status_code == 422
    page = response.text
    assert "the headline is empty" in beside(page, "headline")
    assert "keep it to 100" in beside(page, "dateline")
    assert "'chart.png'" in beside(page, "body")
    assert "needs both the words and who said them" in beside(page, "quote-1")
    assert "ftp://example.org/report" in beside(page, "link-1")
    # Everything typed comes back, and the chosen file must be chosen again.
    assert value_of(page, "dateline") == "D" * 101
    assert "A body that shows ![a chart](chart.png) it does not have." in html.unescape(page)
    assert "Words without a speaker." in page
    assert value_of(page, "link_url-1") == "ftp://example.org/report"
    assert value_of(page, "organisation") == "Nobody We Know"
    assert "You chose notes.txt: choose it again" in page
    with web_runtime.sessions() as session:
        assert session.scalar(select(func.count()).select_from(Release)) == 0

    # A file that is not what it says is refused beside the file field.
    response = client.post(
        "/editor/new",
        data={"csrf_token": token, "headline": "H", "body": "B", "new_file_kind": "attachment"},
        files={"new_file": ("notes.pdf", b"plain text", "application/pdf")},
    )
    assert response.status_code == 422
    assert "notes.pdf is of an unknown type" in beside(response.text, "new_file")


# --- the preview and the test copy ------------------------------------------------------------


def test_the_live_preview_is_built_for_a_chosen_contact_and_framed_without_scripts(
    client: TestClient, people: dict[Role, str], web_runtime: Runtime
) -> None:
    newsdesks(web_runtime)
    token = log_in(client, OFFICER)
    draft = {
        "csrf_token": token,
        "headline": "Refuge opens",
        "body": "First paragraph.\r\n\r\nSecond paragraph.",
        "preview_as": "ANN@news.example.com",
    }
    facts = client.post("/editor/preview", data=draft)
    assert facts.status_code == 200
    body = facts.json()
    assert body["subject"] == "[TEST] Refuge opens"
    assert "Dear Ann Archer," in body["text"]
    assert "First paragraph.\n\nSecond paragraph." in body["text"]
    assert body["problems"] == [] and body["errors"] == {}

    unknown = client.post("/editor/preview", data=draft | {"preview_as": "zed@example.com"})
    assert "no contact with the address zed@example.com" in unknown.json()["errors"]["preview_as"]
    unfinished = client.post("/editor/preview", data=draft | {"headline": ""}).json()
    assert "the headline is empty" in unfinished["problems"]

    frame = client.post("/editor/preview/html", data=draft)
    assert frame.status_code == 200
    assert "Refuge opens" in frame.text and "Ann Archer" in frame.text
    policy = frame.headers["content-security-policy"]
    assert "sandbox" in policy and "frame-ancestors 'self'" in policy
    assert "script-src" not in policy and "default-src 'none'" in policy
    assert frame.headers["x-frame-options"] == "SAMEORIGIN"
    text = client.post("/editor/preview/html", data=draft | {"view": "text"})
    assert "<pre>" in text.text and "Dear Ann Archer," in text.text

    release_id = stored_release(web_runtime)
    page = client.get(f"/releases/{release_id}/edit")
    assert re.search(r'<iframe name="preview-html"[^>]* sandbox[\s>]', page.text)
    assert f'src="/releases/{release_id}/preview"' in page.text
    assert "script-src 'self'" in page.headers["content-security-policy"]
    assert "frame-src 'self'" in page.headers["content-security-policy"]
    stored = client.get(f"/releases/{release_id}/preview?contact=bob@news.example.com")
    assert "Charity opens three refuges" in stored.text and "Dear Bob" in stored.text
    assert "sandbox" in stored.headers["content-security-policy"]


def test_a_test_copy_goes_to_the_officer_alone_as_the_form_stands(
    people: dict[Role, str], web_runtime: Runtime, database_url: str, tmp_path: Path
) -> None:
    newsdesks(web_runtime)
    server = RecordingSMTPServer()
    server.start()
    runtime = Runtime(web_settings(database_url, tmp_path, smtp_url=server.url))
    try:
        client = TestClient(create_app(runtime), follow_redirects=False)
        token = log_in(client, OFFICER)
        form = {
            "csrf_token": token,
            "headline": "Unsaved headline",
            "body": "Unsaved body.",
            "preview_as": "ann@news.example.com",
        }
        refused = client.post("/editor/test-send", data=form | {"headline": ""})
        assert refused.status_code == 422
        assert "the headline is empty" in beside(refused.text, "headline")
        assert server.handler.received == []

        sent = client.post("/editor/test-send", data=form)
        assert sent.status_code == 200
        assert f"A test copy went to {OFFICER}" in sent.text
        assert value_of(sent.text, "headline") == "Unsaved headline", "the form stays as typed"
        (copy,) = server.handler.received
        assert copy.recipient == OFFICER
        message = copy.parsed()
        assert message["Subject"] == "[TEST] Unsaved headline"
        text = message.get_body(preferencelist=("plain",))
        assert text is not None and "Dear Ann Archer," in text.get_content()
    finally:
        runtime.close()
        server.stop()


def test_viewers_read_only_and_every_form_needs_its_token(
    client: TestClient, people: dict[Role, str], web_runtime: Runtime
) -> None:
    release_id = stored_release(web_runtime)
    assert client.get("/editor/new").headers["location"] == "/login?next=/editor/new"

    token = log_in(client, VIEWER)
    assert client.get(f"/releases/{release_id}").status_code == 200
    assert f"/releases/{release_id}/edit" not in client.get(f"/releases/{release_id}").text
    for method, path in [
        ("GET", "/editor/new"),
        ("GET", f"/releases/{release_id}/edit"),
        ("GET", f"/releases/{release_id}/schedule"),
        ("POST", "/editor/preview"),
        ("POST", f"/releases/{release_id}/lift"),
    ]:
        response = client.request(method, path, data={"csrf_token": token})
        assert response.status_code == 403, (method, path)
        assert "only a press officer, an approver or an admin may do this" in response.text

    client.post("/logout", data={"csrf_token": token})
    log_in(client, OFFICER)
    assert f"/releases/{release_id}/edit" in client.get(f"/releases/{release_id}").text
    forged = client.post(f"/releases/{release_id}/edit", data={"headline": "Forged", "body": "B"})
    assert forged.status_code == 403
    with web_runtime.sessions() as session:
        assert get_release(session, release_id).headline == "Charity opens three refuges"


# --- audience and embargo ---------------------------------------------------------------------


def test_the_audience_count_counts_each_address_once_and_leaves_out_the_suppressed(
    client: TestClient, people: dict[Role, str], web_runtime: Runtime
) -> None:
    newsdesks(web_runtime)
    release_id = stored_release(web_runtime)
    token = log_in(client, OFFICER)
    page = client.get(f"/releases/{release_id}/schedule")
    assert 'value="Health desks"' in page.text and 'value="UK"' in page.text

    def check(**form: object) -> dict[str, object]:
        response = client.post(
            f"/releases/{release_id}/schedule/check", data={"csrf_token": token, **form}
        )
        assert response.status_code == 200
        facts: dict[str, object] = response.json()
        return facts

    # Health: ann, bob, cat; crime: bob, cat, dan, eve (suppressed).
    assert check(lists="Health desks")["recipients"] == 3
    both = check(lists=["Health desks", "Crime desks"])
    assert (both["recipients"], both["left_out"]) == (4, 1)
    assert check(segments="UK", lists="Crime desks")["recipients"] == 3
    assert check()["recipients"] is None and check()["errors"] == {}
    missing = check(lists="Sports desks")
    assert "'Sports desks'" in str(missing["errors"])

    # Without script, the "Check" button shows the same count on the page, scheduling nothing.
    checked = client.post(
        f"/releases/{release_id}/schedule",
        data={"csrf_token": token, "lists": ["Health desks", "Crime desks"], "action": "check"},
    )
    assert checked.status_code == 200
    assert "4 recipients, 1 left out" in re.sub(r"<[^>]+>", "", checked.text)
    with web_runtime.sessions() as session:
        assert session.scalar(select(func.count()).select_from(Send)) == 0


def test_an_embargo_a_dst_change_skips_or_repeats_or_one_in_the_past_is_refused(
    client: TestClient, people: dict[Role, str], web_runtime: Runtime
) -> None:
    newsdesks(web_runtime)
    release_id = stored_release(web_runtime)
    token = log_in(client, OFFICER)
    skipped, repeated = next_transitions("Europe/London", now() + timedelta(days=1))
    form = {"csrf_token": token, "lists": "Health desks", "zone": "Europe/London"}

    gap = client.post(
        f"/releases/{release_id}/schedule/check", data=form | {"embargo": local(skipped)}
    ).json()
    assert f"{skipped:%Y-%m-%d %H:%M} does not exist in Europe/London" in gap["errors"]["embargo"]
    assert gap["errors"]["embargo"].count(" UTC)") == 2, "both candidates are named"
    assert gap["readings"] == []

    response = client.post(
        f"/releases/{release_id}/schedule",
        data=form | {"embargo": local(repeated), "action": "schedule"},
    )
    assert response.status_code == 422
    message = beside(response.text, "embargo")
    assert "happens twice in Europe/London" in message
    assert message.count(" UTC)") == 2
    assert value_of(response.text, "embargo") == local(repeated)
    assert re.search(r'value="Health desks" checked', response.text), "the choice is kept"

    past = client.post(
        f"/releases/{release_id}/schedule",
        data=form | {"embargo": local(datetime.now() - timedelta(days=2)), "action": "schedule"},
    )
    assert past.status_code == 422 and "is in the past" in beside(past.text, "embargo")
    zone = client.post(
        f"/releases/{release_id}/schedule/check", data=form | {"zone": "Mars/Olympus"}
    )
    assert "unknown time zone 'Mars/Olympus'" in zone.json()["errors"]["zone"]
    with web_runtime.sessions() as session:
        assert session.scalar(select(func.count()).select_from(Send)) == 0


def test_scheduling_reads_the_embargo_in_the_officers_zone_and_shows_it_in_others(
    client: TestClient, people: dict[Role, str], web_runtime: Runtime
) -> None:
    newsdesks(web_runtime)
    add_london_officer(web_runtime)
    release_id = stored_release(web_runtime, organisation="Careful Trust")
    token = log_in(client, LONDON_OFFICER)
    page = client.get(f"/releases/{release_id}/schedule")
    assert value_of(page.text, "zone") == "Europe/London", "the account's zone is the default"

    when = datetime.now(ZoneInfo("Europe/London")).replace(second=0, microsecond=0) + timedelta(
        days=3
    )
    form = {"csrf_token": token, "lists": ["Health desks", "Crime desks"], "embargo": local(when)}
    facts = client.post(f"/releases/{release_id}/schedule/check", data=form).json()
    zones = [reading["zone"] for reading in facts["readings"]]
    assert zones == ["Europe/London", "UTC", "America/New_York", "Asia/Tokyo"]
    assert facts["countdown"].startswith("in 2 d 23 h") or facts["countdown"].startswith("in 3 d")

    # Nobody on these lists is vetted for embargoed copies: the pre-brief is refused beside it.
    prebrief = form | {"action": "schedule", "prebrief": "now"}
    refused = client.post(f"/releases/{release_id}/schedule", data=prebrief)
    assert refused.status_code == 404
    assert "nobody in this audience may have the embargoed copy" in beside(
        refused.text, "prebrief_at"
    )

    response = client.post(f"/releases/{release_id}/schedule", data=form | {"action": "schedule"})
    assert response.status_code == 303
    assert response.headers["location"] == f"/releases/{release_id}/schedule"
    page = client.get(f"/releases/{release_id}/schedule")
    utc = when.astimezone(UTC)
    assert re.search(r"Scheduled send \d+ to 4 recipient\(s\) as the lists stand now", page.text)
    assert "Nothing goes out until an approver other than you approves it." in page.text
    assert f"{utc:%-d %b %Y, %H:%M} UTC" in page.text
    assert f"{when.astimezone(ZoneInfo('Asia/Tokyo')):%-d %b %Y, %H:%M} JST" in page.text
    assert f'data-countdown-to="{utc.isoformat()}"' in page.text
    assert "Awaiting approval" in page.text
    with web_runtime.sessions() as session:
        send = session.scalars(select(Send)).one()
        assert send.embargo_zone == "Europe/London" and send.embargo_at == utc
        assert send.scheduled_by is not None and LONDON_OFFICER in send.scheduled_by


def test_move_lift_and_cancel_each_ask_for_confirmation_first(
    client: TestClient, people: dict[Role, str], web_runtime: Runtime
) -> None:
    newsdesks(web_runtime)
    release_id = stored_release(web_runtime)
    first = now().replace(second=0, microsecond=0) + timedelta(days=2)
    with web_runtime.sessions(info=acting_info(SAM)) as session, session.begin():
        schedule_send(
            session,
            release_id=release_id,
            list_names=["Health desks"],
            embargo_at=first,
            embargo_zone="UTC",
            now=now(),
            batch_size=100,
        )
    token = log_in(client, OFFICER)

    def public_send() -> Send:
        with web_runtime.sessions() as session:
            return session.scalars(select(Send).where(Send.kind == SendKind.PUBLIC)).one()

    later = first + timedelta(days=1)
    move = {"csrf_token": token, "embargo": local(later), "zone": "UTC"}
    asked = client.post(f"/releases/{release_id}/move", data=move)
    assert asked.status_code == 200 and "Move the embargo?" in asked.text
    assert public_send().embargo_at == first, "nothing moves before it is confirmed"
    confirm = {
        "csrf_token": csrf_in(asked.text),
        **dict(
            re.findall(
                r'<input type="hidden" name="(embargo|zone|confirmed)" value="([^"]*)"', asked.text
            )
        ),
    }
    assert client.post(f"/releases/{release_id}/move", data=confirm).status_code == 303
    assert public_send().embargo_at == later
    assert "Embargo moved to" in client.get(f"/releases/{release_id}/schedule").text

    asked = client.post(f"/releases/{release_id}/lift", data={"csrf_token": token})
    assert asked.status_code == 200 and "Lift the embargo now?" in asked.text
    assert public_send().embargo_at == later
    lifted = client.post(
        f"/releases/{release_id}/lift", data={"csrf_token": token, "confirmed": "yes"}
    )
    assert lifted.status_code == 303
    assert public_send().embargo_at <= now()

    asked = client.post(f"/releases/{release_id}/cancel", data={"csrf_token": token})
    assert asked.status_code == 200 and "Cancel this release?" in asked.text
    assert public_send().state is not SendState.CANCELLED
    cancelled = client.post(
        f"/releases/{release_id}/cancel", data={"csrf_token": token, "confirmed": "yes"}
    )
    assert cancelled.status_code == 303
    assert public_send().state is SendState.CANCELLED
    again = client.post(f"/releases/{release_id}/lift", data={"csrf_token": token})
    assert again.status_code == 409
    assert "no send waiting for its embargo" in again.text
