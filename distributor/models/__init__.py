"""The SQLAlchemy models; importing this package registers every table on Base.metadata."""

from distributor.models.base import Base, UTCDateTime
from distributor.models.contacts import Contact, ListMembership, MediaList
from distributor.models.releases import Release
from distributor.models.sends import Delivery, DeliveryEvent, Send, SendList

__all__ = [
    "Base",
    "Contact",
    "Delivery",
    "DeliveryEvent",
    "ListMembership",
    "MediaList",
    "Release",
    "Send",
    "SendList",
    "UTCDateTime",
]
