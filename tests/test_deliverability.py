"""`distributor deliverability`: the checklist, with the records to publish, online and off."""

from __future__ import annotations

import datetime as dt
import http.server
import ipaddress
import json
import os
import ssl
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from distributor.deliverability import Check, CheckState, aligned, deliverability_checks
from distributor.dkim_keys import KeyType, generate_key, record_text, write_private_key
from distributor.dns_lookup import StaticDns
from distributor.https_probe import probe_https
from distributor.settings import Settings
from tests.support.dns_server import dns_server

DOMAIN = "charity.example.org"
RELAY = "relay.charity.example.org"


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, str]]:
    folder = tmp_path_factory.mktemp("keys")
    made = {}
    for selector, kind in (("news2031", KeyType.RSA), ("ed2031", KeyType.ED25519)):
        key = generate_key(kind)
        write_private_key(key, folder / f"{selector}.pem")
        made[selector] = (folder / f"{selector}.pem", record_text(key))
    return made


def sender_settings(keys: dict[str, tuple[Path, str]], **overrides: object) -> Settings:
    values: dict[str, object] = {
        "from_address": f"press@{DOMAIN}",
        "bounce_domain": f"bounces.{DOMAIN}",
        "smtp_url": f"smtp://{RELAY}:587",
        "public_base_url": f"https://press.{DOMAIN}",
        "dkim_private_key_path": keys["news2031"][0],
        "dkim_selector": "news2031",
        "dkim_ed25519_private_key_path": keys["ed2031"][0],
        "dkim_ed25519_selector": "ed2031",
    }
    return Settings(**{**values, **overrides})  # type: ignore[arg-type]


def published(keys: dict[str, tuple[Path, str]]) -> dict[tuple[str, str], list[str]]:
    return {
        (f"news2031._domainkey.{DOMAIN}", "TXT"): [keys["news2031"][1]],
        (f"ed2031._domainkey.{DOMAIN}", "TXT"): [keys["ed2031"][1]],
        (f"bounces.{DOMAIN}", "TXT"): [f"v=spf1 a:{RELAY} ~all"],
        (DOMAIN, "TXT"): [f"v=spf1 a:{RELAY} -all", "google-site-verification=abc"],
        (f"_dmarc.{DOMAIN}", "TXT"): ["v=DMARC1; p=quarantine; rua=mailto:d@charity.example.org"],
        (f"bounces.{DOMAIN}", "MX"): [f"mx.{DOMAIN}"],
    }


def reachable(url: str) -> tuple[CheckState, str]:
    return CheckState.OK, "answers over HTTPS with a trusted certificate (HTTP 200)"


def by_subject(checks: list[Check]) -> dict[str, Check]:
    return {f"{c.topic} {c.subject}": c for c in checks}


def test_a_sender_that_publishes_everything_passes_every_check(
    keys: dict[str, tuple[Path, str]],
) -> None:
    checks = deliverability_checks(
        sender_settings(keys), dns=StaticDns(published(keys)), probe=reachable
    )

    assert [(c.topic, c.state) for c in checks if c.state is not CheckState.OK] == []
    assert {c.topic for c in checks} == {
        "DKIM", "SPF", "DMARC", "alignment", "unsubscribe", "bounces"
    }  # fmt: skip
    assert len([c for c in checks if c.topic == "DKIM"]) == 2


