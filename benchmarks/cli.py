"""Options, and the order things run in: per size a fresh database, our send, then the
baseline, the profile and the components where they belong; then the same send signed by
each kind of DKIM key, the relay far away, the recovery from a killed worker, the same send
on the revision before leases, and the report."""

from __future__ import annotations

import argparse
import os
import shlex
import shutil
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from benchmarks.children import REPO_ROOT
from benchmarks.components import run_components
from benchmarks.cpu import DISTURBED_CPUS, CpuUsage
from benchmarks.dataset import Dataset, fresh_database, prepare
from benchmarks.dkim_check import check_signatures
from benchmarks.dkim_send import (
    LABELS,
    DkimResult,
    SignedSend,
    key_kinds,
    key_settings,
    share_of,
    write_fresh_key,
)
from benchmarks.environment import collect
from benchmarks.figures import Attempt
from benchmarks.latency_proxy import LatencyProxy
from benchmarks.naive import NaiveResult, run_naive
from benchmarks.ours import OursResult, default_workers, run_ours
from benchmarks.profiling import find_py_spy
from benchmarks.rate_runs import run_rate_limits
from benchmarks.recovery import RecoveryResult, default_lease_seconds, run_recovery
from benchmarks.report import BenchReport, render, write, write_raw
from benchmarks.report_recovery import BEFORE_LEASES_REVISION, BEFORE_LEASES_SIZE
from benchmarks.revision import RevisionResult, run_revision
from benchmarks.sink import Receiver, start_receiver
from distributor.dkim_keys import KeyType
from distributor.errors import DistributorError
from distributor.settings import Settings

Echo = Callable[[str], object]

