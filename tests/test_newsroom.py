"""The public newsroom: nothing of a release shows before its lift, by the database's clock
at the moment of asking; everything shows from that instant; withdrawn releases never do.

The boundary is tested on a database clock the test moves (a microsecond either side of
the embargo), and once on the database server's own clock.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from distributor.acting import acting_info
from distributor.actors import Actor, Role
from distributor.clock import ManualClock
from distributor.contacts_import import ContactRow, ParsedContacts, import_contacts
from distributor.corrections import correct_release
from distributor.embargo_changes import lift_embargo, move_embargo, withdraw_release
from distributor.engine.dbclock import FollowingClock
from distributor.lists import add_to_list, create_list
from distributor.models import Send
from distributor.newsroom import address_of, id_from_address, slugify
from distributor.organisations import save_organisation
from distributor.prebriefs import PrebriefRequest
from distributor.releases import ReleaseDraft, create_release
from distributor.releases.draft import AttachmentFile, BodyFormat, ImageFile
from distributor.runtime import Runtime
from distributor.scheduling import schedule_send
from distributor.states import SendKind
from distributor.web.app import create_app
from tests.support.engine import run_tick, send_by_hand
from tests.support.web import web_runtime_fixture  # noqa: F401 - fixture

NOW = datetime(2031, 3, 4, 9, 0, tzinfo=UTC)
EMBARGO = NOW + timedelta(minutes=30)
MICROSECOND = timedelta(microseconds=1)
ARMING = EMBARGO - timedelta(seconds=10)
LIST = "Newsdesks"
OFFICER = Actor("pat@example.org", Role.PRESS_OFFICER)
ATOM = "{http://www.w3.org/2005/Atom}"
# A PNG of one pixel.
PIXEL = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c6360f8cfc0f01f0005000201e5273ede0000000049454e44ae426082"
)


@dataclass
class Newsroom:
    runtime: Runtime
    client: TestClient
    clock: ManualClock

    def at(self, instant: datetime) -> None:
        """Set the database's clock (as every query of the newsroom reads it)."""
        self.clock.advance((instant - self.clock.now()).total_seconds())
        assert self.clock.now() == instant

    def get(self, path: str) -> Any:
        return self.client.get(path)

    def release(
        self,
        headline: str,
        *,
        organisation: str = "",
        embargo_at: datetime = EMBARGO,
        draft: ReleaseDraft | None = None,
        now: datetime = NOW,
        prebrief_at: datetime | None = None,
    ) -> tuple[int, str]:
        """A release scheduled for `embargo_at`; its id and the address it will have."""
        draft = draft or ReleaseDraft(
            headline=headline,
            dateline="Leeds",
            standfirst=f"Standfirst of {headline}",
            body="The first paragraph.\n\nThe second paragraph.",
            notes_to_editors="",
            organisation=organisation,
        )
        with self.session() as session:
            if organisation:
                save_organisation(
                    session, name=organisation, now=NOW, about="A charity.", website=""
                )
            release = create_release(session, draft, now=now)
            schedule_send(
                session,
                release_id=release.id,
                list_names=[LIST],
                embargo_at=embargo_at,
                embargo_zone="Europe/London",
                now=now,
                batch_size=100,
                prebrief=PrebriefRequest(at=prebrief_at) if prebrief_at else None,
            )
            return release.id, address_of(release.id, draft.headline)

    def session(self) -> AbstractContextManager[Session]:
        return self.runtime.sessions.begin()

    def arm(self, at: datetime = ARMING) -> None:
        run_tick(self.runtime, at)

    def deliver(self, release_id: int, *, at: datetime) -> None:
        """A worker sends the release's public send to everyone at `at`."""
        with self.runtime.sessions() as session:
            send_id = session.scalar(
                select(Send.id).where(Send.release_id == release_id, Send.kind == SendKind.PUBLIC)
            )
        assert send_id is not None
        send_by_hand(self.runtime, send_id, 0, at=at)


@pytest.fixture
def newsroom(web_runtime: Runtime) -> Iterator[Newsroom]:
    clock = ManualClock(NOW)
    web_runtime.database_clock_override = FollowingClock(clock)
    rows = [
        # One desk vetted for embargoed copies, for the pre-brief.
        ContactRow(
            line=i + 2, email=f"desk{i}@news.example.com", name=f"Desk {i}", embargo_vetted=i == 0
        )
        for i in range(3)
    ]
    with web_runtime.sessions(info=acting_info(OFFICER)) as session, session.begin():
        import_contacts(session, ParsedContacts(rows=rows), now=NOW)
        create_list(session, LIST, now=NOW)
        add_to_list(session, LIST, [r.email for r in rows])
    web_runtime.act_as(OFFICER)
    with TestClient(create_app(web_runtime), follow_redirects=False) as client:
        yield Newsroom(web_runtime, client, clock)


def same_answer(first: Any, second: Any) -> None:
    """Two answers nobody can tell apart: status, headers (but the date) and body."""
    assert first.status_code == second.status_code == 404
    assert first.content == second.content

    def headers(response: Any) -> list[tuple[str, str]]:
        return sorted((k, v) for k, v in response.headers.items() if k != "date")

    assert headers(first) == headers(second)


