"""`distributor demo`: the whole flow on one machine with embedded defaults, then a summary
and how to look at the result in a browser."""

from __future__ import annotations

import secrets
import shlex
import shutil
import socket
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from distributor.accounts.users import create_user
from distributor.acting import acting_info
from distributor.actors import Actor, Role
from distributor.contacts_import import ContactRow, ParsedContacts, import_contacts
from distributor.lists import add_to_list, create_list
from distributor.mailcatcher import read_arrivals, start_catcher
from distributor.migrate import upgrade
from distributor.processes import ManagedProcess, start_scheduler, start_worker
from distributor.releases import create_release, parse_release_text
from distributor.runtime import Runtime
from distributor.scheduling import schedule_send
from distributor.settings import EMBEDDED_BROKER, Settings
from distributor.states import FINAL_DELIVERY_STATES
from distributor.status import send_statuses

Echo = Callable[[str], object]

FIRST_NAMES = ["Amira", "Ben", "Chloe", "Dev", "Eilidh", "Femi", "Grace", "Hamza", "Iona", "Jack"]
LAST_NAMES = ["Adeyemi", "Brown", "Campbell", "Davies", "Evans", "Fraser", "Gill", "Hughes"]
OUTLETS = [
    ("Daily Example", "dailyexample.co.uk"),
    ("Example Broadcasting", "broadcast.example.org"),
    ("Northern Courier", "northerncourier.example.com"),
    ("Policy Weekly", "policyweekly.example.net"),
    ("Wire Agency", "wire.example.com"),
]
LISTS = ("National news desks", "Crime and policing", "Charity and social affairs")
SAMPLE_RELEASE = "safelives-police-response-2017-11-14.txt"
DEMO_ACCOUNT = "demo@example.org"
# Where `distributor up` serves the web app unless told otherwise.
DASHBOARD_URL = "http://127.0.0.1:8000"
DEMO_ACTOR = Actor("distributor demo", Role.ADMIN)