DEFAULT_POSTGRES_URL = os.environ.get(
    "DISTRIBUTOR_BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)
DEFAULT_REDIS_URL = os.environ.get("DISTRIBUTOR_BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")
QUICK_SIZE = 1000
RECOVERY_SIZE = 10_000
# Recipients of the send per key whose messages are kept and their signatures verified.
DKIM_CHECK_RECIPIENTS = 10


def sizes(text: str) -> list[int]:
    try:
        values = sorted({int(part.replace("_", "")) for part in text.split(",") if part.strip()})
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a list like 10000,100000") from None
    if not values or values[0] < 1:
        raise argparse.ArgumentTypeError("sizes must be positive whole numbers")
    return values


def rtts(text: str) -> list[float]:
    try:
        values = sorted({float(part) for part in text.split(",") if part.strip()})
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a list like 0,20") from None
    if not values or values[0] < 0 or values[-1] > 1000:
        raise argparse.ArgumentTypeError("round trips must be 0 to 1000 ms")
    return values


def lease(text: str) -> float:
    value = float(text)
    if not 3 <= value <= 600:
        raise argparse.ArgumentTypeError("DISTRIBUTOR_LEASE_SECONDS takes 3 to 600 seconds")
    return value


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description="Throughput, embargo-lift latency and memory of a release send, next to "
        "the naive Celery pattern; prints a markdown report and writes docs/benchmarks.md.",
    )
    p.add_argument("--sizes", type=sizes, default=None, help="recipients per run (10000,100000)")
    p.add_argument(
        "--quick",
        action="store_true",
        help=f"smoke check: {QUICK_SIZE:,} recipients everywhere, report under var/bench/",
    )
    p.add_argument("--skip-naive", action="store_true", help="do not run the naive baseline")
    p.add_argument("--naive-size", type=int, default=None, help="emails for the baseline (10000)")
    p.add_argument("--skip-components", action="store_true", help="do not time the components")
    p.add_argument("--import-rows", type=int, default=None, help="contacts to import (10000)")
    p.add_argument("--build-count", type=int, default=None, help="messages to build (5000)")
    p.add_argument(
        "--profile",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="profile the worker children with py-spy during an extra send of the smallest "
        "size, not the measured one (default: on when py-spy is installed, off with --quick)",
    )
    p.add_argument(
        "--settle",
        type=float,
        default=120.0,
        help="before each measured send, wait up to this many seconds for other load on the "
        "machine to pass (0: do not wait)",
    )
    p.add_argument(
        "--attempts",
        type=int,
        default=2,
        help="run a send again (up to this many times in all) when other processes kept more "
        f"than {DISTURBED_CPUS:g} CPUs busy during it; the least disturbed run is reported",
    )
    p.add_argument(
        "--workers", type=int, default=None, help="worker processes (the worker's default)"
    )
    p.add_argument(
        "--relay-rtt-ms",
        type=rtts,
        default=[0.0, 20.0],
        help="round trips to the relay to measure, in ms (0,20): each above 0 runs a send "
        "through a TCP proxy that delays each direction by half of it",
    )
    p.add_argument(
        "--relay-size", type=int, default=None, help="recipients of each relay-distance run"
    )
    p.add_argument(
        "--dkim",
        type=key_kinds,
        default="rsa,ed25519",
        metavar="KINDS",
        help="after the main sends, send again signed by a fresh key of each kind (rsa,"
        "ed25519; none to skip), and check that the workers really signed",
    )
    p.add_argument(
        "--dkim-size",
        type=int,
        default=None,
        help="recipients of each DKIM-signed send (the smallest of --sizes)",
    )
    p.add_argument(
        "--rate-limit",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="measure the rate limiter: its cost per message, the send with a limit far above "
        "the achievable rate beside the unlimited one, and a send at 500 msg/s",
    )
    p.add_argument("--lead", type=float, default=15.0, help="seconds from scheduling to embargo")
    p.add_argument("--arm-lead", type=float, default=None, help="arming lead (the setting's)")
    p.add_argument(
        "--receiver", choices=("auto", "smtp-sink", "aiosmtpd"), default="auto", help="SMTP sink"
    )
    p.add_argument("--postgres-url", default=DEFAULT_POSTGRES_URL, help="admin connection URL")
    p.add_argument("--redis-url", default=DEFAULT_REDIS_URL)
    p.add_argument("--output", type=Path, default=None, help="report (docs/benchmarks.md)")
    p.add_argument(
        "--raw-dir", type=Path, default=None, help="logs, profiles, JSON (docs/benchmarks.raw)"
    )
    p.add_argument("--keep-databases", action="store_true", help="do not drop the databases")
    p.add_argument(
        "--skip-recovery", action="store_true", help="do not kill a worker during a send"
    )
    p.add_argument(
        "--recovery-size",
        type=int,
        default=None,
        help=f"recipients of the send during which a worker is killed ({RECOVERY_SIZE:,})",
    )
    p.add_argument(
        "--recovery-lease",
        type=lease,
        default=None,
        help=f"lease seconds for that send (the production default, {default_lease_seconds():g})",
    )
    p.add_argument(
        "--compare-revision",
        default=None,
        metavar="REV",
        help=f"also measure this revision's send of {BEFORE_LEASES_SIZE:,} (or the smallest "
        "size) with its own benchmark, for a like-for-like comparison; 'none' to skip "
        f"(default: {BEFORE_LEASES_REVISION}, the engine before leases; none with --quick)",
    )
    return p


@dataclass(frozen=True)
class Plan:
    sizes: list[int]
    naive_size: int | None
    import_rows: int
    build_count: int
    components: bool
    profile: bool
    workers: int
    attempts: int
    output: Path
    raw_dir: Path
    recovery_size: int | None
    recovery_lease: float
    compare_revision: str | None
    relay_rtts: list[float] = field(default_factory=list)  # extra runs behind a latency proxy
    relay_size: int = 10_000
    dkim_kinds: list[KeyType] = field(default_factory=list)  # a signed send for each
    dkim_size: int = 10_000

    @property
    def compare_size(self) -> int:
        return BEFORE_LEASES_SIZE if BEFORE_LEASES_SIZE in self.sizes else self.sizes[0]

    def naive_dataset_size(self) -> int | None:
        """The run whose database the baseline uses: the smallest that is big enough."""
        if self.naive_size is None:
            return None
        big_enough = [s for s in self.sizes if s >= self.naive_size]
        return big_enough[0] if big_enough else self.sizes[-1]


