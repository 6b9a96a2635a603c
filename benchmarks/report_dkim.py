"""The report's section on DKIM signing in the send: the same send unsigned and signed by
each kind of key, the share of the unsigned throughput each keeps, and their targets."""

from __future__ import annotations

from typing import TYPE_CHECKING

from benchmarks.cpu import DISTURBED_CPUS
from benchmarks.dkim_send import SELECTOR, TARGET_SIZE, DkimResult, SignatureCheck, SignedSend
from benchmarks.formatting import (
    attempts_note,
    cpu_breakdown,
    cpu_per_message,
    duration,
    percent,
    rate,
    table,
)

if TYPE_CHECKING:
    from benchmarks.ours import OursResult
    from benchmarks.report import BenchReport

TITLE = "## DKIM signing in the send"


def _verdict(ok: bool | None) -> str:
    return "n/a" if ok is None else ("met" if ok else "**missed**")


def _share(share: float | None) -> str:
    return "n/a" if share is None else percent(share)


def target_text(signed: SignedSend) -> str:
    return f"at least {signed.target:.0%} of unsigned".replace("%", " %")


def _check_text(label: str, check: SignatureCheck | None) -> str:
    if check is None:
        return f"{label}: not checked"
    if check.problem is not None:
        return f"{label}: **the check send failed**: {check.problem}"
    algorithms = ", ".join(check.algorithms) or "no signature"
    verdict = "" if check.ok else " (**not every message was signed and verified**)"
    return (
        f"{label}: {check.recipients:,} sent, {check.kept:,} kept, {check.verified:,} "
        f"verified ({algorithms}){verdict}"
    )


def dkim_section(report: BenchReport) -> list[str]:
    result = report.dkim
    lines = [TITLE, ""]
    if result is None:
        return [*lines, "Not run this time (`--dkim none`).", ""]
    unsigned = result.unsigned
    rows = [
        _row(
            "Unsigned" + (" (the main run above)" if result.unsigned_from_main else ""),
            unsigned,
            "100.0 %",
        ),
        *(_row(s.label, s.run, _share(s.share)) for s in result.signed),
    ]
    keys = ", ".join(f"{s.label} (`{s.key_path}`)" for s in result.signed)
    lines += [
        f"The same {result.size:,}-recipient send, once per key, each on a fresh database: a "
        "key made for the run by `distributor.dkim_keys.generate_key` and written with mode "
        f"0600 ({keys}), given to the worker and the scheduler as an operator gives it: "
        "`DISTRIBUTOR_DKIM_PRIVATE_KEY_PATH` and `DISTRIBUTOR_DKIM_SELECTOR` for RSA, "
        "`DISTRIBUTOR_DKIM_ED25519_PRIVATE_KEY_PATH` and `DISTRIBUTOR_DKIM_ED25519_SELECTOR` "
        f"for Ed25519, selector `{SELECTOR}`, signing for the sender's domain "
        f"(d={result.domain}). Each message is signed once, relaxed/relaxed, by the one key. "
        + (
            "The unsigned figure is the main run of the same size, earlier in this run."
            if result.unsigned_from_main
            else "The unsigned figure is a send of its own, in this run."
        ),
        "",
        *table(
            ["Signing", "Throughput", "Share of unsigned", "CPU per message", "Last message"],
            rows,
            "lrrrr",
        ),
        "",
    ]
    for signed in result.signed:
        lines.append(
            f"{signed.label}: {target_text(signed)}: {_verdict(signed.met)} "
            f"({_share(signed.share)})."
        )
        lines.append("")
    if result.size != TARGET_SIZE:
        lines += [
            f"The targets are set for {TARGET_SIZE:,} recipients; this run sent {result.size:,}.",
            "",
        ]
    lines += [
        "Signatures checked: after the measured sends, a small send per key with the same "
        "settings to a receiver that keeps each message whole (smtp-sink, which received "
        f"the measured sends, keeps none: {result.check_receiver or 'n/a'}), and every "
        "message it kept verified by dkimpy against the public record of the key file the "
        f"workers read, looked up as `{SELECTOR}._domainkey.{result.domain}`.",
        "",
    ]
    lines += [f"- {_check_text(s.label, s.check)}." for s in result.signed]
    lines += [f"- {s.label}: {cpu_breakdown(s.run.cpu, s.run.quiet)}." for s in result.signed]
    for label, run in [("unsigned", unsigned), *((s.label, s.run) for s in result.signed)]:
        lines += attempts_note(label, run.attempts)
        lines += [f"- {label}: {note}" for note in run.notes]
    if any(
        unsigned.settings.get(key)
        for key in ("dkim_private_key_path", "dkim_ed25519_private_key_path")
    ):
        lines.append(
            "- **The unsigned send had a DKIM key from the environment**: its figure is not "
            "of an unsigned send."
        )
    lines += [f"- {note}" for note in result.notes]
    return [*lines, *_disturbed_note(result), ""]


def _disturbed_note(result: DkimResult) -> list[str]:
    """The shares compare sends made minutes apart: say when other load was in one of them."""
    runs = [("unsigned", result.unsigned), *((s.label, s.run) for s in result.signed)]
    busy = [
        f"{label} {run.cpu.average(run.cpu.others):.2f}"
        for label, run in runs
        if run.cpu is not None and run.cpu.average(run.cpu.others) > DISTURBED_CPUS
    ]
    if not busy:
        return []
    return [
        "",
        "**Other processes kept CPUs busy during some of these sends** ("
        + ", ".join(busy)
        + f" CPUs, above the {DISTURBED_CPUS:g} a quiet machine allows): the shares of "
        "unsigned compare unequal conditions; run again on a quiet machine.",
    ]


def _row(label: str, run: OursResult, share: str) -> list[str]:
    figures = run.figures
    return [
        label,
        f"**{rate(figures.throughput)}**",
        share,
        cpu_per_message(run.cpu, figures.sent),
        duration(figures.last_s),
    ]


def dkim_targets(report: BenchReport) -> list[list[str]]:
    """Rows for the targets table."""
    result = report.dkim
    if result is None:
        return []
    return [
        [
            f"{result.size:,}: signed by {s.label}, {target_text(s)} throughput",
            _share(s.share),
            _verdict(s.met),
        ]
        for s in result.signed
    ]
