"""DKIM key files and the DNS records that publish their public halves.

A key is RSA (RFC 6376, verified by every receiver) or Ed25519 (RFC 8463: a tenth of the
signing cost, a record short enough for any DNS host, but not yet verified everywhere).
Private keys are PEM files, written readable by their owner only.
"""

from __future__ import annotations

import base64
import binascii
import enum
import os
import re
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

from distributor.errors import ConfigurationError, DistributorError
from distributor.mail.headers import HeaderValueError, ascii_domain

SigningKey = rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey

RSA_BITS = 2048  # what mailbox providers ask for; 1024 is the floor (RFC 8301)
MIN_RSA_BITS = 1024  # receivers ignore signatures by shorter keys
# A TXT record is made of strings of at most 255 octets each (RFC 1035 3.3.14).
TXT_STRING_MAX = 255
# A selector is one or more DNS labels (RFC 6376 3.1).
SELECTOR = re.compile(
    r"^[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$"
)
ED25519_SEED_BYTES = 32


class KeyType(enum.StrEnum):
    RSA = "rsa"  # rsa-sha256: verified by every receiver
    ED25519 = "ed25519"  # ed25519-sha256 (RFC 8463): fast, not yet verified everywhere


class DkimKeyError(DistributorError):
    """A key file or a DKIM parameter that cannot be used: says which and what to do."""


def key_type(key: SigningKey) -> KeyType:
    return KeyType.RSA if isinstance(key, rsa.RSAPrivateKey) else KeyType.ED25519


def checked_selector(selector: str) -> str:
    if not SELECTOR.match(selector):
        raise DkimKeyError(
            f"the DKIM selector {selector!r} is not a DNS name: use letters, digits and "
            "hyphens, such as news2031 or press-2031-01"
        )
    return selector.lower()


def checked_domain(domain: str) -> str:
    try:
        return ascii_domain(domain.rstrip("."))
    except HeaderValueError as exc:
        raise DkimKeyError(f"the DKIM domain: {exc}") from None


def record_name(selector: str, domain: str) -> str:
    """Where the public key is published: SELECTOR._domainkey.DOMAIN."""
    return f"{checked_selector(selector)}._domainkey.{checked_domain(domain)}"


def parse_private_key(data: bytes) -> SigningKey:
    """An RSA or Ed25519 private key from PEM (PKCS#8 or PKCS#1), or from the base64 seed
    that dkimpy's dknewkey writes for Ed25519. ValueError says what is wrong."""
    stripped = data.strip()
    if not stripped.startswith(b"-----BEGIN"):
        try:
            seed = base64.b64decode(stripped, validate=True)
        except binascii.Error:
            seed = b""
        if len(seed) != ED25519_SEED_BYTES:
            raise ValueError("it is not a PEM private key")
        return ed25519.Ed25519PrivateKey.from_private_bytes(seed)
    try:
        key = serialization.load_pem_private_key(stripped, password=None)
    except TypeError:
        raise ValueError("it is encrypted; give the key without a passphrase") from None
    except (ValueError, binascii.Error) as exc:
        raise ValueError(f"it is not a usable PEM private key ({exc})") from None
    if isinstance(key, rsa.RSAPrivateKey):
        if key.key_size < MIN_RSA_BITS:
            raise ValueError(
                f"it is a {key.key_size}-bit RSA key; receivers ignore signatures by keys "
                f"shorter than {MIN_RSA_BITS} bits, so make a {RSA_BITS}-bit one"
            )
        return key
    if isinstance(key, ed25519.Ed25519PrivateKey):
        return key
    raise ValueError(
        f"it is a {type(key).__name__.removeprefix('_')}; DKIM signs with RSA or Ed25519"
    )


def read_private_key(path: Path, *, setting: str) -> SigningKey:
    """The key in `path`; ConfigurationError naming the setting that points at it."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ConfigurationError(
            f"cannot read the DKIM key {path}: {exc.strerror}; check {setting}"
        ) from None
    try:
        return parse_private_key(data)
    except ValueError as exc:
        raise ConfigurationError(
            f"the DKIM key {path} cannot sign: {exc}; check {setting}, or make a key with "
            "`distributor dkim keygen`"
        ) from None


def generate_key(kind: KeyType, *, bits: int = RSA_BITS) -> SigningKey:
    if kind is KeyType.ED25519:
        return ed25519.Ed25519PrivateKey.generate()
    return rsa.generate_private_key(public_exponent=65537, key_size=bits)


def private_key_pem(key: SigningKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def write_private_key(key: SigningKey, path: Path, *, replace: bool = False) -> None:
    """Write the key readable and writable by its owner only (mode 0600), from the first
    byte: it is never on disk with wider permissions, even for an instant."""
    flags = os.O_WRONLY | os.O_CREAT | (os.O_TRUNC if replace else os.O_EXCL)
    try:
        descriptor = os.open(path, flags, 0o600)
    except FileExistsError:
        raise DkimKeyError(
            f"{path} already exists; choose another --out, or pass --force to replace it "
            "(messages signed with the old key stop verifying once its record is replaced)"
        ) from None
    except OSError as exc:
        raise DkimKeyError(f"cannot write the key to {path}: {exc.strerror}") from None
    with os.fdopen(descriptor, "wb") as file:
        os.fchmod(file.fileno(), 0o600)  # O_CREAT's mode only applies to a new file
        file.write(private_key_pem(key))


def public_key_value(key: SigningKey) -> str:
    """The p= value: base64 of the SubjectPublicKeyInfo (RSA) or the raw 32 bytes (Ed25519)."""
    public = key.public_key()
    if isinstance(public, ed25519.Ed25519PublicKey):
        raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    else:
        raw = public.public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    return base64.b64encode(raw).decode("ascii")


def record_text(key: SigningKey) -> str:
    """The TXT record's text, as receivers read it (the strings joined)."""
    return f"v=DKIM1; k={key_type(key).value}; p={public_key_value(key)}"


def txt_strings(text: str) -> list[str]:
    """The text cut into the strings of at most 255 octets a TXT record is made of."""
    return [text[i : i + TXT_STRING_MAX] for i in range(0, len(text), TXT_STRING_MAX)] or [""]


def zone_file_record(name: str, text: str) -> str:
    """One resource record as a zone file (BIND, and most DNS hosts' import) writes it."""
    strings = " ".join(f'"{part}"' for part in txt_strings(text))
    return (
        f"{name}. IN TXT ( {strings} )"
        if len(text) > TXT_STRING_MAX
        else (f"{name}. IN TXT {strings}")
    )


def text_of_published(record: str) -> str:
    """A TXT record's text from what a person pastes: the bare text, or zone-file form with
    its quoted strings (which receivers join without spaces)."""
    strings = re.findall(r'"((?:[^"\\]|\\.)*)"', record)
    if strings:
        return "".join(re.sub(r"\\(.)", r"\1", s) for s in strings)
    return record.strip()