def make_plan(options: argparse.Namespace) -> Plan:
    quick = bool(options.quick)
    chosen = options.sizes or ([QUICK_SIZE] if quick else [10_000, 100_000])
    naive_size = None
    if not options.skip_naive:
        naive_size = options.naive_size or min(10_000, chosen[0])
    default_count = QUICK_SIZE if quick else 10_000
    bench_dir = REPO_ROOT / "var" / "bench"
    revision = options.compare_revision or (None if quick else BEFORE_LEASES_REVISION)
    if revision is not None and revision.lower() == "none":
        revision = None
    return Plan(
        sizes=chosen,
        naive_size=naive_size,
        import_rows=options.import_rows or default_count,
        build_count=options.build_count or (QUICK_SIZE if quick else 5_000),
        components=not options.skip_components,
        profile=(not quick) if options.profile is None else bool(options.profile),
        workers=options.workers or default_workers(),
        attempts=max(1, options.attempts),
        output=options.output
        or (bench_dir / "benchmarks.md" if quick else REPO_ROOT / "docs" / "benchmarks.md"),
        raw_dir=options.raw_dir
        or (bench_dir / "raw" if quick else REPO_ROOT / "docs" / "benchmarks.raw"),
        recovery_size=None
        if options.skip_recovery
        else options.recovery_size or (QUICK_SIZE if quick else RECOVERY_SIZE),
        recovery_lease=options.recovery_lease or default_lease_seconds(),
        compare_revision=revision,
        relay_rtts=[r for r in options.relay_rtt_ms if r > 0],
        relay_size=options.relay_size or (QUICK_SIZE if quick else 10_000),
        dkim_kinds=list(options.dkim),
        dkim_size=options.dkim_size or chosen[0],
    )


def fresh_dir(path: Path) -> Path:
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True)
    return path


def run(options: argparse.Namespace, *, echo: Echo, command: str = "") -> BenchReport:
    plan = make_plan(options)
    py_spy = find_py_spy() if plan.profile else None
    notes: list[str] = []
    if plan.profile and py_spy is None:
        notes.append("py-spy is not installed (`pip install -e '.[bench]'`): no profile this time")
    plan.raw_dir.mkdir(parents=True, exist_ok=True)
    receiver = start_receiver(fresh_dir(plan.raw_dir / "receiver"), prefer=options.receiver)
    if receiver.kind != "smtp-sink":
        echo(f"NOTE: not Postfix's smtp-sink but {receiver.description}; it may limit the figures")
    echo(f"receiver: {receiver.description}")
    try:
        machine = collect(
            admin_url=options.postgres_url,
            redis_url=options.redis_url,
            receiver=receiver.description,
        )
        report = BenchReport(command=command, machine=machine, ours=[], notes=notes)
        for size in plan.sizes:
            _run_size(size, plan, options, receiver, report, py_spy, echo)
        if plan.dkim_kinds:
            report.dkim = _run_dkim(plan, options, receiver, report.ours, echo)
        if options.rate_limit:
            report.rate_limits = run_rate_limits(
                size=plan.sizes[0],
                main_runs=report.ours,
                postgres_url=options.postgres_url,
                redis_url=options.redis_url,
                receiver=receiver,
                workers=plan.workers,
                lead_seconds=options.lead,
                arm_lead_seconds=options.arm_lead,
                settle_seconds=options.settle,
                raw_dir=plan.raw_dir,
                keep_databases=options.keep_databases,
                echo=echo,
            )
        for rtt in plan.relay_rtts:
            report.relay_runs.append(_run_relay_distance(rtt, plan, options, receiver, echo))
        if plan.recovery_size is not None:
            report.recovery = _run_recovery(plan, options, receiver, echo)
        if plan.compare_revision is not None:
            report.revision = _run_revision(plan, options, receiver, echo)
        report.load_at_end = os.getloadavg()[0]
    finally:
        receiver.stop()
    return report


