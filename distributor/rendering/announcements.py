"""The words of the notices sent to journalists who hold the embargoed copy.

A notice is rendered like the release, through `notice.html.j2` and `notice.txt.j2`, with
the release's brand, and a title and a few lines from here. The lift notice replaces the
release for those who had it early; the moved notice carries the embargo banner with the
new time (in the journalist's own zone where known); the withdrawal tells them not to
publish.
"""

from __future__ import annotations

from dataclasses import dataclass

from distributor.rendering.embargo_notice import EmbargoNotice
from distributor.states import SendKind

NOTICE_TEMPLATE = "notice"


@dataclass(frozen=True, slots=True)
class Announcement:
    kind: SendKind
    title: str
    lines: tuple[str, ...]
    subject_prefix: str


def announcement_for(
    kind: SendKind, *, headline: str, embargo: EmbargoNotice | None
) -> Announcement | None:
    """The notice of this kind of send, or None for a send that carries the release."""
    if kind is SendKind.LIFT_NOTICE:
        return Announcement(
            kind,
            title="The embargo has now lifted",
            lines=(
                f"The embargo on “{headline}” has now lifted: you may publish.",
                "You received the embargoed copy earlier, so the release is not sent to you again.",
            ),
            subject_prefix="EMBARGO LIFTED",
        )
    if kind is SendKind.MOVE_NOTICE:
        when = embargo.in_release_zone if embargo else "a new time"
        return Announcement(
            kind,
            title=f"The embargo has moved to {when}",
            lines=(
                f"The embargo on “{headline}”, which you received under embargo, has moved "
                f"to {when}.",
                "It is not for publication or broadcast, in any form, before then. You will "
                "be told when it lifts.",
            ),
            subject_prefix=f"EMBARGO MOVED TO {when}",
        )
    if kind is SendKind.WITHDRAW_NOTICE:
        return Announcement(
            kind,
            title="Release withdrawn: do not publish",
            lines=(
                f"The release “{headline}”, which you received under embargo, has been withdrawn.",
                "Do not publish or broadcast it, in any form. Please delete the embargoed "
                "copy. The press contacts below can tell you more.",
            ),
            subject_prefix="WITHDRAWN, DO NOT PUBLISH",
        )
    return None
