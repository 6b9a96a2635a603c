"""The checklist a sender domain needs before its releases reach inboxes rather than spam.

Gmail and Yahoo ask bulk senders (since 2024) for DKIM, SPF and DMARC with the From domain
aligned, and one-click unsubscribe. Each check says what it found and, where something is
to be published, the exact DNS record. A check that needs the network and cannot reach it
says so (NOT_CHECKED) instead of guessing.
"""

from __future__ import annotations

import enum
import ipaddress
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from urllib.parse import urlsplit

from publicsuffixlist import PublicSuffixList

from distributor.dkim_keys import record_name, zone_file_record
from distributor.dkim_records import check_record
from distributor.dns_lookup import Dns, DnsUnavailable
from distributor.errors import DistributorError
from distributor.mail.dkim import DkimKey, DkimSigner
from distributor.settings import LOCAL_HOSTS, Settings

DMARC_ADVICE = (
    " (the record shown, p=none, only asks for reports: create its rua mailbox, read the "
    "reports, then move to p=quarantine)"
)


class CheckState(enum.StrEnum):
    OK = "ok"  # checked, and as it should be
    PROBLEM = "problem"  # checked, and wrong: the detail says what to do
    NOT_CHECKED = "not checked"  # could not be checked here (offline, ...): says why


@dataclass(frozen=True, slots=True)
class Check:
    topic: str  # DKIM, SPF, DMARC, alignment, unsubscribe, bounces
    subject: str  # the record name, domain or address checked
    state: CheckState
    detail: str
    publish: str | None = None  # the DNS record to publish, as a zone file line


# An HTTPS probe: the state and what the server did, for an https:// address.
HttpsProbe = Callable[[str], tuple[CheckState, str]]


@lru_cache(maxsize=1)
def _suffixes() -> PublicSuffixList:
    return PublicSuffixList()


def organisational_domain(domain: str) -> str:
    """The registered domain (DMARC's organisational domain): bbc.co.uk for news.bbc.co.uk."""
    domain = domain.lower().rstrip(".")
    return _suffixes().privatesuffix(domain) or domain


def aligned(one: str, other: str) -> bool:
    """DMARC's relaxed alignment: the same organisational domain."""
    return organisational_domain(one) == organisational_domain(other)


def deliverability_checks(
    settings: Settings, *, dns: Dns | None, probe: HttpsProbe | None
) -> list[Check]:
    """Every check for the configured sender; `dns` or `probe` None: offline, not made."""
    return [
        *dkim_checks(settings, dns),
        *spf_checks(settings, dns),
        dmarc_check(settings, dns),
        *alignment_checks(settings),
        unsubscribe_check(settings, probe),
        bounce_check(settings, dns),
    ]


def _offline(what: str) -> str:
    return f"not checked: {what} needs the network (--offline given)"


def _configured_keys(settings: Settings) -> list[DkimKey]:
    signer = DkimSigner.from_settings(settings)
    return list(signer.keys) if signer is not None else []


def dkim_checks(settings: Settings, dns: Dns | None) -> list[Check]:
    try:
        keys = _configured_keys(settings)
    except DistributorError as exc:
        return [Check("DKIM", "DISTRIBUTOR_DKIM_*", CheckState.PROBLEM, str(exc))]
    if not keys:
        domain = settings.effective_dkim_domain
        return [
            Check(
                "DKIM",
                domain,
                CheckState.PROBLEM,
                "messages are not DKIM-signed here: make a key with `distributor dkim keygen "
                f"--selector SELECTOR --domain {domain}` and set DISTRIBUTOR_DKIM_PRIVATE_KEY_PATH "
                "and DISTRIBUTOR_DKIM_SELECTOR (or have the relay sign as d=" + domain + ")",
            )
        ]
    return [_dkim_check(key, dns) for key in keys]


def _dkim_check(key: DkimKey, dns: Dns | None) -> Check:
    name = record_name(key.selector, key.domain)
    expected = check_record(
        key.private_key, selector=key.selector, domain=key.domain, published=None
    )
    publish = zone_file_record(name, expected.expected)
    if dns is None:
        return Check("DKIM", name, CheckState.NOT_CHECKED, _offline("reading the record"), publish)
    try:
        found = [t for t in dns.txt(name) if "p=" in t or t.startswith("v=DKIM1")]
    except DnsUnavailable as exc:
        return Check("DKIM", name, CheckState.NOT_CHECKED, f"not checked: {exc}", publish)
    if len(found) > 1:
        return Check(
            "DKIM",
            name,
            CheckState.PROBLEM,
            f"{len(found)} DKIM records are published there; receivers need exactly one: "
            "keep the one shown",
            publish,
        )
    result = check_record(
        key.private_key,
        selector=key.selector,
        domain=key.domain,
        published=found[0] if found else None,
    )
    if result.ok:
        detail = f"the published {key.kind.value} key matches, and a signed message verifies"
        return Check("DKIM", name, CheckState.OK, "; ".join([detail, *result.notes]))
    return Check(
        "DKIM", name, CheckState.PROBLEM, "; ".join(result.problems + result.notes), publish
    )