def _run_size(
    size: int,
    plan: Plan,
    options: argparse.Namespace,
    receiver: Receiver,
    report: BenchReport,
    py_spy: str | None,
    echo: Echo,
) -> None:
    def ours_run(name: str, py_spy: str | None = None) -> OursResult:
        return run_ours(
            dataset,
            settle_seconds=0.0 if py_spy else options.settle,
            receiver=receiver,
            redis_url=options.redis_url,
            workers=plan.workers,
            lead_seconds=options.lead,
            run_dir=fresh_dir(plan.raw_dir / name),
            arm_lead_seconds=options.arm_lead,
            py_spy=py_spy,
        )

    def naive_run(name: str, count: int) -> NaiveResult:
        return run_naive(
            dataset,
            count=count,
            receiver=receiver,
            redis_url=options.redis_url,
            workers=plan.workers,
            # The ETA must lie beyond queueing every task (about a millisecond each).
            lead_seconds=options.lead + count * 0.0015,
            run_dir=fresh_dir(plan.raw_dir / name),
            settle_seconds=options.settle,
        )

    with fresh_database(options.postgres_url, keep=options.keep_databases) as url:
        echo(f"[{size:,}] loading {size:,} contacts into a fresh database")
        dataset = prepare(url, size)

        def measured(attempt: int) -> OursResult:
            echo(f"[{size:,}] our send: {plan.workers} workers, embargo {options.lead:g} s ahead")
            return ours_run(f"ours-{size}" + (f"-{attempt}" if attempt > 1 else ""))

        ours = _least_disturbed(f"[{size:,}] ours", measured, plan, echo)
        report.ours.append(ours)
        if plan.naive_size is not None and plan.naive_dataset_size() == size:
            count = min(plan.naive_size, size)
            tries: list[NaiveResult] = []
            for attempt in range(1, plan.attempts + 1):
                echo(f"[{size:,}] naive baseline: {count:,} emails, one task each")
                tries.append(
                    naive_run(f"naive-{count}" + (f"-{attempt}" if attempt > 1 else ""), count)
                )
                echo(f"[{size:,}] naive: {_summary(tries[-1])}")
                if not _disturbed(tries[-1].cpu):
                    break
            report.naive = min(tries, key=lambda r: _others(r.cpu))
            report.naive.attempts = [_attempt(r) for r in tries]
            report.naive_compared_with = ours
        if py_spy is not None and size == plan.sizes[0]:
            echo(f"[{size:,}] profiling the worker children during another send")
            report.profiled = ours_run(f"profile-{size}", py_spy)
            if report.profiled.profile is None:
                report.notes.append(
                    "py-spy recorded nothing (it may lack the right to attach to the workers; "
                    f"see {plan.raw_dir / f'profile-{size}' / 'profile'})"
                )
        if plan.components and size == plan.sizes[-1]:
            echo(f"[{size:,}] components")
            report.components = run_components(
                dataset,
                send_id=ours.send_id,
                import_rows=plan.import_rows,
                build_count=plan.build_count,
            )


def _run_relay_distance(
    rtt_ms: float, plan: Plan, options: argparse.Namespace, receiver: Receiver, echo: Echo
) -> OursResult:
    """The same send with the receiver `rtt_ms` away, behind a delaying proxy."""
    size = plan.relay_size
    with fresh_database(options.postgres_url, keep=options.keep_databases) as url:
        echo(f"[relay {rtt_ms:g} ms] loading {size:,} contacts into a fresh database")
        dataset = prepare(url, size)
        with LatencyProxy("127.0.0.1", receiver.port, rtt_ms) as proxy:
            echo(f"[relay {rtt_ms:g} ms] our send through the proxy")
            result = run_ours(
                dataset,
                settle_seconds=options.settle,
                receiver=receiver,
                redis_url=options.redis_url,
                workers=plan.workers,
                lead_seconds=options.lead,
                run_dir=fresh_dir(plan.raw_dir / f"relay-{rtt_ms:g}ms"),
                arm_lead_seconds=options.arm_lead,
                smtp_url=proxy.smtp_url,
                relay_rtt_ms=rtt_ms,
            )
        echo(f"[relay {rtt_ms:g} ms] ours: {_summary(result)}")
        return result


