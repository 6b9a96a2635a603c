"""What every contacts page shares: its stylesheet, the section's tabs, and reading a list
of addresses typed into a box."""

from __future__ import annotations

import re
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from distributor.web.auth import Access, Caller
from distributor.web.pages import pages_of
from distributor.web.report_assets import scripted_headers, static_url

# Addresses pasted from a spreadsheet, a mail client or typed one a line.
ADDRESS_SEPARATORS = re.compile(r"[\s,;]+")
# A box of addresses: far more than any list change by hand, and bounded for the database.
MAX_ADDRESSES_TEXT = 200_000
MAX_EMAIL = 320
MAX_FILTER = 4_000
MAX_NAME = 200

TABS = (
    ("Contacts", "/contacts", Access.READ),
    ("Outlets", "/contacts/outlets", Access.READ),
    ("Lists", "/contacts/lists", Access.READ),
    ("Segments", "/contacts/segments", Access.READ),
    ("Import", "/contacts/import", Access.CHANGE),
    ("Suppressions", "/contacts/suppressions", Access.READ),
    ("Data protection", "/contacts/gdpr", Access.ADMIN),
)


def addresses_in(text: str) -> list[str]:
    return [part for part in ADDRESS_SEPARATORS.split(text) if part]


def render_contacts(
    request: Request,
    caller: Caller,
    name: str,
    context: dict[str, Any],
    *,
    tab: str,
    status_code: int = 200,
    scripted: bool = False,
) -> Response:
    """A contacts page with the section's tabs (those the caller may open) and stylesheet."""
    values = {
        "tabs": [(label, href) for label, href, access in TABS if caller.may(access)],
        "tab": tab,
        "contacts_css": static_url("contacts.css"),
        "may_change": caller.may(Access.CHANGE),
        "is_admin": caller.may(Access.ADMIN),
        **context,
    }
    if scripted:
        values["contacts_js"] = static_url("contacts.js")
    return pages_of(request).render(
        request,
        name,
        values,
        account=caller.account,
        status_code=status_code,
        headers=scripted_headers() if scripted else None,
    )
