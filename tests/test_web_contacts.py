"""The contacts pages: importing a file (problems shown by line before anything is stored),
browsing contacts and outlets, editing lists, building segments, the suppression list and
data protection, by role, against the real database (SQLite and PostgreSQL)."""

from __future__ import annotations

import json
import re

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from distributor.actors import Role
from distributor.models import AuditEntry, Contact
from distributor.runtime import Runtime
from distributor.web import contacts_upload
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
ADMIN = PEOPLE[Role.ADMIN]
CONTACTS_CSV = (
    "email,name,outlet,beats,country\n"
    "ann.archer@times.example.com,Ann Archer,The Times,crime;courts,GB\n"
    "not an address,Bad Row,The Times,crime,GB\n"
    "bob@post.example.com,Bob Baker,Morning Post,health,IE\n"
    "carla@post.example.com,Carla Cole,Morning Post,crime,Great Britain\n"
    "dan@gazette.example.com,Dan Dale,Gazette,crime,GB\n"
)


def contact_count(runtime: Runtime) -> int:
    with runtime.sessions() as session:
        return session.scalar(select(func.count()).select_from(Contact)) or 0


def upload(client: TestClient, token: str, name: str, content: str) -> tuple[int, str]:
    response = client.post(
        "/contacts/import",
        data={"csrf_token": token},
        files={"file": (name, content.encode(), "text/csv")},
    )
    return response.status_code, response.text


def confirm(client: TestClient, page: str, **fields: str) -> int:
    form = {
        "csrf_token": csrf_in(page),
        "token": re.search(r'name="token" value="([^"]+)"', page).group(1),  # type: ignore[union-attr]
        **fields,
    }
    if 'name="skip_invalid"' in page:
        form["skip_invalid"] = "true"
    return client.post("/contacts/import/confirm", data=form).status_code


def imported(client: TestClient, runtime: Runtime) -> None:
    """The sample contacts, the two bad rows left out, imported by a press officer."""
    token = log_in(client, OFFICER)
    _, page = upload(client, token, "journalists.csv", CONTACTS_CSV)
    assert confirm(client, page) == 303


