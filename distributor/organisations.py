"""Organisations: the brand (logo, colours) and "About" boilerplate a release carries."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from distributor.audit import changed_values, record_action
from distributor.errors import DistributorError, NotFoundError
from distributor.files import IMAGE_TYPES, checked_content_type, checked_image, clean_filename
from distributor.models import Organisation

HEX_COLOUR = re.compile(r"^#[0-9a-fA-F]{6}$")
MAX_LOGO_BYTES = 500_000


@dataclass(frozen=True, slots=True)
class LogoFile:
    filename: str
    data: bytes
    alt: str


def check_colour(value: str, *, what: str) -> str:
    if not HEX_COLOUR.match(value):
        raise DistributorError(f"the {what} {value!r} is not a colour: write it as #rrggbb")
    return value.lower()


def save_organisation(
    session: Session,
    *,
    name: str,
    now: datetime,
    website: str | None = None,
    about: str | None = None,
    primary_colour: str | None = None,
    accent_colour: str | None = None,
    logo: LogoFile | None = None,
    lift_notice: bool | None = None,
    require_approval: bool | None = None,
) -> Organisation:
    """Create the organisation, or change the fields given (None leaves a field as it was)."""
    name = " ".join(name.split())
    if not name:
        raise DistributorError("an organisation needs a name")
    if website and not website.startswith(("https://", "http://")):
        raise DistributorError(f"the website {website!r} must start with https://")
    organisation = find_organisation(session, name)
    created = organisation is None
    if organisation is None:
        organisation = Organisation(name=name, website="", about="", created_at=now, logo_alt="")
        session.add(organisation)
    before = {} if created else _audited_fields(organisation)
    if website is not None:
        organisation.website = website
    if about is not None:
        organisation.about = about.strip()
    if primary_colour is not None:
        organisation.primary_colour = check_colour(primary_colour, what="primary colour")
    if accent_colour is not None:
        organisation.accent_colour = check_colour(accent_colour, what="accent colour")
    if logo is not None:
        if len(logo.data) > MAX_LOGO_BYTES:
            raise DistributorError(
                f"the logo is {len(logo.data):,} bytes; every email carries it, so keep it "
                f"under {MAX_LOGO_BYTES:,} (a 600 px wide PNG or JPEG is plenty)"
            )
        if not logo.alt.strip():
            raise DistributorError("the logo needs alt text, read out when images are off")
        filename = clean_filename(logo.filename)
        organisation.logo_content_type = checked_content_type(
            filename, logo.data, allowed=IMAGE_TYPES
        )
        checked_image(filename, logo.data, content_type=organisation.logo_content_type)
        organisation.logo_filename = filename
        organisation.logo_data = logo.data
        organisation.logo_alt = logo.alt.strip()
    if lift_notice is not None:
        organisation.lift_notice = lift_notice
    if require_approval is not None:
        organisation.require_approval = require_approval
    organisation.updated_at = now
    session.flush()
    old_values, new_values = changed_values(before, _audited_fields(organisation))
    record_action(
        session,
        "organisation.created" if created else "organisation.changed",
        f"organisation {organisation.id} ({organisation.name})",
        at=now,
        before=None if created else old_values,
        after=new_values,
    )
    return organisation


def _audited_fields(organisation: Organisation) -> dict[str, object]:
    return {
        "website": organisation.website,
        "about": organisation.about,
        "primary_colour": organisation.primary_colour,
        "accent_colour": organisation.accent_colour,
        # The logo by its name and a digest: the picture itself stays out of the trail.
        "logo": organisation.logo_filename,
        "logo_sha256": hashlib.sha256(organisation.logo_data).hexdigest()
        if organisation.logo_data
        else None,
        "logo_alt": organisation.logo_alt,
        "lift_notice": organisation.lift_notice,
        "require_approval": organisation.require_approval,
    }


def find_organisation(session: Session, name: str) -> Organisation | None:
    return session.scalar(select(Organisation).where(Organisation.name == " ".join(name.split())))


def get_organisation(session: Session, name: str) -> Organisation:
    organisation = find_organisation(session, name)
    if organisation is None:
        raise NotFoundError(
            f"no organisation named {name!r}; create it first with "
            f"`distributor organisation set {name!r}`",
            on_page=f"no organisation named {name!r}; choose one of the organisations there are, "
            "or ask an admin to add it",
        )
    return organisation
