"""DKIM: messages signed with dkimpy verify against the public key, and tampering shows."""

from __future__ import annotations

import base64
import re
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import dkim
import pytest

from distributor.clock import ManualClock
from distributor.errors import ConfigurationError
from distributor.mail.dkim import DkimSigner
from distributor.message import Recipient
from distributor.rendering.embargo_notice import EmbargoNotice
from distributor.runtime import Runtime
from distributor.settings import Settings
from tests.support.mail import ALICE, EMBARGO, builder, parse, rich_content
from tests.support.services import require

REQUIRED = (
    "from",
    "to",
    "subject",
    "date",
    "message-id",
    "list-unsubscribe",
    "list-unsubscribe-post",
)


@pytest.fixture(scope="module")
def key_pair(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, bytes]:
    """A fresh 2048-bit RSA key, and its DNS TXT record."""
    openssl = shutil.which("openssl")
    require(openssl is not None, "openssl (to make a test key)")
    assert openssl is not None
    key = tmp_path_factory.mktemp("dkim") / "dkim.pem"
    subprocess.run([openssl, "genrsa", "-out", str(key), "2048"], check=True, capture_output=True)
    public = subprocess.run(
        [openssl, "rsa", "-in", str(key), "-pubout", "-outform", "DER"],
        check=True,
        capture_output=True,
    ).stdout
    return key, b"v=DKIM1; k=rsa; p=" + base64.b64encode(public)


def dns_for(record: bytes) -> Callable[..., bytes]:
    def lookup(name: bytes, timeout: int = 5) -> bytes:
        assert name == b"news2031._domainkey.charity.example.org."
        return record

    return lookup


def signer(key: Path) -> DkimSigner:
    return DkimSigner.from_file(key, selector="news2031", domain="charity.example.org")


def signed_message(key: Path) -> bytes:
    made = builder(rich_content(), clock=ManualClock(EMBARGO))
    return signer(key).sign(made.build(ALICE))


def test_a_signed_message_verifies_against_the_public_key(key_pair: tuple[Path, bytes]) -> None:
    key, record = key_pair
    data = signed_message(key)

    assert data.startswith(b"DKIM-Signature: ")
    assert dkim.verify(data, dnsfunc=dns_for(record))
    parse(data)  # still a well-formed message


def test_the_signature_covers_the_headers_that_matter(key_pair: tuple[Path, bytes]) -> None:
    key, _ = key_pair
    signature = parse(signed_message(key))["DKIM-Signature"]
    fields = dict(
        (name.strip(), value.strip())
        for name, _, value in (
            f.partition("=") for f in re.sub(r"\s+", "", str(signature)).split(";")
        )
    )

    signed = set(fields["h"].split(":"))
    assert set(REQUIRED) <= signed
    assert (fields["d"], fields["s"], fields["a"], fields["c"]) == (
        "charity.example.org",
        "news2031",
        "rsa-sha256",
        "relaxed/relaxed",
    )


@pytest.mark.parametrize(
    ("old", "new"),
    [
        (b"Subject: ", b"Subject: Changed "),
        (b"To: Alice Reporter", b"To: Mallory"),
        (b"List-Unsubscribe: <https://", b"List-Unsubscribe: <https://evil."),
        (b"Message-ID: <delivery.3.17", b"Message-ID: <delivery.3.18"),
        (b"The refuge opens", b"The refuge closes"),
    ],
    ids=["subject", "to", "list-unsubscribe", "message-id", "body"],
)
def test_any_change_after_signing_fails_verification(
    key_pair: tuple[Path, bytes], old: bytes, new: bytes
) -> None:
    key, record = key_pair
    data = signed_message(key)
    assert old in data

    assert not dkim.verify(data.replace(old, new, 1), dnsfunc=dns_for(record))


def test_the_runtime_signs_when_a_key_is_configured(
    key_pair: tuple[Path, bytes], tmp_path: Path
) -> None:
    key, record = key_pair
    settings = Settings(
        data_dir=tmp_path,
        from_address="press@charity.example.org",
        dkim_private_key_path=key,
        dkim_selector="news2031",
    )
    rt = Runtime(settings, clock=ManualClock(EMBARGO))
    notice = EmbargoNotice(at=EMBARGO, zone_name="Europe/London")
    made = rt.message_builder(rich_content(), send_id=5, notice=notice)

    data = made.build(Recipient(1, "zoe@bücher.example", "Zoë Ångström", "Süddeutsche"))

    assert dkim.verify(data, dnsfunc=dns_for(record))
    unsigned = Runtime(Settings(data_dir=tmp_path), clock=ManualClock(EMBARGO))
    assert b"DKIM-Signature" not in unsigned.message_builder(
        rich_content(), send_id=5, notice=notice
    ).build(ALICE)


def test_a_missing_or_unusable_key_is_a_clear_configuration_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="cannot read the DKIM key"):
        DkimSigner.from_file(tmp_path / "missing.pem", selector="s", domain="example.org")
    garbage = tmp_path / "garbage.pem"
    garbage.write_text(
        "-----BEGIN RSA PRIVATE KEY-----\nnot a key\n-----END RSA PRIVATE KEY-----\n"
    )
    with pytest.raises(ConfigurationError, match="cannot sign"):
        DkimSigner.from_file(garbage, selector="s", domain="example.org")


def test_a_key_without_a_selector_is_refused_in_settings(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="DKIM_SELECTOR"):
        Settings(dkim_private_key_path=tmp_path / "k.pem")
