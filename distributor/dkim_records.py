"""Does a published DKIM record match a key? Checked by reading the record as a receiver
does, and by verifying a message signed with the key against it (with dkimpy)."""

from __future__ import annotations

from dataclasses import dataclass, field

import dkim
from cryptography.hazmat.primitives.asymmetric import rsa
from dkim.util import InvalidTagValueList, parse_tag_value

from distributor.dkim_keys import (
    RSA_BITS,
    SigningKey,
    checked_domain,
    checked_selector,
    key_type,
    public_key_value,
    record_name,
    record_text,
)
from distributor.mail.dkim import DkimKey, DkimSigner

PROBE = (
    b"From: probe@{domain}\r\nTo: probe@example.com\r\nSubject: DKIM check\r\n"
    b"Date: Thu, 01 Jan 2037 00:00:00 +0000\r\nMessage-ID: <dkim-check@{domain}>\r\n\r\n"
    b"A message signed to check the published key.\r\n"
)


@dataclass(frozen=True, slots=True)
class RecordCheck:
    """What a receiver would make of the record, for one key."""

    name: str  # SELECTOR._domainkey.DOMAIN
    expected: str  # the record text that matches the key
    published: str | None  # the text found, None when there is none
    problems: list[str] = field(default_factory=list)  # each says what to do
    notes: list[str] = field(default_factory=list)  # worth knowing, not wrong

    @property
    def ok(self) -> bool:
        return self.published is not None and not self.problems


def check_record(
    key: SigningKey, *, selector: str, domain: str, published: str | None
) -> RecordCheck:
    """Compare the published record text (None: nothing published) with the key."""
    name = record_name(selector, domain)
    expected = record_text(key)
    if published is None:
        return RecordCheck(
            name,
            expected,
            None,
            [f"no DKIM record is published at {name}: publish the TXT record shown"],
        )
    problems: list[str] = []
    notes: list[str] = []
    try:
        tags = {
            k.decode("ascii", "replace"): v.decode("ascii", "replace")
            for k, v in parse_tag_value(published.encode("utf-8")).items()
        }
    except InvalidTagValueList as exc:
        problems.append(f"the record is not a tag=value list ({exc}): publish the text shown")
        return RecordCheck(name, expected, published, problems)
    kind = key_type(key)
    if tags.get("v", "DKIM1") != "DKIM1":
        problems.append(f"v={tags['v']}: a DKIM key record starts with v=DKIM1")
    published_kind = tags.get("k", "rsa")
    if published_kind != kind.value:
        problems.append(
            f"the record is for a k={published_kind} key, but this key is {kind.value}: "
            "publish the text shown, or give the matching key"
        )
    public = "".join(tags.get("p", "").split())
    if not public:
        problems.append("the record's p= is empty, which revokes the key: publish the text shown")
    elif public != public_key_value(key):
        problems.append(
            "the published public key (p=) is not this key's: publish the text shown, or "
            "give the key this record was made for"
        )
    if "sha256" not in tags.get("h", "sha256").split(":"):
        problems.append(f"h={tags['h']} does not allow sha256, which every signature uses")
    if not {"*", "email"} & set(tags.get("s", "*").split(":")):
        problems.append(f"s={tags['s']} does not allow email: remove s=")
    if "y" in tags.get("t", "").split(":"):
        notes.append(
            "t=y: the domain says it is testing DKIM, and receivers may treat its mail as "
            "unsigned; remove t=y once messages verify"
        )
    if isinstance(key, rsa.RSAPrivateKey) and key.key_size < RSA_BITS:
        notes.append(f"a {key.key_size}-bit RSA key: mailbox providers ask for {RSA_BITS} bits")
    if not problems and not verifies(key, selector=selector, domain=domain, record=published):
        problems.append("a message signed with this key does not verify against the record")
    return RecordCheck(name, expected, published, problems, notes)


def verifies(key: SigningKey, *, selector: str, domain: str, record: str) -> bool:
    """Sign a probe message with the key and verify it as a receiver would (dkimpy)."""
    selector = checked_selector(selector)
    domain = checked_domain(domain)
    signer = DkimSigner([DkimKey(selector=selector, domain=domain, private_key=key)])
    message = signer.sign(PROBE.replace(b"{domain}", domain.encode("ascii")))
    wanted = f"{selector}._domainkey.{domain}.".encode("ascii")

    def lookup(name: bytes, timeout: int = 5) -> bytes:
        return record.encode("utf-8") if name.lower() == wanted else b""

    try:
        return bool(dkim.verify(message, dnsfunc=lookup))
    except dkim.DKIMException:
        return False