def _least_disturbed(
    label: str, send: Callable[[int], OursResult], plan: Plan, echo: Echo
) -> OursResult:
    """Run the send (attempt 1, 2, ...) until one is not disturbed, or the attempts are spent;
    the least disturbed, with every attempt noted on it."""
    attempts: list[OursResult] = []
    for attempt in range(1, plan.attempts + 1):
        attempts.append(send(attempt))
        echo(f"{label}: {_summary(attempts[-1])}")
        if not _disturbed(attempts[-1].cpu):
            break
    result = min(attempts, key=lambda r: _others(r.cpu))
    result.attempts = [_attempt(r) for r in attempts]
    return result


def _run_dkim(
    plan: Plan,
    options: argparse.Namespace,
    receiver: Receiver,
    main_runs: list[OursResult],
    echo: Echo,
) -> DkimResult:
    """The send of `plan.dkim_size` signed by a fresh key of each kind, each on a fresh
    database, beside the unsigned send of that size; then the check that they were signed."""
    size = plan.dkim_size

    def measured(
        label: str, dataset: Dataset, folder: Path, extra: dict[str, object] | None = None
    ) -> OursResult:
        def send(attempt: int) -> OursResult:
            echo(f"{label} our send: {plan.workers} workers, embargo {options.lead:g} s ahead")
            return run_ours(
                dataset,
                settle_seconds=options.settle,
                receiver=receiver,
                redis_url=options.redis_url,
                workers=plan.workers,
                lead_seconds=options.lead,
                run_dir=fresh_dir(folder / ("send" if attempt == 1 else f"send-{attempt}")),
                arm_lead_seconds=options.arm_lead,
                extra_settings=extra,
            )

        return _least_disturbed(f"{label} ours", send, plan, echo)

    unsigned = next((r for r in main_runs if r.size == size), None)
    from_main = unsigned is not None
    if unsigned is None:
        with fresh_database(options.postgres_url, keep=options.keep_databases) as url:
            echo(f"[dkim, unsigned] loading {size:,} contacts into a fresh database")
            unsigned = measured(
                "[dkim, unsigned]",
                prepare(url, size),
                fresh_dir(plan.raw_dir / f"dkim-none-{size}"),
            )
    result = DkimResult(
        size=size,
        domain=Settings().effective_dkim_domain,
        unsigned=unsigned,
        unsigned_from_main=from_main,
    )
    keys: list[tuple[KeyType, Path]] = []
    for kind in plan.dkim_kinds:
        label = f"[dkim, {LABELS[kind]}]"
        folder = fresh_dir(plan.raw_dir / f"dkim-{kind.value}-{size}")
        key_path = write_fresh_key(kind, folder)
        keys.append((kind, key_path))
        with fresh_database(options.postgres_url, keep=options.keep_databases) as url:
            echo(f"{label} loading {size:,} contacts into a fresh database")
            run = measured(label, prepare(url, size), folder, key_settings(kind, key_path))
        result.signed.append(
            SignedSend(kind, LABELS[kind], str(key_path), run, share_of(run, unsigned))
        )
    with fresh_database(options.postgres_url, keep=options.keep_databases) as url:
        echo(f"[dkim check] a {DKIM_CHECK_RECIPIENTS}-recipient send per key, messages kept")
        result.check_receiver, checks = check_signatures(
            prepare(url, DKIM_CHECK_RECIPIENTS),
            keys,
            redis_url=options.redis_url,
            workers=plan.workers,
            lead_seconds=options.lead,
            arm_lead_seconds=options.arm_lead,
            run_dir=fresh_dir(plan.raw_dir / "dkim-check"),
        )
    for signed in result.signed:
        signed.check = checks.get(signed.kind)
        check = signed.check
        echo(
            f"[dkim check] {signed.label}: "
            + (
                "not checked"
                if check is None
                else check.problem or f"{check.verified} of {check.kept} kept messages verified"
            )
        )
    return result


