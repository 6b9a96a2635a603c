"""The SQLAlchemy models; importing this package registers every table on Base.metadata."""

from distributor.models.accounts import ApiToken, LoginFailure, User
from distributor.models.approvals import ReleaseApproval, ReleaseVersion
from distributor.models.audit import AuditEntry
from distributor.models.base import Base, UTCDateTime
from distributor.models.bounces import Bounce
from distributor.models.breaches import BreachRecord
from distributor.models.contacts import Contact, ContactBeat, ListMembership, MediaList, Outlet
from distributor.models.operations import Heartbeat, RelayHealth
from distributor.models.organisations import Organisation
from distributor.models.releases import Release, ReleaseAsset
from distributor.models.segments import Segment, SendSegment
from distributor.models.sends import Delivery, DeliveryEvent, Send, SendBatch, SendList
from distributor.models.suppression import AddressHashKey, Suppression

__all__ = [
    "AddressHashKey",
    "ApiToken",
    "AuditEntry",
    "Base",
    "Bounce",
    "BreachRecord",
    "Contact",
    "ContactBeat",
    "Delivery",
    "DeliveryEvent",
    "Heartbeat",
    "ListMembership",
    "LoginFailure",
    "MediaList",
    "Organisation",
    "Outlet",
    "RelayHealth",
    "Release",
    "ReleaseApproval",
    "ReleaseAsset",
    "ReleaseVersion",
    "Segment",
    "Send",
    "SendBatch",
    "SendList",
    "SendSegment",
    "Suppression",
    "UTCDateTime",
    "User",
]
