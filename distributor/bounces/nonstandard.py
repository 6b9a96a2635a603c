"""Bounces in no standard format (qmail, old Exim, assorted providers), found by the
detectors of flufl.bounce, with the remote server's words read from the text."""

from __future__ import annotations

import logging
import re
from email.message import Message

from flufl.bounce import all_failures

from distributor.bounces.kinds import BounceKind
from distributor.bounces.message_parts import text_of
from distributor.bounces.report import Finding
from distributor.bounces.status_codes import enhanced_status, failure_kind, one_line

log = logging.getLogger(__name__)
# flufl.bounce logs every detector it runs, and a detector that trips over an odd message
# (one without From, say) with a traceback before re-raising; the failure is logged here,
# once, instead.
logging.getLogger("flufl.bounce").setLevel(logging.CRITICAL)

# A line that quotes a server's reply: best one with an enhanced status code ("550 5.1.1
# ...", qmail's "(#5.1.1)"), else one with a reply code ("550 No such user").
WITH_STATUS = re.compile(r"^.*(?<![\d.])[45]\.\d{1,3}\.\d{1,3}(?![\d.]).*$", re.MULTILINE)
WITH_CODE = re.compile(r"^.*\b[45]\d\d[ -]\S.*$", re.MULTILINE)


def read_nonstandard(message: Message) -> Finding | None:
    """What flufl.bounce finds: permanent or temporary failures, and for whom."""
    try:
        temporary, permanent = all_failures(message)
    except Exception as exc:  # a detector tripped over an odd message: then it found nothing
        log.info("bounce detectors could not read a message: %s", exc)
        return None
    failed = permanent or temporary
    if not failed:
        return None
    text = text_of(message)
    reply = WITH_STATUS.search(text) or WITH_CODE.search(text)
    diagnostic = one_line(reply.group(0)) if reply else None
    status = enhanced_status(diagnostic) or enhanced_status(text)
    if permanent:
        kind = failure_kind(status, text)
        summary = "a bounce in no standard format: a permanent failure"
    else:
        kind = BounceKind.WARNING
        summary = "a bounce in no standard format: delayed, still being tried"
    return Finding(
        kind=kind,
        summary=summary,
        status=status,
        diagnostic=diagnostic,
        recipients=tuple(sorted(a.decode("ascii", "replace") for a in failed)),
    )
