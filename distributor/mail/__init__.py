"""Email assembly: headers, MIME, unsubscribe tokens, VERP and DKIM.

`MessageBuilder` (builder.py) prepares everything a send shares once, then joins a
message for each recipient from ready-encoded pieces; the rest are its parts.
"""
