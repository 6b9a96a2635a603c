"""Acting on an unsubscribe: check the signed token, then suppress its address.

Preview and test copies carry links too, and a copy personalised as a real journalist
names that journalist's address. Their tokens are signed under a key of their own (see
`test_copy_tokens`), so that a colleague who clicks "unsubscribe" in a test copy is told
it is one, and the journalist stays on the lists.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from distributor.audit import record_action
from distributor.contacts.addresses import lenient_email_key
from distributor.mail.signing import derive_key
from distributor.mail.unsubscribe import (
    InvalidTokenError,
    UnsubscribeRequest,
    UnsubscribeTokens,
    token_from,
)
from distributor.models import Contact, Send
from distributor.suppression import SuppressionReason, insert_suppression

ONE_CLICK_SOURCE = "one-click"
TEST_COPY_PURPOSE = "test-copy-unsubscribe"
# Previews and test copies are built as this send, which no real send is (ids start at 1):
# a token signed with the ordinary key and this send id comes from a test copy too.
TEST_COPY_SEND_ID = 0


@dataclass(frozen=True, slots=True)
class UnsubscribeOutcome:
    email: str
    newly_suppressed: bool  # False when the address was already suppressed
    # The link came from a preview or test copy: nothing was changed.
    test_copy: bool = False

    @property
    def explanation(self) -> str:
        """What happened, in words a recipient or an admin understands."""
        if self.test_copy:
            return (
                "this unsubscribe link comes from a TEST copy of a release (a preview or a "
                f"test send), so nothing was changed: {self.email} was not unsubscribed. "
                "To stop mailing an address, use a link from a real release or "
                "`distributor suppressions add`"
            )
        if self.newly_suppressed:
            return f"unsubscribed {self.email}: no release will be sent to it again"
        return f"{self.email} was already unsubscribed; nothing changed"


def test_copy_tokens(secret: str | bytes) -> UnsubscribeTokens:
    """Tokens for preview and test copies: their key differs from that of real sends, so a
    test copy's link can never pass for a real one."""
    return UnsubscribeTokens(derive_key(secret, TEST_COPY_PURPOSE))


def _test_copy_request(token: str, key: str | bytes) -> UnsubscribeRequest | None:
    try:
        return test_copy_tokens(key).verify(token)
    except InvalidTokenError:
        return None


def handle_unsubscribe(
    session: Session, *, token: str, key: str | bytes, now: datetime
) -> UnsubscribeOutcome:
    """Check the token and put its address on the suppression list (idempotent).

    A token from a test copy is recognised and answered with `test_copy` set: nothing is
    stored. A token that is neither raises InvalidTokenError.
    """
    text = token_from(token)
    try:
        request = UnsubscribeTokens(key).verify(text)
    except InvalidTokenError:
        test_request = _test_copy_request(text, key)
        if test_request is None:
            raise
        return UnsubscribeOutcome(email=test_request.email, newly_suppressed=False, test_copy=True)
    if request.send_id == TEST_COPY_SEND_ID:
        return UnsubscribeOutcome(email=request.email, newly_suppressed=False, test_copy=True)
    suppression_id = insert_suppression(
        session,
        email=request.email,
        reason=SuppressionReason.UNSUBSCRIBED,
        source=ONE_CLICK_SOURCE,
        now=now,
    )
    if suppression_id is not None:
        _record_unsubscribe(session, request, suppression_id=suppression_id, now=now)
    return UnsubscribeOutcome(email=request.email, newly_suppressed=suppression_id is not None)


def _record_unsubscribe(
    session: Session, request: UnsubscribeRequest, *, suppression_id: int, now: datetime
) -> None:
    """The journalist's own act, named by their contact's id; the address stays out of it."""
    contact_id = session.scalar(
        select(Contact.id).where(
            Contact.email_key == lenient_email_key(request.email),
            Contact.forgotten_at.is_(None),
        )
    )
    # The release whose link was followed, if the send is still known.
    release_id = session.scalar(select(Send.release_id).where(Send.id == request.send_id))
    record_action(
        session,
        "contact.unsubscribed",
        f"contact {contact_id}" if contact_id is not None else "one address",
        at=now,
        release_id=release_id,
        after={
            "suppression": suppression_id,
            "reason": SuppressionReason.UNSUBSCRIBED,
            "source": ONE_CLICK_SOURCE,
            "send": request.send_id,
        },
    )
