"""Acting on an unsubscribe: check the signed token, then suppress its address."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.orm import Session

from distributor.mail.unsubscribe import UnsubscribeTokens, token_from
from distributor.suppression import SuppressionReason, suppress

ONE_CLICK_SOURCE = "one-click"


@dataclass(frozen=True, slots=True)
class UnsubscribeOutcome:
    email: str
    newly_suppressed: bool  # False when the address was already suppressed


def handle_unsubscribe(
    session: Session, *, token: str, key: str | bytes, now: datetime
) -> UnsubscribeOutcome:
    """Check the token and put its address on the suppression list (idempotent)."""
    request = UnsubscribeTokens(key).verify(token_from(token))
    newly = suppress(
        session,
        email=request.email,
        reason=SuppressionReason.UNSUBSCRIBED,
        source=ONE_CLICK_SOURCE,
        now=now,
    )
    return UnsubscribeOutcome(email=request.email, newly_suppressed=newly)
