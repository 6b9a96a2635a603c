"""Moving finished message bytes to a mail relay, behind one small interface."""

from distributor.transport.base import Envelope, MailTransport
from distributor.transport.memory import InMemoryTransport
from distributor.transport.smtp import SMTPTransport, transport_from_url

__all__ = ["Envelope", "InMemoryTransport", "MailTransport", "SMTPTransport", "transport_from_url"]
