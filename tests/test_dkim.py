"""DKIM: signed messages verify with dkimpy against the public key (RSA, Ed25519, both),
and tampering shows."""

from __future__ import annotations

import base64
import hashlib
import re
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import dkim
import pytest
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat
from dkim import rfc822_parse
from dkim.canonicalization import Relaxed
from hypothesis import given
from hypothesis import strategies as st

from benchmarks.components import ComponentFigures, time_signing
from benchmarks.report import _signing_rows
from distributor.clock import ManualClock
from distributor.dkim_keys import (
    KeyType,
    generate_key,
    read_private_key,
    record_text,
    write_private_key,
)
from distributor.errors import ConfigurationError
from distributor.mail.dkim import (
    CanonicalParts,
    DkimKey,
    DkimSigner,
    RelaxedBodyTemplate,
    header_fields,
    relaxed_body,
    relaxed_header,
)
from distributor.message import Recipient
from distributor.preview import send_test_copies
from distributor.rendering.embargo_notice import EmbargoNotice
from distributor.runtime import Runtime
from distributor.settings import Settings
from tests.support.mail import ALICE, EMBARGO, builder, parse, rich_content, sample_content
from tests.support.services import require
from tests.support.smtp import RecordingSMTPServer

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


# Ed25519 (RFC 8463), two signatures, and the canonicalisation behind them -----------------

DOMAIN = "charity.example.org"


@pytest.fixture(scope="module")
def ed25519_key(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, bytes]:
    """An Ed25519 key written as `distributor dkim keygen` writes it, and its record."""
    key = generate_key(KeyType.ED25519)
    path = tmp_path_factory.mktemp("ed25519") / "ed.pem"
    write_private_key(key, path)
    return path, record_text(key).encode("ascii")


def dns_of(records: dict[str, bytes]) -> Callable[..., bytes]:
    def lookup(name: bytes, timeout: int = 5) -> bytes:
        return records[name.decode("ascii")]

    return lookup


def signature_fields(header: str) -> dict[str, str]:
    return dict(
        (name.strip(), value.strip())
        for name, _, value in (f.partition("=") for f in re.sub(r"\s+", "", header).split(";"))
    )


def two_key_signer(rsa_path: Path, ed_path: Path) -> DkimSigner:
    return DkimSigner(
        [
            DkimKey("news2031", DOMAIN, read_private_key(rsa_path, setting="test")),
            DkimKey("ed2031", DOMAIN, read_private_key(ed_path, setting="test")),
        ]
    )


def test_an_ed25519_signature_verifies(ed25519_key: tuple[Path, bytes]) -> None:
    path, record = ed25519_key
    made = builder(rich_content(), clock=ManualClock(EMBARGO))
    signer = DkimSigner.from_file(path, selector="ed2031", domain=DOMAIN)

    data = signer.sign(made.build(ALICE))

    assert signature_fields(str(parse(data)["DKIM-Signature"]))["a"] == "ed25519-sha256"
    assert dkim.verify(data, dnsfunc=dns_of({f"ed2031._domainkey.{DOMAIN}.": record}))
    assert not dkim.verify(
        data.replace(b"The refuge opens", b"The refuge closes", 1),
        dnsfunc=dns_of({f"ed2031._domainkey.{DOMAIN}.": record}),
    )


def test_two_keys_give_two_signatures_each_verifying_on_its_own(
    key_pair: tuple[Path, bytes], ed25519_key: tuple[Path, bytes]
) -> None:
    (rsa_path, rsa_record), (ed_path, ed_record) = key_pair, ed25519_key
    records = {
        f"news2031._domainkey.{DOMAIN}.": rsa_record,
        f"ed2031._domainkey.{DOMAIN}.": ed_record,
    }
    made = builder(rich_content(), clock=ManualClock(EMBARGO))

    data = two_key_signer(rsa_path, ed_path).sign(made.build(ALICE))

    signatures = parse(data).get_all("DKIM-Signature") or []
    assert [(f["s"], f["a"]) for f in map(signature_fields, map(str, signatures))] == [
        ("news2031", "rsa-sha256"),
        ("ed2031", "ed25519-sha256"),
    ]
    checker = dkim.DKIM(data)
    assert checker.verify(idx=0, dnsfunc=dns_of(records))
    assert checker.verify(idx=1, dnsfunc=dns_of(records))
    # A receiver that knows only RSA still has a signature it can check, and vice versa.
    first_end = data.index(b"DKIM-Signature", 1)
    assert dkim.verify(data[first_end:], dnsfunc=dns_of(records))  # Ed25519 alone
    assert dkim.verify(data[:first_end] + data[data.index(b"From: ") :], dnsfunc=dns_of(records))