def test_an_import_shows_the_problems_by_line_and_stores_nothing_until_confirmed(
    client: TestClient,
    people: dict[Role, str],
    web_runtime: Runtime,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    viewer = TestClient(client.app, follow_redirects=False)
    viewer_token = log_in(viewer, VIEWER)
    assert upload(viewer, viewer_token, "a.csv", CONTACTS_CSV)[0] == 403
    assert "/contacts/import" not in viewer.get("/contacts").text
    token = log_in(client, OFFICER)
    assert client.get("/contacts/import").status_code == 200

    status, page = upload(client, token, "journalists.csv", CONTACTS_CSV)

    assert status == 200
    assert "<li>line 3: " in page and "not an address" in page
    assert "<li>line 5: " in page and "Great Britain" in page
    assert '<span class="n">3</span> new contacts' in page
    assert "Import 3 valid rows, leave out 2" in page
    assert contact_count(web_runtime) == 0, "nothing is stored before the confirmation"
    # Another person cannot import the file this one uploaded.
    admin = TestClient(client.app, follow_redirects=False)
    log_in(admin, ADMIN)
    assert confirm(admin, page.replace(csrf_in(page), csrf_in(admin.get("/contacts").text))) == 422

    assert confirm(client, page) == 303

    assert contact_count(web_runtime) == 3
    listing = client.get("/contacts").text
    assert "Imported 3 new and updated 0 contact(s); left out 2 row(s) with problems." in listing
    # A clean JSON file: nothing to leave out, and an address already held is updated.
    records = [
        {"email": "bob@post.example.com", "name": "Bob Baker", "role": "Health editor"},
        {"email": "eve@radio.example.com", "name": "Eve Evans", "outlet": "Radio North"},
    ]
    status, page = upload(client, token, "more.json", json.dumps(records))
    assert status == 200 and "Import 2 contacts" in page and "Problems" not in page
    assert confirm(client, page) == 303
    assert contact_count(web_runtime) == 4
    # A file with no good row, one of another kind, and one too large are refused.
    status, page = upload(client, token, "bad.csv", "mail,who\nx,y\n")
    assert status == 422 and "missing column(s) email, name" in page
    assert 'name="token"' not in page
    status, page = upload(client, token, "book.xlsx", "PK")
    assert status == 400 and "not a CSV or JSON file" in page
    monkeypatch.setattr(contacts_upload, "MAX_UPLOAD_BYTES", 100)
    status, page = upload(client, token, "big.csv", CONTACTS_CSV)
    assert status == 400 and "larger than" in page
    with web_runtime.sessions() as session:
        imports = session.scalars(
            select(AuditEntry.actor).where(AuditEntry.action == "contacts.imported")
        ).all()
    assert imports == [OFFICER, OFFICER]


def test_contacts_and_outlets_are_browsed_and_searched_and_lists_edited(
    client: TestClient, people: dict[Role, str], web_runtime: Runtime
) -> None:
    imported(client, web_runtime)
    viewer = TestClient(client.app, follow_redirects=False)
    viewer_token = log_in(viewer, VIEWER)

    everyone = viewer.get("/contacts", params={"per_page": 2})
    assert everyone.status_code == 200
    assert "Page 1 of 2 · 3 in all" in everyone.text and "Ann Archer" in everyone.text
    found = viewer.get("/contacts", params={"q": "ARCHER"}).text
    assert "ann.archer@times.example.com" in found and "Bob Baker" not in found
    by_filter = viewer.get("/contacts", params={"matching": 'beat = "health"'}).text
    assert "Bob Baker" in by_filter and "Ann Archer" not in by_filter
    bad_filter = viewer.get("/contacts", params={"matching": "beat = health"})
    assert bad_filter.status_code == 422 and "put the value in quotes" in bad_filter.text
    outlets = viewer.get("/contacts/outlets", params={"q": "post"}).text
    assert "Morning Post" in outlets and "The Times" not in outlets
    assert '<td data-label="Journalists" class="num">1</td>' in outlets
    detail = viewer.get("/contacts/detail", params={"email": "Ann.Archer@times.example.com"})
    assert detail.status_code == 200 and "courts, crime" in detail.text
    assert viewer.get("/contacts/detail", params={"email": "x@example.org"}).status_code == 404

    token = csrf_in(client.get("/contacts/lists").text)
    created = client.post("/contacts/lists", data={"name": "Crime desks", "csrf_token": token})
    assert created.status_code == 303
    list_page = created.headers["location"]
    added = client.post(
        "/contacts/list/add",
        data={
            "name": "Crime desks",
            "addresses": "ann.archer@times.example.com,\nbob@post.example.com",
            "matching": 'outlet = "Gazette"',
            "csrf_token": token,
        },
    )
    assert added.status_code == 303
    members = client.get(list_page).text
    assert "Added 3 contacts to “Crime desks”." in members
    assert "dan@gazette.example.com" in members and "3 contacts" in members
    unknown = client.post(
        "/contacts/list/add",
        data={"name": "Crime desks", "addresses": "zed@example.org", "csrf_token": token},
    )
    assert unknown.status_code == 404 and "no contact with the address(es) zed@example.org" in (
        unknown.text
    )
    removed = client.post(
        "/contacts/list/remove",
        data={"name": "Crime desks", "email": ["bob@post.example.com"], "csrf_token": token},
    )
    assert removed.status_code == 303
    assert "Took 1 contact off “Crime desks”." in client.get(list_page).text
    assert '<td data-label="Contacts" class="num">2</td>' in viewer.get("/contacts/lists").text
    # A viewer reads the list but changes nothing.
    viewer_list = viewer.get(list_page).text
    assert "ann.archer@times.example.com" in viewer_list and "Add to the list" not in viewer_list
    form = {"name": "Crime desks", "addresses": "bob@post.example.com", "csrf_token": viewer_token}
    assert viewer.post("/contacts/list/add", data=form).status_code == 403


def test_a_segment_is_built_with_a_live_count_and_sample_then_saved(
    client: TestClient, people: dict[Role, str], web_runtime: Runtime
) -> None:
    imported(client, web_runtime)

    preview = client.get("/contacts/segments/preview", params={"filter": 'beat = "crime"'})
    assert preview.status_code == 200
    assert '<span class="n" data-match-count>2</span> contacts match now' in preview.text
    assert "Ann Archer" in preview.text and "<html" not in preview.text
    mistake = client.get("/contacts/segments/preview", params={"filter": "beat = crime"}).text
    assert "put the value in quotes" in mistake and "^^^^^" in mistake
    page = client.get("/contacts/segments")
    assert page.status_code == 200
    assert "script-src 'self'" in page.headers["content-security-policy"]
    assert '<script src="/static/contacts.js?v=' in page.text
    token = csrf_in(page.text)
    shown = client.post(
        "/contacts/segments",
        data={"filter": 'country = "GB"', "name": "UK", "intent": "preview", "csrf_token": token},
    )
    assert shown.status_code == 200 and "data-match-count>2</span>" in shown.text

    saved = client.post(
        "/contacts/segments",
        data={"filter": 'beat = "crime"', "name": "Crime", "csrf_token": token},
    )

    assert saved.status_code == 303
    segments = client.get("/contacts/segments").text
    assert "Saved the segment “Crime”." in segments
    assert '<td data-label="Reaches now" class="num">2</td>' in segments
    again = client.post(
        "/contacts/segments",
        data={"filter": 'beat = "courts"', "name": "Crime", "csrf_token": token},
    )
    assert again.status_code == 422 and "exists already" in again.text
    viewer = TestClient(client.app, follow_redirects=False)
    viewer_token = log_in(viewer, VIEWER)
    assert "Save the segment" not in viewer.get("/contacts/segments").text
    form = {"filter": 'beat = "x"', "name": "X", "csrf_token": viewer_token}
    assert viewer.post("/contacts/segments", data=form).status_code == 403


def test_suppressions_and_data_protection_by_role(
    client: TestClient, people: dict[Role, str], web_runtime: Runtime
) -> None:
    imported(client, web_runtime)
    token = csrf_in(client.get("/contacts/suppressions").text)
    added = client.post(
        "/contacts/suppressions",
        data={"email": "Bob@post.example.com", "note": "asked by phone", "csrf_token": token},
    )
    assert added.status_code == 303
    listing = client.get("/contacts/suppressions").text
    assert "Suppressed Bob@post.example.com." in listing and "asked by phone" in listing
    # A press officer adds, but only an admin takes an address off, after confirming.
    assert "Take off" not in listing
    form = {"email": "bob@post.example.com", "csrf_token": token}
    assert client.post("/contacts/suppressions/remove", data=form).status_code == 403
    assert client.get("/contacts/gdpr").status_code == 403
    assert client.post("/contacts/gdpr/export", data=form).status_code == 403

    admin = TestClient(client.app, follow_redirects=False)
    admin_token = log_in(admin, ADMIN)
    assert "Take off" in admin.get("/contacts/suppressions").text
    ask = admin.get("/contacts/suppressions/remove", params={"email": "bob@post.example.com"})
    assert "Mail bob@post.example.com again?" in ask.text
    lifted = admin.post(
        "/contacts/suppressions/remove",
        data={"email": "bob@post.example.com", "csrf_token": admin_token},
    )
    assert lifted.status_code == 303
    assert "bob@post.example.com may be mailed again." in admin.get("/contacts/suppressions").text

    export = admin.post(
        "/contacts/gdpr/export",
        data={"email": "ann.archer@times.example.com", "csrf_token": admin_token},
    )
    assert export.status_code == 200 and "attachment" in export.headers["content-disposition"]
    assert export.json()["contact"]["name"] == "Ann Archer"
    asked = admin.post(
        "/contacts/gdpr/erase",
        data={"email": "ann.archer@times.example.com", "csrf_token": admin_token},
    )
    assert "Erase everything held about ann.archer@times.example.com?" in asked.text
    assert "Ann Archer" in asked.text
    assert contact_count(web_runtime) == 3, "asking erases nothing"

    erased = admin.post(
        "/contacts/gdpr/erase/confirm",
        data={"email": "ann.archer@times.example.com", "csrf_token": admin_token},
    )

    assert erased.status_code == 303
    assert "Erased everything held about that person" in admin.get("/contacts/gdpr").text
    assert admin.get("/contacts", params={"q": "archer"}).text.count("Ann Archer") == 0
    assert "forgotten: address erased" in admin.get("/contacts/suppressions").text
