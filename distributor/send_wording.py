"""What a send's messages say about the embargo, by the kind of send.

The public send and a correction carry the release as it is (built after the lift: no
banner). A pre-brief carries the embargo banner with the release's embargo, the public
send's, not the hour the pre-brief goes out. Notices carry their announcement; a moved
embargo's notice also shows the new embargo in the banner.
"""

from __future__ import annotations

from distributor.engine.claims import SendSnapshot
from distributor.rendering.announcements import Announcement, announcement_for
from distributor.rendering.embargo_notice import EmbargoNotice
from distributor.states import SendKind


def wording_of(snapshot: SendSnapshot) -> tuple[EmbargoNotice | None, Announcement | None]:
    embargo = EmbargoNotice(
        at=snapshot.release_embargo_at or snapshot.embargo_at, zone_name=snapshot.embargo_zone
    )
    announcement = announcement_for(
        snapshot.kind, headline=snapshot.release.headline, embargo=embargo
    )
    if snapshot.kind in (SendKind.PREBRIEF, SendKind.MOVE_NOTICE):
        return embargo, announcement
    return None, announcement


def correction_of(snapshot: SendSnapshot) -> str | None:
    """The note at the top of a correction; None for every other kind of send."""
    if snapshot.kind is not SendKind.CORRECTION:
        return None
    return snapshot.release.correction_note
