"""The same send on another revision of the code, in the same run, for a like-for-like
comparison: that revision's own `benchmarks/` on a copy of its tree (`git archive`, the
checkout itself is left alone), on the same machine and services, with the same kind of
receiver, number of worker processes and lead. Its figures are read from its results.json.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from benchmarks.children import REPO_ROOT, BenchmarkError
from benchmarks.formatting import UNDER_TEST


@dataclass
class RevisionResult:
    revision: str
    size: int
    sent: int | None = None
    last_s: float | None = None  # embargo to the last acceptance
    cpu_per_message_ms: float | None = None  # processes under test, CPU time per message
    other_cpus: float | None = None  # average CPUs other processes kept busy
    receiver: str | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def throughput(self) -> float | None:
        if not self.sent or not self.last_s or self.last_s <= 0:
            return None
        return self.sent / self.last_s


def export_tree(revision: str, into: Path) -> Path:
    """The files of `revision`, once, under `into`."""
    target = into / f"revision-{revision}"
    if (target / "benchmarks" / "__main__.py").exists():
        return target
    partial = into / f"revision-{revision}.partial"
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    try:
        archive = subprocess.run(
            ["git", "archive", "--format=tar", revision],
            cwd=REPO_ROOT,
            capture_output=True,
            timeout=120,
            check=True,
        )
        subprocess.run(
            ["tar", "-x", "-C", str(partial)], input=archive.stdout, timeout=120, check=True
        )
    except (OSError, subprocess.SubprocessError) as exc:
        shutil.rmtree(partial, ignore_errors=True)
        detail = getattr(exc, "stderr", b"") or b""
        raise BenchmarkError(
            f"cannot export revision {revision}: {exc} {detail.decode(errors='replace')}".strip()
        ) from exc
    if not (partial / "benchmarks" / "__main__.py").exists():
        shutil.rmtree(partial, ignore_errors=True)
        raise BenchmarkError(f"revision {revision} has no benchmarks to run")
    shutil.rmtree(target, ignore_errors=True)
    partial.rename(target)
    return target


def run_revision(
    revision: str,
    *,
    size: int,
    workers: int,
    receiver_kind: str,
    postgres_url: str,
    redis_url: str,
    lead_seconds: float,
    arm_lead_seconds: float | None,
    settle_seconds: float,
    attempts: int,
    run_dir: Path,
    trees: Path,
) -> RevisionResult:
    result = RevisionResult(revision=revision, size=size)
    try:
        tree = export_tree(revision, trees)
    except BenchmarkError as exc:
        result.notes.append(str(exc))
        return result
    shutil.rmtree(run_dir, ignore_errors=True)
    run_dir.mkdir(parents=True)
    argv = [
        sys.executable,
        "-m",
        "benchmarks",
        f"--sizes={size}",
        "--skip-naive",
        "--skip-components",
        "--no-profile",
        f"--workers={workers}",
        f"--receiver={receiver_kind}",
        f"--settle={settle_seconds:g}",
        f"--attempts={attempts}",
        f"--lead={lead_seconds:g}",
        f"--postgres-url={postgres_url}",
        f"--redis-url={redis_url}",
        f"--output={run_dir / 'benchmarks.md'}",
        f"--raw-dir={run_dir / 'raw'}",
    ]
    if arm_lead_seconds is not None:
        argv.append(f"--arm-lead={arm_lead_seconds:g}")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["PYTHONPATH"] = str(tree)  # that revision's code, not this checkout's
    log = run_dir / "harness.log"
    try:
        with log.open("wb") as output:
            subprocess.run(
                argv,
                cwd=tree,
                env=env,
                stdout=output,
                stderr=subprocess.STDOUT,
                timeout=600 + attempts * (settle_seconds + max(120.0, size / 100)),
                check=False,
            )
    except (OSError, subprocess.SubprocessError) as exc:
        result.notes.append(f"its benchmark did not finish: {exc} (log: {log})")
        return result
    results = run_dir / "raw" / "results.json"
    try:
        data = json.loads(results.read_text(encoding="utf-8"))
        read_results(result, data)
    except (OSError, ValueError, KeyError, IndexError, TypeError) as exc:
        result.notes.append(f"no figures from its benchmark ({exc}; log: {log})")
    return result


def read_results(result: RevisionResult, data: dict[str, Any]) -> None:
    ours = data["ours"][0]
    figures = ours["figures"]
    result.sent = int(figures["sent"])
    result.last_s = figures["last_s"]
    result.receiver = data.get("machine", {}).get("receiver")
    if figures["sent"] != figures["recipients"] or figures.get("early"):
        result.notes.append(
            f"{figures['sent']:,} of {figures['recipients']:,} sent, "
            f"{figures.get('early') or 0:,} early"
        )
    cpu = ours.get("cpu")
    if cpu and result.sent:
        by_role: dict[str, float] = cpu["by_role"]
        used = sum(by_role.get(role, 0.0) for role in UNDER_TEST)
        result.cpu_per_message_ms = used / result.sent * 1000
        if cpu["wall_seconds"]:
            others = max(0.0, cpu["machine_cpu_seconds"] - sum(by_role.values()))
            result.other_cpus = others / cpu["wall_seconds"]
