"""Formatting figures for the report: numbers, sizes, CPU shares and markdown tables."""

from __future__ import annotations

from collections.abc import Sequence

from benchmarks.components import ComponentFigures
from benchmarks.cpu import CpuUsage
from benchmarks.figures import Attempt
from benchmarks.memory import ProcessMemory

# The processes whose CPU counts as the system under test.
UNDER_TEST = ("worker children", "worker main", "scheduler", "PostgreSQL", "Redis", "receiver")


def count(n: int | None) -> str:
    return "n/a" if n is None else f"{n:,}"


def rate(value: float | None, unit: str = "msg/s") -> str:
    return "n/a" if value is None else f"{value:,.0f} {unit}"


def duration(seconds: float | None) -> str:
    if seconds is None:
        return "n/a"
    if abs(seconds) < 1:
        return f"{seconds * 1000:,.0f} ms"
    return f"{seconds:,.2f} s"


def megabytes(kib: int | None) -> str:
    return "n/a" if kib is None else f"{kib * 1024 / 1e6:,.0f} MB"


def mb(kib: int | None) -> float | None:
    return None if kib is None else kib * 1024 / 1e6


def percent(share: float) -> str:
    return f"{share * 100:.1f} %"


def table(header: Sequence[str], rows: Sequence[Sequence[str]], align: str = "") -> list[str]:
    align = align or "l" + "r" * (len(header) - 1)
    marks = {"l": "---", "r": "---:", "c": ":---:"}
    lines = ["| " + " | ".join(header) + " |", "| " + " | ".join(marks[a] for a in align) + " |"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return lines


def cpus_of(cpu: CpuUsage | None, *roles: str) -> str:
    if cpu is None:
        return "n/a"
    used = sum(cpu.by_role.get(role, 0.0) for role in roles)
    return f"{cpu.average(used):.2f} of {cpu.cpus}"


def cpus_others(cpu: CpuUsage | None) -> str:
    return "n/a" if cpu is None else f"{cpu.average(cpu.others):.2f} of {cpu.cpus}"


def size_of_ours(components: ComponentFigures | None) -> str:
    if components is None or components.message_bytes is None:
        return "n/a"
    return f"{components.message_bytes:,} bytes"


def cpu_per_message(cpu: CpuUsage | None, sent: int) -> str:
    if cpu is None or not sent:
        return "n/a"
    used = sum(cpu.by_role.get(role, 0.0) for role in UNDER_TEST)
    return f"{used / sent * 1000:.2f} ms"


def attempts_note(label: str, attempts: list[Attempt]) -> list[str]:
    if len(attempts) < 2:
        return []
    tries = ", ".join(
        f"{rate(a.throughput)} with {a.other_cpus:.2f} CPUs busy elsewhere" for a in attempts
    )
    return [
        f"- {label}: sent {len(attempts)} times because other processes were busy: {tries}; "
        "the least disturbed is shown."
    ]


def cpu_breakdown(cpu: CpuUsage | None, quiet: tuple[float, float] | None) -> str:
    if cpu is None:
        return "no CPU figures"
    parts = [f"{role} {cpu.average(seconds):.2f}" for role, seconds in cpu.by_role.items()]
    parts.append(f"other processes {cpu.average(cpu.others):.2f}")
    text = "average CPUs busy from the embargo to the last message: " + ", ".join(parts)
    if quiet is not None:
        waited, share = quiet
        text += f"; before the send the machine was {share:.0%} busy" + (
            f" after waiting {waited:.0f} s for it to settle" if waited >= 1 else ""
        )
    return text


def peaks(memory: list[ProcessMemory], role: str) -> list[int]:
    return [m.peak_kib for m in memory if m.role == role and m.peak_kib is not None]


def peak_of(memory: list[ProcessMemory], role: str) -> int | None:
    found = peaks(memory, role)
    return max(found) if found else None


def peaks_text(memory: list[ProcessMemory], role: str) -> str:
    found = peaks(memory, role)
    return " / ".join(megabytes(k) for k in found) if found else "n/a"


# Sections ---------------------------------------------------------------------------------