def _run_recovery(
    plan: Plan, options: argparse.Namespace, receiver: Receiver, echo: Echo
) -> RecoveryResult:
    size = plan.recovery_size or RECOVERY_SIZE
    with fresh_database(options.postgres_url, keep=options.keep_databases) as url:
        echo(f"[recovery] loading {size:,} contacts into a fresh database")
        dataset = prepare(url, size)
        echo(
            f"[recovery] {size:,} recipients, lease {plan.recovery_lease:g} s: killing a "
            "worker process once a fifth of the messages are accepted"
        )
        result = run_recovery(
            dataset,
            receiver_kind=receiver.kind,
            redis_url=options.redis_url,
            workers=plan.workers,
            lead_seconds=options.lead,
            arm_lead_seconds=options.arm_lead,
            lease_seconds=plan.recovery_lease,
            run_dir=fresh_dir(plan.raw_dir / f"recovery-{size}"),
            settle_seconds=options.settle,
        )
    victim = result.victim
    echo(
        "[recovery] "
        + (
            f"killed pid {victim.pid} after {victim.accepted:,} messages; last delivery "
            f"{result.kill_to_last_s:.2f} s after the kill; "
            if victim is not None and result.kill_to_last_s is not None
            else "no worker was killed; "
        )
        + f"lost {result.lost}, duplicates {result.duplicates} (bound {result.bound}), "
        f"early {result.early}" + "".join(f"; {note}" for note in result.notes)
    )
    return result


def _run_revision(
    plan: Plan, options: argparse.Namespace, receiver: Receiver, echo: Echo
) -> RevisionResult:
    revision = plan.compare_revision or BEFORE_LEASES_REVISION
    size = plan.compare_size
    echo(f"[{revision}] the same {size:,}-recipient send on commit {revision}, its own benchmark")
    result = run_revision(
        revision,
        size=size,
        workers=plan.workers,
        receiver_kind=receiver.kind,
        postgres_url=options.postgres_url,
        redis_url=options.redis_url,
        lead_seconds=options.lead,
        arm_lead_seconds=options.arm_lead,
        settle_seconds=options.settle,
        attempts=plan.attempts,
        run_dir=plan.raw_dir / f"revision-{revision}",
        trees=REPO_ROOT / "var" / "bench" / "revisions",
    )
    echo(
        f"[{revision}] "
        + ("n/a" if result.throughput is None else f"{result.throughput:,.0f} msg/s")
        + "".join(f"; {note}" for note in result.notes)
    )
    return result


def _others(cpu: CpuUsage | None) -> float:
    """Average CPUs that processes not under test kept busy during a send."""
    return cpu.average(cpu.others) if cpu is not None else 0.0


def _disturbed(cpu: CpuUsage | None) -> bool:
    return _others(cpu) > DISTURBED_CPUS


def _attempt(result: OursResult | NaiveResult) -> Attempt:
    return Attempt(throughput=result.figures.throughput, other_cpus=_others(result.cpu))


def _summary(result: OursResult | NaiveResult) -> str:
    figures = result.figures
    text = "n/a" if figures.throughput is None else f"{figures.throughput:,.0f} msg/s"
    if figures.last_s is not None:
        text += f", last message {figures.last_s:.2f} s after the embargo"
    if result.cpu is not None:
        text += f"; other processes kept {_others(result.cpu):.2f} CPUs busy"
    return text


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    options = parser().parse_args(args)
    plan = make_plan(options)

    def echo(line: str) -> None:
        print(line, file=sys.stderr, flush=True)

    command = shlex.join(["python", "-m", "benchmarks", *args])
    try:
        report = run(options, echo=echo, command=command)
    except DistributorError as exc:  # BenchmarkError, or a helper process that did not start
        echo(f"benchmark failed: {exc}")
        return 2
    text = render(report)
    print(text)
    write(plan.output, text)
    write_raw(plan.raw_dir / "results.json", report)
    echo(f"wrote {plan.output} and {plan.raw_dir / 'results.json'}")
    if not report.sound:
        echo(
            "some deliveries did not finish or went before the embargo, or the killed worker's "
            "batch lost deliveries or sent more than its bound twice"
        )
        return 1
    return 0