def spf_record(settings: Settings) -> str:
    """An SPF record that lets the configured relay send, soft-failing everything else."""
    host = urlsplit(settings.smtp_url).hostname or ""
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        address = None
    if address is not None and not address.is_loopback and not address.is_private:
        mechanism = f"ip{address.version}:{address}"
    elif address is None and host not in LOCAL_HOSTS and "." in host:
        mechanism = f"a:{host}"
    else:
        mechanism = "ip4:ADDRESS-YOUR-MAIL-LEAVES-FROM"
    return f"v=spf1 {mechanism} ~all"


def _envelope_domains(settings: Settings) -> list[str]:
    """Where SPF is checked: the VERP bounce domain of deliveries, and the From domain that
    test copies are sent from."""
    return list(dict.fromkeys([settings.effective_bounce_domain, settings.sender_domain]))


def spf_checks(settings: Settings, dns: Dns | None) -> list[Check]:
    wanted = spf_record(settings)
    relay = urlsplit(settings.smtp_url).hostname or ""
    return [_spf_check(domain, wanted, relay, dns) for domain in _envelope_domains(settings)]


def _spf_check(domain: str, wanted: str, relay: str, dns: Dns | None) -> Check:
    publish = zone_file_record(domain, wanted)
    if "ADDRESS-YOUR-MAIL-LEAVES-FROM" in wanted:
        advice = (
            f" (the relay, {relay}, is local: in the record, write the public address mail "
            "leaves from, or the include: your sending service documents)"
        )
    else:
        advice = ""
    if dns is None:
        return Check(
            "SPF", domain, CheckState.NOT_CHECKED, _offline("reading SPF") + advice, publish
        )
    try:
        found = [t for t in dns.txt(domain) if t.lower().startswith("v=spf1")]
    except DnsUnavailable as exc:
        return Check("SPF", domain, CheckState.NOT_CHECKED, f"not checked: {exc}{advice}", publish)
    if not found:
        return Check(
            "SPF",
            domain,
            CheckState.PROBLEM,
            "no SPF record: receivers cannot tell that the relay may send for this domain" + advice,
            publish,
        )
    if len(found) > 1:
        return Check(
            "SPF",
            domain,
            CheckState.PROBLEM,
            f"{len(found)} SPF records, which receivers treat as an error: merge them into one",
            publish,
        )
    terms = found[0].lower().split()
    if "+all" in terms or "all" in terms:
        return Check(
            "SPF",
            domain,
            CheckState.PROBLEM,
            f"{found[0]!r} lets anyone send as this domain: end it with ~all or -all",
            publish,
        )
    return Check(
        "SPF",
        domain,
        CheckState.OK,
        f"published: {found[0]!r} (it must cover the relay, {relay}, or the service behind it)",
    )


def dmarc_record(settings: Settings) -> str:
    organisation = organisational_domain(settings.sender_domain)
    return f"v=DMARC1; p=none; rua=mailto:dmarc-reports@{organisation}"


def dmarc_check(settings: Settings, dns: Dns | None) -> Check:
    domain = settings.sender_domain
    name = f"_dmarc.{domain}"
    publish = zone_file_record(name, dmarc_record(settings))
    if dns is None:
        return Check(
            "DMARC", name, CheckState.NOT_CHECKED, _offline("reading DMARC") + DMARC_ADVICE, publish
        )
    names = list(dict.fromkeys([name, f"_dmarc.{organisational_domain(domain)}"]))
    try:
        for candidate in names:
            found = [t for t in dns.txt(candidate) if t.lower().startswith("v=dmarc1")]
            if found:
                break
    except DnsUnavailable as exc:
        return Check("DMARC", name, CheckState.NOT_CHECKED, f"not checked: {exc}", publish)
    if not found:
        return Check(
            "DMARC",
            name,
            CheckState.PROBLEM,
            "no DMARC record: Gmail and Yahoo require one of bulk senders" + DMARC_ADVICE,
            publish,
        )
    if len(found) > 1:
        return Check(
            "DMARC",
            candidate,
            CheckState.PROBLEM,
            f"{len(found)} DMARC records; receivers ignore them all: keep one",
            publish,
        )
    tags = dict(
        (k.strip().lower(), v.strip())
        for k, _, v in (part.partition("=") for part in found[0].split(";"))
        if k.strip()
    )
    policy = tags.get("p", "")
    if policy not in ("none", "quarantine", "reject"):
        return Check(
            "DMARC",
            candidate,
            CheckState.PROBLEM,
            f"{found[0]!r} has no valid p= (none, quarantine or reject)",
            publish,
        )
    detail = f"published at {candidate}: p={policy}"
    if policy == "none":
        detail += " (reports only; move to p=quarantine once the reports show aligned mail)"
    return Check("DMARC", candidate, CheckState.OK, detail)


