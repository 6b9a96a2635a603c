"""Whether the workers really sign: a small send per key with the measured send's signing
settings, to a receiver that keeps each message whole (smtp-sink only counts them), and
every kept message verified by dkimpy against the public record of the key file the
workers were given, looked up under the selector and domain the signature names."""

from __future__ import annotations

import dataclasses
import shutil
from collections.abc import Callable
from pathlib import Path

import dkim

from benchmarks.dataset import Dataset
from benchmarks.dkim_send import SELECTOR, SignatureCheck, key_settings
from benchmarks.ours import run_ours
from benchmarks.sink import start_receiver
from distributor.dkim_keys import KeyType, read_private_key, record_name, record_text
from distributor.errors import DistributorError
from distributor.settings import Settings

Dns = Callable[..., bytes]


def published(name: str, record: str) -> Dns:
    """A DNS stand-in that knows the one TXT record at `name`."""
    wanted = name.lower().rstrip(".").encode("ascii")

    def lookup(queried: bytes, timeout: int = 5) -> bytes:
        return record.encode("ascii") if queried.lower().rstrip(b".") == wanted else b""

    return lookup


def verified(message: bytes, dns: Dns) -> tuple[bool, str | None]:
    """Whether the message's first DKIM signature verifies, and its algorithm (a=)."""
    checker = dkim.DKIM(message)
    try:
        good = bool(checker.verify(dnsfunc=dns))
    except dkim.DKIMException:
        good = False
    algorithm = getattr(checker, "signature_fields", {}).get(b"a")
    return good, None if algorithm is None else algorithm.decode("ascii", "replace")


def check_messages(messages: list[bytes], *, recipients: int, dns: Dns) -> SignatureCheck:
    results = [verified(m, dns) for m in messages]
    algorithms = tuple(sorted({a for _, a in results if a is not None}))
    return SignatureCheck(
        recipients=recipients,
        kept=len(messages),
        verified=sum(good for good, _ in results),
        algorithms=algorithms,
    )


def check_signatures(
    dataset: Dataset,
    keys: list[tuple[KeyType, Path]],
    *,
    redis_url: str,
    workers: int,
    lead_seconds: float,
    arm_lead_seconds: float | None,
    run_dir: Path,
) -> tuple[str, dict[KeyType, SignatureCheck]]:
    """The receiver's description, and for each key the check of its send to `dataset`."""
    receiver = start_receiver(run_dir / "receiver", prefer="aiosmtpd", keep_messages=True)
    checks: dict[KeyType, SignatureCheck] = {}
    try:
        for kind, key_path in keys:
            extra = key_settings(kind, key_path)
            # Where a receiver would look the key up, as the workers' settings make it.
            name = record_name(SELECTOR, Settings(**extra).effective_dkim_domain)
            key = read_private_key(key_path, setting="the benchmark's DKIM key")
            dns = published(name, record_text(key))
            before = len(receiver.kept_messages())
            send_dir = run_dir / kind.value
            shutil.rmtree(send_dir, ignore_errors=True)
            send_dir.mkdir(parents=True)
            try:
                run = run_ours(
                    dataset,
                    receiver=receiver,
                    redis_url=redis_url,
                    workers=workers,
                    lead_seconds=lead_seconds,
                    run_dir=send_dir,
                    arm_lead_seconds=arm_lead_seconds,
                    extra_settings=extra,
                )
            except DistributorError as exc:
                checks[kind] = SignatureCheck(dataset.contacts, 0, 0, problem=str(exc)[:300])
                continue
            messages = receiver.kept_messages()[before:]
            check = check_messages(messages, recipients=run.figures.recipients, dns=dns)
            if messages:
                sample = run_dir / f"signed-{kind.value}.eml"
                sample.write_bytes(messages[0])
                check = dataclasses.replace(check, sample=str(sample))
            checks[kind] = check
    finally:
        receiver.stop()
    return receiver.description, checks
