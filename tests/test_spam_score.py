"""Every kind of message the system sends, scored by SpamAssassin: none may score above 0.

SpamAssassin runs offline with its local rules only (`spamassassin -L -t`), as Debian
ships it. Each kind is one entry of KINDS: a name and a function that builds the message
as it goes to the relay. A kind added to the product (a pre-brief, a notice, a correction)
is one more entry.
"""

from __future__ import annotations

import dataclasses
import re
import shutil
import subprocess
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest

from distributor.clock import ManualClock
from distributor.dkim_keys import KeyType, generate_key
from distributor.mail.dkim import DkimKey, DkimSigner
from distributor.message import Recipient
from distributor.releases.content import ReleaseContent
from distributor.rendering import RenderSetup, default_environment, prepare_release
from distributor.rendering.announcements import announcement_for
from distributor.rendering.embargo_notice import EmbargoNotice
from distributor.states import SendKind
from tests.support.mail import (
    ALICE,
    EMBARGO,
    SAFELIVES,
    builder,
    rich_content,
    rich_draft,
    sample_content,
)
from tests.support.services import require

MAX_SCORE = 0.0
NOTICE = EmbargoNotice(at=EMBARGO, zone_name="Europe/London")
BEFORE_THE_LIFT = ManualClock(EMBARGO - timedelta(hours=2))
NAMELESS = Recipient(delivery_id=18, email="desk@news.example.com", name="")
_BODY_PICTURE = re.compile(r"!\[[^\]]*\]\([^)]*\)\n?")


def markdown(*, images: bool, attachments: bool) -> ReleaseContent:
    draft = rich_draft()
    draft = dataclasses.replace(
        draft,
        body=draft.body if images else _BODY_PICTURE.sub("", draft.body),
        images=draft.images if images else (),
        attachments=draft.attachments if attachments else (),
    )
    return ReleaseContent(draft, SAFELIVES if images else None)


def notice_of(kind: SendKind, content: ReleaseContent, *, before_the_lift: bool) -> bytes:
    """A notice to a pre-briefed journalist, built as the worker builds it."""
    embargo = NOTICE if kind is SendKind.MOVE_NOTICE else None
    rendered = prepare_release(
        content,
        setup=RenderSetup(environment=default_environment()),
        notice=embargo,
        announcement=announcement_for(kind, headline=content.draft.headline, embargo=NOTICE),
    )
    clock = BEFORE_THE_LIFT if before_the_lift else None
    return builder(rendered=rendered, clock=clock).build(ALICE)


def signed(data: bytes) -> bytes:
    """Signed as an installation with both keys signs."""
    return DkimSigner(
        [
            DkimKey("news2031", "charity.example.org", generate_key(KeyType.RSA)),
            DkimKey("ed2031", "charity.example.org", generate_key(KeyType.ED25519)),
        ]
    ).sign(data)


# name: what the system sends, built as it reaches the relay.
KINDS: dict[str, Callable[[], bytes]] = {
    "release, plain text": lambda: builder(sample_content()).build(ALICE),
    "release, plain text, to a desk without a name": lambda: builder(sample_content()).build(
        NAMELESS
    ),
    "release, Markdown, pictures and attachment": lambda: builder(rich_content()).build(ALICE),
    "release, Markdown, pictures only": lambda: builder(
        markdown(images=True, attachments=False)
    ).build(ALICE),
    "release, Markdown, attachment only": lambda: builder(
        markdown(images=False, attachments=True)
    ).build(ALICE),
    "release, Markdown, words only": lambda: builder(
        markdown(images=False, attachments=False)
    ).build(ALICE),
    "release, DKIM-signed with RSA and Ed25519": lambda: signed(
        builder(rich_content()).build(ALICE)
    ),
    "test copy before the embargo (preview, test-send)": lambda: builder(
        rich_content(), notice=NOTICE, clock=BEFORE_THE_LIFT, test=True
    ).build(ALICE),
    "test copy, plain text, before the embargo": lambda: builder(
        sample_content(), notice=NOTICE, clock=BEFORE_THE_LIFT, test=True
    ).build(NAMELESS),
    "pre-brief: the embargoed copy, Markdown": lambda: builder(
        rich_content(), notice=NOTICE, clock=BEFORE_THE_LIFT
    ).build(ALICE),
    "pre-brief: the embargoed copy, plain text": lambda: builder(
        sample_content(), notice=NOTICE, clock=BEFORE_THE_LIFT
    ).build(NAMELESS),
    "notice: embargo lifted": lambda: notice_of(
        SendKind.LIFT_NOTICE, rich_content(), before_the_lift=False
    ),
    "notice: embargo moved": lambda: notice_of(
        SendKind.MOVE_NOTICE, sample_content(), before_the_lift=True
    ),
    "correction, Markdown": lambda: builder(
        rendered=prepare_release(
            rich_content(),
            setup=RenderSetup(environment=default_environment()),
            notice=None,
            correction="The number of families was wrong: it is 40, not 400.",
        )
    ).build(ALICE),
    "notice: release withdrawn": lambda: notice_of(
        SendKind.WITHDRAW_NOTICE, rich_content(), before_the_lift=True
    ),
}


@dataclasses.dataclass(frozen=True)
class Verdict:
    score: float
    rules: list[str]  # the table of rules that fired: points, name, description


def spamassassin(message: bytes, home: Path) -> Verdict:
    program = shutil.which("spamassassin")
    require(program is not None, "SpamAssassin (apt-get install spamassassin)")
    assert program is not None
    result = subprocess.run(
        [program, "-L", "-t"],
        input=message,
        capture_output=True,
        env={"HOME": str(home), "PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8"},
        timeout=120,
        check=True,
    )
    report = result.stdout.decode("utf-8", "replace")
    score = re.search(r"Content analysis details:\s+\((-?[\d.]+) points", report)
    assert score is not None, report[-2000:]
    table = report[score.end() :].split("---- ", 1)[-1].splitlines()[1:]
    rules = [line.strip() for line in table if re.match(r"^\s*-?\d+\.\d+ \w", line)]
    return Verdict(float(score.group(1)), rules)


@pytest.mark.parametrize("kind", list(KINDS))
def test_no_message_kind_scores_above_zero(kind: str, tmp_path: Path) -> None:
    message = KINDS[kind]()

    verdict = spamassassin(message, tmp_path)

    print(f"{kind}: {verdict.score:+.1f} points")
    for rule in verdict.rules:
        print(f"  {rule}")
    assert verdict.score <= MAX_SCORE, f"{kind} scored {verdict.score}: {verdict.rules}"


def test_the_filter_does_score_what_it_should(tmp_path: Path) -> None:
    """The check can fail: a message that looks like spam scores above zero."""
    spam = (
        b"From: WINNER <winner@lottery.example>\r\nTo: you@example.com\r\n"
        b"Subject: YOU HAVE WON $1,000,000 !!! CLAIM NOW\r\n\r\n"
        b"CLICK HERE to claim your FREE prize. 100% FREE. No risk. Act now! "
        b"Send your bank account details. Viagra. Cheap meds. Limited time offer!!!\r\n"
    )

    verdict = spamassassin(spam, tmp_path)

    assert verdict.score > MAX_SCORE, verdict