def test_signing_adds_headers_and_changes_no_byte_of_the_message(
    ed25519_key: tuple[Path, bytes],
) -> None:
    path, _ = ed25519_key
    made = builder(rich_content(), clock=ManualClock(EMBARGO))
    unsigned = made.build(ALICE)
    signer = DkimSigner.from_file(path, selector="ed2031", domain=DOMAIN)

    signed = signer.sign(unsigned)

    assert (
        signed
        == signer.signature(
            unsigned, timestamp=int(signature_fields(str(parse(signed)["DKIM-Signature"]))["t"])
        )
        + unsigned
    )
    assert signed.endswith(unsigned)
    header = signed[: len(signed) - len(unsigned)]
    assert all(len(line) <= 998 for line in header.split(b"\r\n"))
    assert header.endswith(b"\r\n") and b"\n" not in header.replace(b"\r\n", b"")


def test_headers_cannot_be_added_after_signing(key_pair: tuple[Path, bytes]) -> None:
    """A second Subject or List-Unsubscribe slipped in later breaks the signature."""
    key, record = key_pair
    data = signed_message(key)
    head, _, body = data.partition(b"\r\n\r\n")

    for added in (b"Subject: Win a prize", b"List-Unsubscribe: <https://evil.example/u>"):
        assert not dkim.verify(head + b"\r\n" + added + b"\r\n\r\n" + body, dnsfunc=dns_for(record))


WHITESPACE_TEXT = st.lists(
    st.sampled_from([b"a", b"b", b" ", b"  ", b"\t", b"\r\n", b"\n", b"\r", b"=20", b"\xc3\xa9"]),
    max_size=40,
).map(b"".join)


@given(WHITESPACE_TEXT)
def test_the_fast_body_canonicalisation_is_dkimpys(body: bytes) -> None:
    assert relaxed_body(body) == Relaxed.canonicalize_body(body)


@given(st.lists(WHITESPACE_TEXT, min_size=1, max_size=5), st.data())
def test_a_body_canonicalised_piece_by_piece_hashes_as_the_whole_body(
    pieces: list[bytes], data: st.DataObject
) -> None:
    values = data.draw(
        st.lists(WHITESPACE_TEXT, min_size=len(pieces) - 1, max_size=len(pieces) - 1)
    )
    body = b"".join(p + v for p, v in zip(pieces, [*values, b""], strict=True))
    expected = base64.b64encode(hashlib.sha256(Relaxed.canonicalize_body(body)).digest())

    body_hash = RelaxedBodyTemplate(pieces).body_hash(values)

    # Either the template's hash is the whole body's, or it declines and the body is hashed
    assert body_hash in (None, expected)


@pytest.mark.parametrize(
    "name", ["Alice Example", "Bob  Two  Spaces", "Zoë Accented", "Tab\tIn Name", "   "]
)
def test_messages_are_signed_without_canonicalising_each_whole_body(
    ed25519_key: tuple[Path, bytes], monkeypatch: pytest.MonkeyPatch, name: str
) -> None:
    # Given a signing builder (the body's canonical form made once, per variant)
    path, record = ed25519_key
    signer = DkimSigner.from_file(path, selector="ed2031", domain=DOMAIN)
    made = builder(rich_content(), clock=ManualClock(EMBARGO)).signing_with(signer)

    # When messages are built with the whole-body canonicalisation out of reach
    def whole_body(body: bytes) -> bytes:
        raise AssertionError("the whole body was canonicalised for one message")

    monkeypatch.setattr("distributor.mail.dkim.relaxed_body", whole_body)
    recipient = Recipient(7, "reporter@news.example.com", name, outlet="The  Daily")
    data = made.build(recipient)

    # Then the signature verifies as a receiver checks it, and is the one the signer makes
    # reading the whole message
    assert dkim.verify(data, dnsfunc=dns_of({f"ed2031._domainkey.{DOMAIN}.": record}))
    monkeypatch.undo()
    signature_end = data.index(b"\r\nFrom: ") + 2  # Ed25519 signatures are deterministic
    timestamp = int(signature_fields(str(parse(data)["DKIM-Signature"]))["t"])
    assert signer.signature(data[signature_end:], timestamp=timestamp) == data[:signature_end]