def alignment_checks(settings: Settings) -> list[Check]:
    """DMARC passes on DKIM or SPF only when its domain shares the From's organisational
    domain. Needs no network."""
    sender = settings.sender_domain
    checks = []
    try:
        keys = _configured_keys(settings)
    except DistributorError:
        keys = []  # reported by the DKIM check
    for domain in dict.fromkeys(k.domain for k in keys):
        state = CheckState.OK if aligned(domain, sender) else CheckState.PROBLEM
        detail = (
            f"DKIM d={domain} and From {sender} share {organisational_domain(sender)}"
            if state is CheckState.OK
            else f"DKIM d={domain} is not aligned with From {sender}: DMARC ignores the "
            f"signature; set DISTRIBUTOR_DKIM_DOMAIN to {sender} (or a subdomain of "
            f"{organisational_domain(sender)})"
        )
        checks.append(Check("alignment", f"DKIM d={domain}", state, detail))
    bounce = settings.effective_bounce_domain
    state = CheckState.OK if aligned(bounce, sender) else CheckState.PROBLEM
    detail = (
        f"the envelope sender's domain {bounce} and From {sender} share "
        f"{organisational_domain(sender)}"
        if state is CheckState.OK
        else f"the envelope sender's domain {bounce} is not aligned with From {sender}: "
        "DMARC ignores SPF; set DISTRIBUTOR_BOUNCE_DOMAIN to a subdomain of "
        f"{organisational_domain(sender)}"
    )
    checks.append(Check("alignment", f"envelope {bounce}", state, detail))
    return checks


def unsubscribe_check(settings: Settings, probe: HttpsProbe | None) -> Check:
    url = settings.effective_public_base_url
    if url is None:
        return Check(
            "unsubscribe",
            "DISTRIBUTOR_PUBLIC_BASE_URL",
            CheckState.PROBLEM,
            "no https unsubscribe link, so no one-click unsubscribe (RFC 8058), which Gmail "
            "and Yahoo require of bulk senders: set DISTRIBUTOR_PUBLIC_BASE_URL to the web "
            "app's public https address",
        )
    parts = urlsplit(url)
    if parts.scheme != "https" or (parts.hostname or "") in LOCAL_HOSTS:
        return Check(
            "unsubscribe",
            url,
            CheckState.PROBLEM,
            "one-click unsubscribe needs a public https address that receivers can reach: "
            "set DISTRIBUTOR_PUBLIC_BASE_URL to the web app's https address",
        )
    if probe is None:
        return Check("unsubscribe", url, CheckState.NOT_CHECKED, _offline("reaching it"))
    state, detail = probe(url)
    return Check("unsubscribe", url, state, detail)


def bounce_check(settings: Settings, dns: Dns | None) -> Check:
    domain = settings.effective_bounce_domain
    if dns is None:
        return Check("bounces", domain, CheckState.NOT_CHECKED, _offline("reading MX"))
    try:
        exchangers = dns.mx(domain)
    except DnsUnavailable as exc:
        return Check("bounces", domain, CheckState.NOT_CHECKED, f"not checked: {exc}")
    if not exchangers:
        return Check(
            "bounces",
            domain,
            CheckState.PROBLEM,
            f"no MX record: bounces to bounces+…@{domain} have nowhere to go, and receivers "
            "distrust senders whose bounces cannot be delivered; publish an MX record for it "
            "(or set DISTRIBUTOR_BOUNCE_DOMAIN to a domain that receives mail)",
        )
    return Check(
        "bounces", domain, CheckState.OK, f"bounces are delivered to {', '.join(exchangers)}"
    )
