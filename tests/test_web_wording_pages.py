"""The core's refusals speak to the command line ("pass --again", "see `distributor lists
show`"); a web page shows the same refusal in words that fit a page, while the command line
still prints its own. Against the real database (SQLite and PostgreSQL)."""

from __future__ import annotations

import html
import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from distributor.acting import acting_info
from distributor.actors import Actor, Role
from distributor.approvals import approve_release
from distributor.audience import choose_audience
from distributor.errors import DistributorError, page_words
from distributor.lists import get_lists
from distributor.organisations import get_organisation
from distributor.releases.store import get_release
from distributor.runtime import Runtime
from distributor.scheduling import cancel_release, get_send
from distributor.segments.store import get_segments
from tests.support.web import (
    PEOPLE,
    client_fixture,  # noqa: F401 - fixture
    csrf_in,
    log_in,
    people_fixture,  # noqa: F401 - fixture
    release_awaiting_approval,
    web_runtime_fixture,  # noqa: F401 - fixture
)
from tests.test_web_editor import local, newsdesks, stored_release

OFFICER = PEOPLE[Role.PRESS_OFFICER]
# What only the command line can act on: a flag, or a command in backquotes.
COMMAND_LINE_WORDS = re.compile(r"(?<![\w-])--[a-z]|`")


def main_text(page: str) -> str:
    """The words of the page's main part, as a person reads them."""
    main = page.split("<main", 1)[1].split("</main>", 1)[0]
    return html.unescape(re.sub(r"<[^>]+>", " ", main))


REFUSALS: dict[str, Callable[[Session], object]] = {
    "release": lambda session: get_release(session, 999),
    "send": lambda session: get_send(session, 999),
    "cancel": lambda session: cancel_release(session, release_id=999, now=datetime.now(UTC)),
    "list": lambda session: get_lists(session, ["Nope"]),
    "segment": lambda session: get_segments(session, ["Nope"]),
    "audience": lambda session: choose_audience(session),
    "organisation": lambda session: get_organisation(session, "Nobody We Know"),
}


@pytest.mark.parametrize("refusal", sorted(REFUSALS))
def test_a_refusal_has_words_for_the_command_line_and_words_for_a_page(
    web_runtime: Runtime, refusal: str
) -> None:
    with web_runtime.sessions() as session, pytest.raises(DistributorError) as refused:
        REFUSALS[refusal](session)
    error = refused.value
    assert COMMAND_LINE_WORDS.search(str(error)), "the command line keeps its hint"
    assert not COMMAND_LINE_WORDS.search(page_words(error)), page_words(error)
    assert page_words(error) == error.for_page
    assert page_words("plain text") == "plain text"


def test_an_approval_after_the_embargo_says_to_move_it_in_page_words(
    web_runtime: Runtime, people: dict[Role, str]
) -> None:
    release_id = release_awaiting_approval(web_runtime)
    approver = Actor(PEOPLE[Role.APPROVER], Role.APPROVER)
    too_late = datetime.now(UTC) + timedelta(days=2)
    with (
        web_runtime.sessions(info=acting_info(approver)) as session,
        pytest.raises(DistributorError) as refused,
    ):
        approve_release(session, release_id=release_id, now=too_late)
    assert "`release move`" in str(refused.value)
    assert page_words(refused.value).endswith("; move the embargo first, then approve")


def test_the_schedule_page_names_no_flag(
    client: TestClient, people: dict[Role, str], web_runtime: Runtime
) -> None:
    newsdesks(web_runtime)
    release_id = stored_release(web_runtime)
    token = log_in(client, OFFICER)
    when = local(datetime.now() + timedelta(days=2))
    form = {"csrf_token": token, "embargo": when, "zone": "Europe/London", "action": "schedule"}

    nobody = client.post(f"/releases/{release_id}/schedule", data=form)

    assert nobody.status_code in (404, 422)
    shown = main_text(nobody.text)
    assert "choose at least one media list or segment to send to" in shown
    assert not COMMAND_LINE_WORDS.search(shown), shown
    scheduled = client.post(
        f"/releases/{release_id}/schedule", data=form | {"lists": "Health desks"}
    )
    assert scheduled.status_code == 303
    twice = client.post(f"/releases/{release_id}/schedule", data=form | {"lists": "Health desks"})
    assert twice.status_code == 409
    shown = main_text(twice.text)
    assert "choose to also send it to those who already have it" in shown
    assert not COMMAND_LINE_WORDS.search(shown), shown


def test_the_contacts_pages_name_no_flag(
    client: TestClient, people: dict[Role, str], web_runtime: Runtime
) -> None:
    newsdesks(web_runtime)
    token = log_in(client, OFFICER)

    again = client.post(
        "/contacts/segments",
        data={"filter": 'country = "IE"', "name": "UK", "csrf_token": token},
    )

    assert again.status_code == 422
    shown = main_text(again.text)
    assert "a segment named 'UK' exists already; choose to replace its filter" in shown
    assert not COMMAND_LINE_WORDS.search(shown), shown
    upload = client.post(
        "/contacts/import",
        data={"csrf_token": csrf_in(client.get("/contacts/import").text)},
        files={"file": ("people.csv", b"mail,who\nx@example.org,X\n", "text/csv")},
    )
    assert upload.status_code == 422
    shown = main_text(upload.text)
    assert "missing column(s) email, name" in shown and "rename the column in the file" in shown
    assert not COMMAND_LINE_WORDS.search(shown), shown
    unknown = client.get("/contacts/segments/delete", params={"name": "Nope"})
    assert unknown.status_code == 404
    assert not COMMAND_LINE_WORDS.search(main_text(unknown.text))