def find_sample_release() -> Path:
    here = Path(__file__).resolve().parent
    for candidate in (here.parent / "demo" / SAMPLE_RELEASE, here / "_demo" / SAMPLE_RELEASE):
        if candidate.exists():
            return candidate
    raise FileNotFoundError(f"the demo release {SAMPLE_RELEASE} is not installed")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def demo_contacts(count: int) -> ParsedContacts:
    parsed = ParsedContacts()
    for i in range(count):
        first = FIRST_NAMES[i % len(FIRST_NAMES)]
        last = LAST_NAMES[(i // len(FIRST_NAMES)) % len(LAST_NAMES)]
        outlet, domain = OUTLETS[i % len(OUTLETS)]
        email = f"{first.lower()}.{last.lower()}.{i}@{domain}"
        parsed.rows.append(
            ContactRow(line=i + 2, email=email, name=f"{first} {last}", outlet=outlet)
        )
    return parsed


def list_members(emails: list[str]) -> dict[str, list[str]]:
    """Overlapping lists, so deduplication is visible: every contact is on one or two."""
    return {
        LISTS[0]: emails[: len(emails) * 3 // 5],
        LISTS[1]: emails[len(emails) * 2 // 5 :],
        LISTS[2]: emails[::4],
    }


@dataclass(frozen=True, slots=True)
class DemoSummary:
    recipients: int
    delivered: int
    early: int
    duplicates: int
    first_latency: float | None
    last_latency: float | None


def summarise(outbox: Path, *, recipients: int, embargo_at: datetime) -> DemoSummary:
    arrivals = read_arrivals(outbox)
    embargo_ts = embargo_at.timestamp()
    per_recipient: dict[str, int] = {}
    for arrival in arrivals:
        per_recipient[arrival.recipient] = per_recipient.get(arrival.recipient, 0) + 1
    times = sorted(a.arrived for a in arrivals)
    return DemoSummary(
        recipients=recipients,
        delivered=len(per_recipient),
        early=sum(1 for t in times if t < embargo_ts),
        duplicates=sum(n - 1 for n in per_recipient.values()),
        first_latency=times[0] - embargo_ts if times else None,
        last_latency=times[-1] - embargo_ts if times else None,
    )


def run_demo(
    *,
    contacts: int,
    lead_seconds: float,
    workers: int,
    echo: Echo,
    data_dir: Path = Path("var/demo"),
) -> bool:
    shutil.rmtree(data_dir, ignore_errors=True)
    port = free_port()
    # Small batches so every worker process takes a share of a short list.
    settings = Settings(data_dir=data_dir, smtp_url=f"smtp://127.0.0.1:{port}", batch_size=100)
    outbox = settings.effective_outbox_dir
    upgrade(settings.effective_database_url)
    catcher = start_catcher(outbox, port=port)
    echo(f"mail catcher listening on 127.0.0.1:{port}, writing to {outbox}/")
    rt = Runtime(settings)
    processes: list[ManagedProcess] = []
    try:
        send_id, embargo_at, recipients = _prepare(rt, contacts, lead_seconds, echo)
        log_dir = data_dir / "logs"
        processes.append(start_worker(settings, log_dir=log_dir, concurrency=workers))
        processes.append(start_scheduler(settings, log_dir=log_dir))
        echo(f"started {workers} worker process(es) and the scheduler; logs in {log_dir}/")
        _watch(rt, send_id, embargo_at, echo)
        password = _demo_account(rt) if _is_embedded(settings) else None
    finally:
        for process in reversed(processes):
            process.stop()
        catcher.stop()
        rt.close()
    summary = summarise(outbox, recipients=recipients, embargo_at=embargo_at)
    ok = _report(summary, outbox, echo)
    _how_to_look(data_dir, password, echo)
    return ok


def _is_embedded(settings: Settings) -> bool:
    """SQLite in the data folder and the filesystem broker: nothing anyone else uses."""
    return not settings.database_url and settings.broker_url == EMBEDDED_BROKER


def _demo_account(rt: Runtime) -> str:
    """A press officer's account to look at the demo with; returns its password.

    Only ever in the demo's own throwaway database, which the next demo run deletes.
    """
    password = secrets.token_urlsafe(12)
    with rt.sessions(info=acting_info(DEMO_ACTOR)) as session, session.begin():
        create_user(
            session,
            email=DEMO_ACCOUNT,
            role=Role.PRESS_OFFICER,
            password=password,
            now=rt.clock.now(),
            display_name="Demo press officer",
        )
    return password


def _command() -> str:
    """How to run `distributor` from here: by name when it is on the PATH, else its path."""
    installed = Path(sys.executable).with_name("distributor")
    if not installed.exists() or shutil.which("distributor") == str(installed):
        return "distributor"
    try:
        return str(installed.relative_to(Path.cwd()))
    except ValueError:
        return str(installed)


def _how_to_look(data_dir: Path, password: str | None, echo: Echo) -> None:
    if password is not None:
        account = f"log in as {DEMO_ACCOUNT}, password {password}"
    else:
        account = f"log in with your account ({_command()} users create EMAIL --role admin)"
    echo("")
    echo("to look at the result in a browser, run:")
    echo(f"  DISTRIBUTOR_DATA_DIR={shlex.quote(str(data_dir))} {_command()} up")
    echo("then open:")
    echo(f"  {DASHBOARD_URL}/       {account}")
    echo(f"  {DASHBOARD_URL}/news   the release as the public sees it")
    echo("Ctrl-C stops it.")


def _prepare(
    rt: Runtime, contacts: int, lead_seconds: float, echo: Echo
) -> tuple[int, datetime, int]:
    now = rt.clock.now()
    with rt.sessions.begin() as session:
        parsed = demo_contacts(contacts)
        import_contacts(session, parsed, now=now)
        for name, emails in list_members([r.email for r in parsed.rows]).items():
            create_list(session, name, now=now)
            add_to_list(session, name, emails)
        draft = parse_release_text(find_sample_release().read_text(encoding="utf-8"))
        release = create_release(session, draft, now=now)
        embargo_at = (now + timedelta(seconds=lead_seconds)).replace(microsecond=0)
        scheduled = schedule_send(
            session,
            release_id=release.id,
            list_names=list(LISTS),
            embargo_at=embargo_at,
            embargo_zone="Europe/London",
            now=now,
            batch_size=rt.settings.batch_size,
        )
    echo(
        f"{contacts} contacts on {len(LISTS)} overlapping lists; release {release.id}: "
        f"{draft.headline!r}"
    )
    echo(
        f"send {scheduled.send_id} scheduled to {scheduled.recipients} recipients, embargo "
        f"{embargo_at:%H:%M:%S} UTC ({lead_seconds:g} s from now)"
    )
    return scheduled.send_id, embargo_at, scheduled.recipients


def _watch(rt: Runtime, send_id: int, embargo_at: datetime, echo: Echo) -> None:
    deadline = time.monotonic() + (embargo_at - rt.clock.now()).total_seconds() + 120
    last_line = ""
    while time.monotonic() < deadline:
        with rt.sessions() as session:
            (status,) = send_statuses(session, send_id)
        to_embargo = (embargo_at - datetime.now(UTC)).total_seconds()
        counts = " ".join(f"{s.value}={n}" for s, n in sorted(status.counts.items()))
        when = f"embargo in {to_embargo:5.1f} s" if to_embargo > 0 else "embargo lifted"
        line = f"  {when} | {counts}"
        if line != last_line:
            echo(line)
            last_line = line
        if all(state in FINAL_DELIVERY_STATES for state in status.counts):
            return
        time.sleep(0.5 if to_embargo > 1 else 0.1)
    echo("gave up waiting: deliveries are still unfinished (see the logs)")


def _report(summary: DemoSummary, outbox: Path, echo: Echo) -> bool:
    def ms(seconds: float | None) -> str:
        return "n/a" if seconds is None else f"{seconds * 1000:.0f} ms"

    ok = summary.delivered == summary.recipients and summary.early == 0 and summary.duplicates == 0
    echo("")
    echo(f"delivered {summary.delivered} of {summary.recipients}")
    echo(f"{summary.early} before the embargo, {summary.duplicates} duplicate(s)")
    echo(
        f"embargo to first delivery: {ms(summary.first_latency)}; "
        f"to last: {ms(summary.last_latency)}"
    )
    echo(f"messages are in {outbox}/ (one .eml each; received.jsonl has arrival times)")
    echo("demo " + ("succeeded" if ok else "FAILED"))
    return ok


__all__ = ["run_demo"]
