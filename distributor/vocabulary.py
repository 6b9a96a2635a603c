"""The fixed vocabularies of the media database: media types, legal bases, suppression reasons."""

from __future__ import annotations

import enum


class MediaType(enum.StrEnum):
    PRINT = "print"  # newspapers and magazines
    BROADCAST = "broadcast"  # radio and television
    ONLINE = "online"  # news sites without a print edition
    AGENCY = "agency"  # news and photo agencies that syndicate to other outlets
    FREELANCE = "freelance"  # a journalist who writes for several outlets
    NEWSLETTER = "newsletter"  # newsletters, blogs and other one-person publications


class LegalBasis(enum.StrEnum):
    LEGITIMATE_INTEREST = "legitimate_interest"  # a working journalist's published address
    CONSENT = "consent"  # the person asked to receive releases


class SuppressionReason(enum.StrEnum):
    UNSUBSCRIBED = "unsubscribed"  # the person asked to receive no more releases
    HARD_BOUNCED = "hard_bounced"  # the receiving server said the mailbox does not exist
    COMPLAINED = "complained"  # the person reported a release as spam
    DO_NOT_CONTACT = "do_not_contact"  # a press officer decided never to mail this address
