"""Bounces: delivery status notifications, abuse reports and automatic replies that come
back to the per-delivery (VERP) return path, read, matched to their delivery and applied.

    classify    a message's bytes -> BounceReport (what kind of report, about whom)
    matching    BounceReport -> the delivery it is about (the VERP address first)
    recording   apply it: bounced, suppressed, or kept for an admin with the reason
    reputation  pause a send whose hard-bounce or complaint rate passes its limit
    processing  the three above, in one transaction, for one message
    receiver    an SMTP server for the bounce domain's MX
    sources     messages from an .eml file, an mbox, a Maildir or standard input
    listing     what came back, for `distributor bounces list`
"""