@given(WHITESPACE_TEXT, st.sampled_from([b"Subject", b"To", b"X-Mixed-Case "]))
def test_the_fast_header_canonicalisation_is_dkimpys(value: bytes, name: bytes) -> None:
    ((expected_name, expected_value),) = Relaxed.canonicalize_headers([(name, value)])
    assert relaxed_header(name, value) == expected_name + b":" + expected_value


@given(
    st.lists(
        st.tuples(
            st.sampled_from([b"From", b"To", b"Subject", b"X-A"]),
            st.lists(st.sampled_from([b" v", b"\tw", b"x", b":"]), max_size=4).map(b"".join),
            st.booleans(),
        ),
        min_size=1,
        max_size=6,
    )
)
def test_header_fields_are_read_as_dkimpy_reads_them(
    fields: list[tuple[bytes, bytes, bool]],
) -> None:
    head = b"\r\n".join(
        name + b":" + value + (b"\r\n folded" if folded else b"") for name, value, folded in fields
    )
    ours = [(n, v) for n, v in header_fields(head)]
    theirs = rfc822_parse(head + b"\r\n\r\n")[0]
    assert [(n, Relaxed.canonicalize_headers([(n, v)])) for n, v in ours] == [
        (n, Relaxed.canonicalize_headers([(n, v)])) for n, v in theirs
    ]


def test_the_runtime_signs_with_both_keys_or_ed25519_alone(
    key_pair: tuple[Path, bytes], ed25519_key: tuple[Path, bytes], tmp_path: Path
) -> None:
    (rsa_path, rsa_record), (ed_path, ed_record) = key_pair, ed25519_key
    records = {
        f"news2031._domainkey.{DOMAIN}.": rsa_record,
        f"ed2031._domainkey.{DOMAIN}.": ed_record,
    }
    notice = EmbargoNotice(at=EMBARGO, zone_name="Europe/London")
    both = Settings(
        data_dir=tmp_path,
        from_address=f"press@{DOMAIN}",
        dkim_private_key_path=rsa_path,
        dkim_selector="news2031",
        dkim_ed25519_private_key_path=ed_path,
        dkim_ed25519_selector="ed2031",
    )
    alone = Settings(
        data_dir=tmp_path,
        from_address=f"press@{DOMAIN}",
        dkim_ed25519_private_key_path=ed_path,
        dkim_ed25519_selector="ed2031",
    )
    for settings, selectors in ((both, ["news2031", "ed2031"]), (alone, ["ed2031"])):
        rt = Runtime(settings, clock=ManualClock(EMBARGO))
        data = rt.message_builder(rich_content(), send_id=5, notice=notice).build(ALICE)
        signatures = [signature_fields(str(h)) for h in parse(data).get_all("DKIM-Signature") or []]
        assert [f["s"] for f in signatures] == selectors
        checker = dkim.DKIM(data)
        assert all(checker.verify(idx=i, dnsfunc=dns_of(records)) for i in range(len(selectors)))