def test_missing_records_are_problems_with_the_exact_record_to_publish(
    keys: dict[str, tuple[Path, str]],
) -> None:
    records = published(keys)
    del records[(f"ed2031._domainkey.{DOMAIN}", "TXT")]
    del records[(f"bounces.{DOMAIN}", "TXT")]
    del records[(f"_dmarc.{DOMAIN}", "TXT")]
    del records[(f"bounces.{DOMAIN}", "MX")]

    checks = by_subject(
        deliverability_checks(sender_settings(keys), dns=StaticDns(records), probe=reachable)
    )

    dkim = checks[f"DKIM ed2031._domainkey.{DOMAIN}"]
    assert dkim.state is CheckState.PROBLEM
    assert dkim.publish == f'ed2031._domainkey.{DOMAIN}. IN TXT "{keys["ed2031"][1]}"'
    spf = checks[f"SPF bounces.{DOMAIN}"]
    assert spf.state is CheckState.PROBLEM
    assert spf.publish == f'bounces.{DOMAIN}. IN TXT "v=spf1 a:{RELAY} ~all"'
    dmarc = checks[f"DMARC _dmarc.{DOMAIN}"]
    assert dmarc.state is CheckState.PROBLEM
    assert dmarc.publish is not None
    assert dmarc.publish.startswith(
        f'_dmarc.{DOMAIN}. IN TXT "v=DMARC1; p=none; rua=mailto:dmarc-reports@example.org"'
    )
    assert checks[f"bounces bounces.{DOMAIN}"].state is CheckState.PROBLEM
    assert checks[f"DKIM news2031._domainkey.{DOMAIN}"].state is CheckState.OK


def test_a_record_for_another_key_or_a_permissive_spf_is_a_problem(
    keys: dict[str, tuple[Path, str]],
) -> None:
    records = published(keys)
    records[(f"news2031._domainkey.{DOMAIN}", "TXT")] = [record_text(generate_key(KeyType.RSA))]
    records[(f"bounces.{DOMAIN}", "TXT")] = ["v=spf1 +all"]

    checks = by_subject(
        deliverability_checks(sender_settings(keys), dns=StaticDns(records), probe=reachable)
    )

    assert "not this key's" in checks[f"DKIM news2031._domainkey.{DOMAIN}"].detail
    assert "lets anyone send" in checks[f"SPF bounces.{DOMAIN}"].detail


def test_domains_that_do_not_share_the_from_domain_are_not_aligned(
    keys: dict[str, tuple[Path, str]],
) -> None:
    settings = sender_settings(keys, bounce_domain="mailer.example.net", dkim_domain="example.net")

    checks = by_subject(deliverability_checks(settings, dns=None, probe=None))

    assert checks["alignment DKIM d=example.net"].state is CheckState.PROBLEM
    assert "DISTRIBUTOR_DKIM_DOMAIN" in checks["alignment DKIM d=example.net"].detail
    assert checks["alignment envelope mailer.example.net"].state is CheckState.PROBLEM
    assert aligned("news.bbc.co.uk", "bounces.bbc.co.uk")
    assert not aligned("bbc.co.uk", "itv.co.uk")


def test_offline_every_network_check_says_it_was_not_made(
    keys: dict[str, tuple[Path, str]],
) -> None:
    settings = sender_settings(keys)
    offline = deliverability_checks(settings, dns=None, probe=None)
    unreachable = deliverability_checks(
        settings, dns=StaticDns(unavailable="no DNS answer within 5 s (offline?)"), probe=None
    )

    for checks in (offline, unreachable):
        states = {(c.topic, c.state) for c in checks}
        assert all(
            state is CheckState.NOT_CHECKED
            for topic, state in states
            if topic in ("DKIM", "SPF", "DMARC", "bounces", "unsubscribe")
        )
        # What can be known without the network still is: alignment, and what to publish.
        assert {s for t, s in states if t == "alignment"} == {CheckState.OK}
        assert all(c.publish for c in checks if c.topic in ("DKIM", "SPF", "DMARC"))
    assert any("offline?" in c.detail for c in unreachable)


def test_no_key_and_no_https_address_are_problems(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, from_address=f"press@{DOMAIN}")

    checks = deliverability_checks(settings, dns=None, probe=None)

    dkim = next(c for c in checks if c.topic == "DKIM")
    assert dkim.state is CheckState.PROBLEM
    assert "distributor dkim keygen" in dkim.detail
    unsubscribe = next(c for c in checks if c.topic == "unsubscribe")
    assert unsubscribe.state is CheckState.PROBLEM  # http://localhost in development
    assert "https" in unsubscribe.detail


