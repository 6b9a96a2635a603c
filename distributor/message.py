"""Turning a prepared release and one recipient into the bytes of one email.

The work lives in `distributor.mail`; these names stay importable from here.
"""

from __future__ import annotations

from distributor.mail.builder import (
    BuiltMessage,
    MessageBuilder,
    Recipient,
    Sender,
    message_id_for,
)
from distributor.mail.headers import one_line

__all__ = ["BuiltMessage", "MessageBuilder", "Recipient", "Sender", "message_id_for", "one_line"]