def test_an_ed25519_key_needs_its_own_selector_and_an_ed25519_key(
    key_pair: tuple[Path, bytes], tmp_path: Path
) -> None:
    rsa_path, _ = key_pair
    with pytest.raises(ValueError, match="DKIM_ED25519_SELECTOR"):
        Settings(dkim_ed25519_private_key_path=tmp_path / "ed.pem")
    with pytest.raises(ValueError, match="differ from"):
        Settings(
            dkim_private_key_path=rsa_path,
            dkim_selector="same",
            dkim_ed25519_private_key_path=tmp_path / "ed.pem",
            dkim_ed25519_selector="same",
        )
    wrong = Settings(
        data_dir=tmp_path, dkim_ed25519_private_key_path=rsa_path, dkim_ed25519_selector="ed"
    )
    with pytest.raises(ConfigurationError, match="not an Ed25519 key"):
        Runtime(wrong).dkim  # noqa: B018 - building the signer is the test


def test_keys_made_by_dkimpys_dknewkey_are_read(tmp_path: Path) -> None:
    """dknewkey writes an Ed25519 key as the base64 of its 32-byte seed."""
    key = generate_key(KeyType.ED25519)
    seed = key.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())
    path = tmp_path / "dknewkey.key"
    path.write_bytes(base64.b64encode(seed) + b"\n")

    signer = DkimSigner.from_file(path, selector="ed", domain=DOMAIN)

    data = signer.sign(signed_probe())
    assert dkim.verify(
        data, dnsfunc=dns_of({f"ed._domainkey.{DOMAIN}.": record_text(key).encode()})
    )


def signed_probe() -> bytes:
    return builder(sample_content(), clock=ManualClock(EMBARGO)).build(ALICE)


def test_the_benchmark_times_building_and_signing(ed25519_key: tuple[Path, bytes]) -> None:
    path, _ = ed25519_key
    signed: list[bytes] = []

    class Recording(DkimSigner):
        def sign(self, message: bytes, *, canonical: CanonicalParts | None = None) -> bytes:
            signed.append(message)
            return super().sign(message, canonical=canonical)

    signer = Recording([DkimKey("ed2031", DOMAIN, read_private_key(path, setting="test"))])
    signed.clear()  # the signer's own key check at start-up
    recipients = [Recipient(i, f"r{i}@news.example.com", f"Reporter {i}") for i in range(5)]
    made = builder(rich_content(), clock=ManualClock(EMBARGO))

    seconds = time_signing(made, recipients, signer)

    assert seconds > 0
    assert len(signed) == 1 + len(recipients)  # one to warm up, then each recipient
    figures = ComponentFigures(signed_builds={"Ed25519": (len(recipients), seconds)})
    ((label, figure, _),) = _signing_rows(figures, lambda component, text: text)
    assert label == "Messages built and DKIM-signed per second, one core, Ed25519"
    assert figure == f"{len(recipients) / seconds:,.0f} msg/s"


def test_what_reaches_the_relay_verifies_with_both_signatures(
    key_pair: tuple[Path, bytes],
    ed25519_key: tuple[Path, bytes],
    tmp_path: Path,
    smtp_server: RecordingSMTPServer,
) -> None:
    """Signed over the bytes that are sent: the relay receives exactly what was signed."""
    (rsa_path, rsa_record), (ed_path, ed_record) = key_pair, ed25519_key
    records = {
        f"news2031._domainkey.{DOMAIN}.": rsa_record,
        f"ed2031._domainkey.{DOMAIN}.": ed_record,
    }
    settings = Settings(
        data_dir=tmp_path,
        from_address=f"press@{DOMAIN}",
        smtp_url=smtp_server.url,
        dkim_private_key_path=rsa_path,
        dkim_selector="news2031",
        dkim_ed25519_private_key_path=ed_path,
        dkim_ed25519_selector="ed2031",
    )
    rt = Runtime(settings, clock=ManualClock(EMBARGO))
    notice = EmbargoNotice(at=EMBARGO, zone_name="Europe/London")
    made = rt.message_builder(rich_content(), send_id=5, notice=notice, test=True)
    transport = rt.open_transport()
    try:
        send_test_copies(
            made, addresses=["editor@news.example.com"], personalise_as=ALICE, transport=transport
        )
    finally:
        transport.close()

    (received,) = smtp_server.wait_for(1, timeout=10)
    checker = dkim.DKIM(received.data)
    assert checker.verify(idx=0, dnsfunc=dns_of(records))
    assert checker.verify(idx=1, dnsfunc=dns_of(records))