# The HTTPS probe, against servers on loopback ------------------------------------------


def self_signed(folder: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(hours=1))
        .not_valid_after(now + dt.timedelta(hours=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = folder / "cert.pem", folder / "key.pem"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


class Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


@contextmanager
def https_server(folder: Path) -> Iterator[tuple[str, Path]]:
    cert, key = self_signed(folder)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Quiet)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"https://127.0.0.1:{server.server_address[1]}/", cert
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def test_the_probe_tells_a_trusted_certificate_from_one_receivers_refuse(tmp_path: Path) -> None:
    with https_server(tmp_path) as (url, cert):
        untrusted = probe_https(url, timeout=5)
        trusted = probe_https(url, timeout=5, context=ssl.create_default_context(cafile=cert))

    assert untrusted[0] is CheckState.PROBLEM
    assert "certificate is not trusted" in untrusted[1]
    assert trusted[0] is CheckState.OK
    assert "HTTP 200" in trusted[1]
    refused = probe_https(url, timeout=5)  # the server is gone
    assert refused[0] is CheckState.PROBLEM
    assert "refused the connection" in refused[1]


# The command ------------------------------------------------------------------------------


def run(tmp_path: Path, *args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("DISTRIBUTOR_")}
    result = subprocess.run(
        [sys.executable, "-m", "distributor", "deliverability", *args],
        cwd=tmp_path,
        env={**clean, "DISTRIBUTOR_DATA_DIR": str(tmp_path / "var"), **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert "Traceback" not in result.stdout + result.stderr, result.stderr
    return result


def test_the_command_prints_the_checklist_from_dns_and_offline(
    keys: dict[str, tuple[Path, str]], tmp_path: Path
) -> None:
    env = {
        "DISTRIBUTOR_FROM_ADDRESS": f"press@{DOMAIN}",
        "DISTRIBUTOR_BOUNCE_DOMAIN": f"bounces.{DOMAIN}",
        "DISTRIBUTOR_SMTP_URL": f"smtp://{RELAY}:587",
        "DISTRIBUTOR_DKIM_PRIVATE_KEY_PATH": str(keys["news2031"][0]),
        "DISTRIBUTOR_DKIM_SELECTOR": "news2031",
    }
    records = published(keys)
    del records[(f"_dmarc.{DOMAIN}", "TXT")]

    with dns_server(records) as nameserver:
        online = run(tmp_path, "--nameserver", nameserver, "--timeout", "2", env=env)
        as_json = run(tmp_path, "--nameserver", nameserver, "--json", env=env)
    offline = run(tmp_path, "--offline", env=env)

    assert online.returncode == 1  # DMARC is missing, and the unsubscribe address is local
    assert f"[ok] DKIM: news2031._domainkey.{DOMAIN}" in online.stdout
    assert f"[PROBLEM] DMARC: _dmarc.{DOMAIN}" in online.stdout
    assert f'publish: _dmarc.{DOMAIN}. IN TXT "v=DMARC1; p=none;' in online.stdout
    assert "[PROBLEM] unsubscribe: http://localhost:8000" in online.stdout
    document = json.loads(as_json.stdout)
    assert document["from"] == f"press@{DOMAIN}"
    assert {(c["topic"], c["state"]) for c in document["checks"]} >= {
        ("DKIM", "ok"),
        ("DMARC", "problem"),
        ("bounces", "ok"),
    }
    assert offline.returncode == 1
    assert f"[not checked] DKIM: news2031._domainkey.{DOMAIN}" in offline.stdout
    assert "needs the network (--offline given)" in offline.stdout
    assert "[ok] alignment: envelope bounces." + DOMAIN in offline.stdout
