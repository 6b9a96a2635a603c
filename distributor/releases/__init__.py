"""Release content: reading it (plain text or structured Markdown), checking and storing it."""

from distributor.releases.content import ReleaseContent, content_of
from distributor.releases.draft import (
    AttachmentFile,
    BodyFormat,
    ImageFile,
    Link,
    PressContact,
    Quote,
    ReleaseDraft,
)
from distributor.releases.plain_text import parse_release_text
from distributor.releases.store import (
    InvalidReleaseError,
    check_release_for_sending,
    create_release,
    get_release,
)
from distributor.releases.structured import is_structured, parse_release_markdown

__all__ = [
    "AttachmentFile",
    "BodyFormat",
    "ImageFile",
    "InvalidReleaseError",
    "Link",
    "PressContact",
    "Quote",
    "ReleaseContent",
    "ReleaseDraft",
    "check_release_for_sending",
    "content_of",
    "create_release",
    "get_release",
    "is_structured",
    "parse_release_markdown",
    "parse_release_text",
]
