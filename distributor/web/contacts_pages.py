"""The contacts pages: browsing and searching contacts and outlets, importing a file, media
lists, segments, the suppression list and data protection. Each part has its own module
(contacts_*.py); this one gathers their routes for the app.

Viewers read; press officers and approvers also edit contacts, import, edit and delete
lists, save and delete segments and add suppressions; admins also take addresses off the
suppression list and export or erase a person's data.
"""

from __future__ import annotations

from fastapi import APIRouter

from distributor.web import (
    contacts_browse,
    contacts_edit,
    contacts_gdpr,
    contacts_lists,
    contacts_segments,
    contacts_suppressions,
    contacts_upload,
)

router = APIRouter(include_in_schema=False)
for part in (
    contacts_browse,
    contacts_edit,
    contacts_upload,
    contacts_lists,
    contacts_segments,
    contacts_suppressions,
    contacts_gdpr,
):
    router.include_router(part.router)