def feed_entries(newsroom: Newsroom, path: str = "/news/feed.xml") -> list[dict[str, str]]:
    response = newsroom.get(path)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/atom+xml")
    feed = ET.fromstring(response.content)
    assert feed.tag == f"{ATOM}feed"
    assert feed.findtext(f"{ATOM}updated")
    return [
        {
            "title": entry.findtext(f"{ATOM}title") or "",
            "id": entry.findtext(f"{ATOM}id") or "",
            "link": entry.find(f"{ATOM}link").get("href", ""),  # type: ignore[union-attr]
            "published": entry.findtext(f"{ATOM}published") or "",
            "summary": entry.findtext(f"{ATOM}summary") or "",
        }
        for entry in feed.findall(f"{ATOM}entry")
    ]


def test_addresses_are_readable_and_name_only_ids_in_range() -> None:
    assert slugify("Charity opens 3 new refuges — in Leeds & York!") == (
        "charity-opens-3-new-refuges-in-leeds-york"
    )
    assert address_of(12, "Émile's café reopens") == "12-emile-s-cafe-reopens"
    assert address_of(7, "Ελληνικά") == "7"
    assert id_from_address("12-anything-at-all") == 12
    assert id_from_address("12-Mistyped Words") == 12
    assert id_from_address("7") == 7
    for wrong in ("0", "abc", "12_x", "99999999999", "2147483648", "-1", "", "x-12"):
        assert id_from_address(wrong) is None, wrong


def test_nothing_shows_a_microsecond_before_the_lift_and_everything_at_it(
    newsroom: Newsroom,
) -> None:
    # Given a release under embargo, pre-briefed at 09:05, armed ten seconds before its lift
    headline = 'Pay & conditions: <charity> says "enough" to R&D cuts'
    prebrief_at = NOW + timedelta(minutes=5)
    release_id, address = newsroom.release(
        headline, organisation="SafeLives", prebrief_at=prebrief_at
    )
    newsroom.arm(prebrief_at)
    newsroom.at(prebrief_at)
    assert "Pay" not in newsroom.get("/news").text  # the pre-brief's hour is no lift
    assert newsroom.get(f"/news/{address}").status_code == 404
    newsroom.arm()
    organisation = newsroom.get("/news").text  # nothing yet: learn the org's address below
    assert "SafeLives" not in organisation
    page = f"/news/{address}"
    unknown = newsroom.get("/news/2000000000-no-such-release")

    # When anyone asks a microsecond before the lift, nothing of it is there
    newsroom.at(EMBARGO - MICROSECOND)
    index = newsroom.get("/news")
    assert index.status_code == 200
    for text in ("Pay &amp; conditions", "Standfirst of", "SafeLives", address):
        assert text not in index.text
    same_answer(newsroom.get(page), unknown)
    same_answer(newsroom.get(f"/news/{release_id}"), unknown)
    same_answer(newsroom.get(f"/news/{release_id}-x/files/photo.png"), unknown)
    same_answer(newsroom.get("/news/by/1-safelives"), unknown)
    same_answer(newsroom.get("/news/by/1-safelives/feed.xml"), unknown)
    assert feed_entries(newsroom) == []
    assert "Pay" not in newsroom.get("/news/feed.xml").text

    # Then at the lift itself it is everywhere
    newsroom.at(EMBARGO)
    shown = newsroom.get(page)
    assert shown.status_code == 200
    assert "Pay &amp; conditions: &lt;charity&gt; says &#34;enough&#34;" in shown.text
    assert 'name="robots"' not in shown.text  # search engines may index it from now
    assert "Standfirst of" in shown.text and "The second paragraph." in shown.text
    assert f'<time datetime="{EMBARGO.isoformat()}">Tue 4 Mar 2031, 09:30 GMT</time>' in shown.text
    index = newsroom.get("/news")
    assert f'href="/news/{address}"' in index.text
    assert newsroom.get("/news/by/1-safelives").status_code == 200
    (entry,) = feed_entries(newsroom)
    assert entry["title"] == headline
    assert entry["link"] == f"http://testserver/news/{address}" == entry["id"]
    assert datetime.fromisoformat(entry["published"]) == EMBARGO
    assert entry["summary"] == f"Standfirst of {headline}"
    assert [e["title"] for e in feed_entries(newsroom, "/news/by/1-safelives/feed.xml")] == [
        headline
    ]
    # An address with another headline, or none, leads to the one address of the release
    for other in (f"/news/{release_id}", f"/news/{release_id}-Old-Words"):
        moved = newsroom.get(other)
        assert moved.status_code == 301 and moved.headers["location"] == page

    # And with no clock of the test's, the database server's own decides, in the query
    newsroom.runtime.database_clock_override = None
    now = datetime.now(UTC)
    real_id, real = newsroom.release("Real clock", embargo_at=now + timedelta(hours=1), now=now)
    newsroom.arm(now + timedelta(hours=1) - timedelta(seconds=10))  # armed, an hour early
    assert newsroom.get(f"/news/{real}").status_code == 404
    with newsroom.session() as session:
        lift_embargo(
            session, release_id=real_id, now=datetime.now(UTC), arm_lead=timedelta(seconds=10)
        )
    assert newsroom.get(f"/news/{real}").status_code == 200


