"""The machine and the versions a run used, so a reader can compare like with like."""

from __future__ import annotations

import os
import platform
import subprocess
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import metadata

import psycopg
import redis

from benchmarks.children import REPO_ROOT
from benchmarks.dataset import libpq_url

PACKAGES = (
    "sqlalchemy",
    "celery",
    "kombu",
    "psycopg",
    "redis",
    "jinja2",
    "alembic",
    "html2text",
    "aiosmtpd",
    "py-spy",
)


@dataclass(frozen=True, slots=True)
class MachineInfo:
    date: str
    cpus: int
    cpu_model: str
    memory_gib: float | None
    kernel: str
    python: str
    packages: dict[str, str]
    postgres: str
    redis_server: str
    receiver: str
    load_at_start: float  # 1-minute load average when the run began
    revision: str  # the commit measured, and whether the code under test had local changes


def cpu_model() -> str:
    try:
        for line in open("/proc/cpuinfo", encoding="utf-8"):  # noqa: SIM115 - read once
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def memory_gib() -> float | None:
    try:
        for line in open("/proc/meminfo", encoding="utf-8"):  # noqa: SIM115 - read once
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) / 1024 / 1024
    except OSError:
        pass
    return None


def package_versions() -> dict[str, str]:
    found = {}
    for name in PACKAGES:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return found


def postgres_version(admin_url: str) -> str:
    with psycopg.connect(libpq_url(admin_url)) as connection:
        row = connection.execute("SHOW server_version").fetchone()
    return str(row[0]) if row else "unknown"


def redis_version(redis_url: str) -> str:
    client = redis.Redis.from_url(redis_url)
    try:
        info = client.info("server")
    finally:
        client.close()
    return str(info.get("redis_version", "unknown"))


def source_revision() -> str:
    """`git` commit of the checkout; changes to anything but the benchmarks are flagged."""
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout.strip()
        status = subprocess.run(
            ["git", "status", "--porcelain"],
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            timeout=30,
            check=True,
        ).stdout.splitlines()
    except (OSError, subprocess.SubprocessError):
        return "unknown (not a git checkout)"
    own = ("benchmarks/", "docs/benchmarks", "var/", "tests/test_benchmarks_smoke.py")
    changed = [line[3:] for line in status if not line[3:].startswith(own)]
    return f"{head} with local changes" if changed else head


def collect(*, admin_url: str, redis_url: str, receiver: str) -> MachineInfo:
    return MachineInfo(
        date=datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        cpus=os.cpu_count() or 1,
        cpu_model=cpu_model(),
        memory_gib=memory_gib(),
        kernel=f"{platform.system()} {platform.release()}",
        python=f"{platform.python_implementation()} {platform.python_version()}",
        packages=package_versions(),
        postgres=postgres_version(admin_url),
        redis_server=redis_version(redis_url),
        receiver=receiver,
        load_at_start=os.getloadavg()[0],
        revision=source_revision(),
    )
