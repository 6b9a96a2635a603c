"""DKIM signing in the send: the same send signed by a fresh key of each kind, configured as
an operator configures one (a DISTRIBUTOR_DKIM_* setting pointing at a key file), beside the
unsigned send of the same size."""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from benchmarks.ours import OursResult
from distributor.dkim_keys import RSA_BITS, KeyType, generate_key, write_private_key

SELECTOR = "bench"
LABELS = {KeyType.RSA: f"RSA-{RSA_BITS}", KeyType.ED25519: "Ed25519"}
# Signed throughput as a share of unsigned, on a 2-CPU machine at 10,000 recipients.
TARGET_SHARES = {KeyType.RSA: 0.50, KeyType.ED25519: 0.85}
TARGET_SIZE = 10_000
SPELLINGS = {"rsa": KeyType.RSA, "rsa-2048": KeyType.RSA, "ed25519": KeyType.ED25519}


def key_kinds(text: str) -> list[KeyType]:
    """`rsa,ed25519`, either alone, or `none` (or nothing) for no signed send."""
    words = [w.strip().lower() for w in text.split(",") if w.strip()]
    if words in ([], ["none"]):
        return []
    unknown = [w for w in words if w not in SPELLINGS]
    if unknown:
        raise argparse.ArgumentTypeError(
            f"{unknown[0]!r} is not a DKIM key kind: give rsa, ed25519, rsa,ed25519 or none"
        )
    return list(dict.fromkeys(SPELLINGS[w] for w in words))


def key_settings(kind: KeyType, key_path: Path) -> dict[str, Any]:
    """The worker's and scheduler's settings that make them sign with this key alone; the
    signing domain is left to its default, the sender's domain."""
    if kind is KeyType.RSA:
        return {"dkim_private_key_path": key_path, "dkim_selector": SELECTOR}
    return {"dkim_ed25519_private_key_path": key_path, "dkim_ed25519_selector": SELECTOR}


def write_fresh_key(kind: KeyType, directory: Path) -> Path:
    """A new key (RSA of RSA_BITS bits, or Ed25519) in `directory`, readable by its owner only."""
    path = directory / f"dkim-{kind.value}.pem"
    write_private_key(generate_key(kind), path, replace=True)
    return path


@dataclass(frozen=True, slots=True)
class SignatureCheck:
    """A small send with the measured send's signing settings, its messages kept whole and
    each verified by dkimpy against the public record of the key file the workers read."""

    recipients: int
    kept: int  # messages the receiver kept
    verified: int  # of those, whose signature verified
    algorithms: tuple[str, ...] = ()  # the a= tags seen, such as rsa-sha256
    sample: str | None = None  # one signed message, as received
    problem: str | None = None

    @property
    def ok(self) -> bool:
        return self.problem is None and self.kept == self.recipients and self.verified == self.kept


@dataclass
class SignedSend:
    kind: KeyType
    label: str  # RSA-2048, Ed25519
    key_path: str
    run: OursResult
    share: float | None  # of the unsigned send's throughput
    check: SignatureCheck | None = None

    @property
    def target(self) -> float:
        return TARGET_SHARES[self.kind]

    @property
    def met(self) -> bool | None:
        return None if self.share is None else self.share >= self.target


@dataclass
class DkimResult:
    size: int
    domain: str  # d=, the sender's domain
    unsigned: OursResult
    unsigned_from_main: bool  # the main run of this size; else a send of its own
    signed: list[SignedSend] = field(default_factory=list)
    check_receiver: str | None = None  # the receiver that kept the checked messages
    notes: list[str] = field(default_factory=list)

    @property
    def sound(self) -> bool:
        """Every signed message went, none early, and the workers really signed."""
        return all(
            s.run.figures.complete
            and s.run.figures.early == 0
            and not s.run.figures.claimed_early
            and not s.run.smtp_before_embargo
            and (s.check is None or s.check.ok)
            for s in self.signed
        )


def share_of(signed: OursResult, unsigned: OursResult) -> float | None:
    fast, base = signed.figures.throughput, unsigned.figures.throughput
    return fast / base if fast is not None and base else None