def test_moved_lifted_withdrawn_and_unapproved_releases(newsroom: Newsroom) -> None:
    moved_id, moved = newsroom.release("Moved an hour later")
    lifted_id, lifted = newsroom.release("Lifted early")
    withdrawn_id, withdrawn = newsroom.release("Withdrawn before its lift")
    pulled_id, pulled = newsroom.release("Withdrawn while going out")
    on_time_id, on_time = newsroom.release("On time", organisation="Careful Trust")
    with newsroom.session() as session:
        save_organisation(session, name="Careful Trust", now=NOW, require_approval=True)
    _, waiting = newsroom.release("Waits for approval", organisation="Careful Trust")
    later = EMBARGO + timedelta(hours=1)
    early = NOW + timedelta(minutes=5)
    with newsroom.session() as session:
        move_embargo(
            session,
            release_id=moved_id,
            embargo_at=later,
            embargo_zone="Europe/London",
            now=NOW,
            arm_lead=timedelta(seconds=10),
            batch_size=100,
        )
        withdraw_release(session, release_id=withdrawn_id, now=NOW, batch_size=100)
    with newsroom.session() as session:
        lift_embargo(session, release_id=lifted_id, now=early, arm_lead=timedelta(seconds=10))
    newsroom.arm(early)
    newsroom.at(early)
    assert newsroom.get(f"/news/{lifted}").status_code == 200
    newsroom.deliver(lifted_id, at=early)

    newsroom.arm()
    newsroom.at(EMBARGO)
    assert newsroom.get(f"/news/{pulled}").status_code == 200
    newsroom.deliver(on_time_id, at=EMBARGO)
    with newsroom.session() as session:
        withdraw_release(session, release_id=pulled_id, now=EMBARGO, batch_size=100)

    newsroom.at(later - MICROSECOND)
    titles = [e["title"] for e in feed_entries(newsroom)]
    assert titles == ["On time", "Lifted early"]
    assert newsroom.get(f"/news/{on_time}").status_code == 200
    for hidden in (moved, withdrawn, pulled, waiting):
        assert newsroom.get(f"/news/{hidden}").status_code == 404, hidden

    newsroom.arm(later - timedelta(seconds=10))
    newsroom.at(later)
    titles = [e["title"] for e in feed_entries(newsroom)]
    assert titles == ["Moved an hour later", "On time", "Lifted early"]
    index = newsroom.get("/news").text
    for hidden in ("Withdrawn before", "Withdrawn while", "Waits for approval"):
        assert hidden not in index


def test_pictures_downloads_and_corrections_follow_the_release(newsroom: Newsroom) -> None:
    draft = ReleaseDraft(
        headline="Refuge opens with a photo",
        dateline="",
        body="Opening day.\n\n![The new refuge](photo.png)\n\nMore text.",
        body_format=BodyFormat.MARKDOWN,
        notes_to_editors="",
        images=(ImageFile("photo.png", "image/png", PIXEL, alt="The new refuge"),),
        attachments=(AttachmentFile("report.pdf", "application/pdf", b"%PDF-1.4 report"),),
    )
    release_id, address = newsroom.release("", draft=draft)
    newsroom.arm()
    photo, report = f"/news/{address}/files/photo.png", f"/news/{address}/files/report.pdf"
    newsroom.at(EMBARGO - MICROSECOND)
    unknown = newsroom.get("/news/2000000000")
    same_answer(newsroom.get(photo), unknown)
    same_answer(newsroom.get(report), unknown)

    newsroom.at(EMBARGO)
    page = newsroom.get(f"/news/{address}").text
    assert re.search(f'<img alt="The new refuge"[^>]* src="{photo}">', page)
    assert f'href="{report}"' in page
    picture = newsroom.get(photo)
    assert picture.status_code == 200 and picture.content == PIXEL
    assert picture.headers["content-type"] == "image/png"
    download = newsroom.get(report)
    assert download.content == b"%PDF-1.4 report"
    assert download.headers["content-disposition"].startswith("attachment")
    assert newsroom.get(f"/news/{address}/files/other.png").status_code == 404

    # When a correction goes out, its text is shown at the same address, with the note
    newsroom.deliver(release_id, at=EMBARGO)
    corrected_at = EMBARGO + timedelta(minutes=20)
    with newsroom.session() as session:
        correct_release(
            session,
            release_id=release_id,
            draft=ReleaseDraft(
                headline="Refuge opens with a photo",
                dateline="",
                body="Opening day, corrected.",
                notes_to_editors="",
            ),
            note="The opening was on Monday.",
            now=corrected_at,
            batch_size=100,
        )
    newsroom.at(corrected_at)
    assert "corrected" not in newsroom.get(f"/news/{address}").text  # not yet armed
    newsroom.arm(corrected_at)
    page = newsroom.get(f"/news/{address}").text
    assert "Opening day, corrected." in page and "The opening was on Monday." in page
    assert "Corrected" in newsroom.get("/news").text
