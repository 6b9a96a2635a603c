"""Everything one release renders from, as plain data: the draft and its organisation."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from distributor.models import Organisation, Release
from distributor.releases.draft import (
    AttachmentFile,
    BodyFormat,
    ImageFile,
    Link,
    PressContact,
    Quote,
    ReleaseDraft,
)


@dataclass(frozen=True, slots=True)
class OrganisationProfile:
    name: str
    website: str = ""
    about: str = ""  # Markdown
    primary_colour: str | None = None
    accent_colour: str | None = None
    logo: ImageFile | None = None


@dataclass(frozen=True, slots=True)
class ReleaseContent:
    draft: ReleaseDraft
    organisation: OrganisationProfile | None = None

    @property
    def boilerplate(self) -> str:
        """The release's own "About" text, or else its organisation's."""
        if self.draft.boilerplate.strip():
            return self.draft.boilerplate
        return self.organisation.about if self.organisation else ""


def profile_of(organisation: Organisation) -> OrganisationProfile:
    logo = None
    if organisation.logo_data and organisation.logo_filename and organisation.logo_content_type:
        logo = ImageFile(
            filename=organisation.logo_filename,
            content_type=organisation.logo_content_type,
            data=organisation.logo_data,
            alt=organisation.logo_alt or organisation.name,
        )
    return OrganisationProfile(
        name=organisation.name,
        website=organisation.website,
        about=organisation.about,
        primary_colour=organisation.primary_colour,
        accent_colour=organisation.accent_colour,
        logo=logo,
    )


def _records(rows: list[dict[str, Any]], kind: type[Any]) -> tuple[Any, ...]:
    fields = kind.__dataclass_fields__
    return tuple(kind(**{k: str(v) for k, v in row.items() if k in fields}) for row in rows)


def draft_of(release: Release) -> ReleaseDraft:
    """The draft a stored release was made from (organisation by name)."""
    images = tuple(
        ImageFile(a.filename, a.content_type, a.data, alt=a.alt_text, caption=a.caption)
        for a in release.assets
        if a.kind == "image"
    )
    attachments = tuple(
        AttachmentFile(a.filename, a.content_type, a.data)
        for a in release.assets
        if a.kind == "attachment"
    )
    return ReleaseDraft(
        headline=release.headline,
        dateline=release.dateline,
        body=release.body,
        notes_to_editors=release.notes_to_editors,
        body_format=BodyFormat(release.body_format),
        standfirst=release.standfirst,
        quotes=_records(release.quotes or [], Quote),
        press_contacts=_records(release.press_contacts or [], PressContact),
        boilerplate=release.boilerplate,
        images=images,
        attachments=attachments,
        links=_records(release.links or [], Link),
        organisation=release.organisation.name if release.organisation else "",
        template=release.template,
    )


def content_of(release: Release) -> ReleaseContent:
    """A stored release's content; its organisation and files are loaded with it."""
    organisation = profile_of(release.organisation) if release.organisation else None
    return ReleaseContent(draft=draft_of(release), organisation=organisation)
