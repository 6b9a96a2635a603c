"""The pacing store of the embedded mode: a small SQLite file under the data folder.

Without a broker server every worker process runs on this machine, so a file that they all
open is shared state enough: each operation is one `BEGIN IMMEDIATE` transaction (SQLite's
write lock), timed by this machine's clock. It keeps the same state as the Redis store and
computes the relay's backoff with the same functions (`relay_backoff.py`). Times far ahead
of the clock (after the clock was set back) are treated as past, so a stale file never
stops sending.
"""

from __future__ import annotations

import math
import sqlite3
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TypeVar

from distributor.engine.daily_quota import DAY_SECONDS, quota_day
from distributor.engine.pacing import (
    PACE,
    Admission,
    Grant,
    LimiterWaits,
    QuotaGrant,
    StoreReading,
    WaitKind,
)
from distributor.engine.relay_backoff import (
    ConnectionBackoff,
    RateBackoff,
    allowed_connections,
    allowed_rate,
    connections_after_refusal,
    rate_after_pushback,
)

T = TypeVar("T")

SCHEMA = """
CREATE TABLE IF NOT EXISTS tat (key TEXT PRIMARY KEY, at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS recent (
    key TEXT NOT NULL, message TEXT NOT NULL, answered REAL NOT NULL,
    PRIMARY KEY (key, message)
);
CREATE TABLE IF NOT EXISTS holders (holder TEXT PRIMARY KEY, expires REAL NOT NULL);
CREATE TABLE IF NOT EXISTS quota (day INTEGER PRIMARY KEY, used INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS backoff (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    rate_base REAL, rate_cut_at REAL,
    connection_base INTEGER, connection_cut_at REAL, ceiling INTEGER, ceiling_at REAL
);
CREATE TABLE IF NOT EXISTS waits (
    kind TEXT PRIMARY KEY, count INTEGER NOT NULL, seconds REAL NOT NULL
);
"""
BUSY_TIMEOUT_SECONDS = 10.0
CLOCK_SLACK_SECONDS = 1.0  # beyond what is handed out ahead: the clock went back


class LocalPacingStore:
    def __init__(self, path: Path, *, clock: Callable[[], float] = time.time) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._clock = clock
        self._lock = threading.Lock()
        self._db = sqlite3.connect(
            path, timeout=BUSY_TIMEOUT_SECONDS, isolation_level=None, check_same_thread=False
        )
        with self._lock:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=OFF")  # pacing state need not survive a crash
            self._db.executescript(SCHEMA)

    def _atomically(self, work: Callable[[sqlite3.Connection, float], T]) -> T:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                result = work(self._db, self._clock())
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")
            return result

    # -- backoff state -------------------------------------------------------------------

    @staticmethod
    def _rate_backoff(db: sqlite3.Connection, now: float) -> RateBackoff | None:
        row = db.execute("SELECT rate_base, rate_cut_at FROM backoff WHERE id = 1").fetchone()
        if row is None or row[0] is None or row[1] > now + CLOCK_SLACK_SECONDS:
            return None
        return RateBackoff(row[0], row[1])

    @staticmethod
    def _connection_backoff(db: sqlite3.Connection, now: float) -> ConnectionBackoff | None:
        row = db.execute(
            "SELECT connection_base, connection_cut_at, ceiling, ceiling_at FROM backoff "
            "WHERE id = 1"
        ).fetchone()
        if row is None or row[0] is None or row[1] > now + CLOCK_SLACK_SECONDS:
            return None
        return ConnectionBackoff(row[0], row[1], row[2], row[3])

    @staticmethod
    def _drop_expired(db: sqlite3.Connection, now: float, ttl: float) -> int:
        db.execute(
            "DELETE FROM holders WHERE expires <= ? OR expires > ?",
            (now, now + ttl + CLOCK_SLACK_SECONDS),
        )
        return int(db.execute("SELECT count(*) FROM holders").fetchone()[0])

    # -- messages ------------------------------------------------------------------------

    def take_messages(
        self, key: str, *, rate: float | None, relay: bool, want: int, horizon: float
    ) -> Grant:
        def take(db: sqlite3.Connection, now: float) -> Grant:
            in_force = allowed_rate(rate, self._rate_backoff(db, now), now) if relay else rate
            if in_force is None:
                return Grant(want, 0.0, 0.0, now)
            interval = 1.0 / (in_force * PACE)
            row = db.execute("SELECT at FROM tat WHERE key = ?", (key,)).fetchone()
            tat = now if row is None else row[0]
            if tat < now or tat > now + horizon + interval + CLOCK_SLACK_SECONDS:
                tat = now
            ahead = tat - now
            if ahead > horizon:
                return Grant(0, ahead - horizon, interval, now)
            count = min(want, math.floor((horizon - ahead) / interval) + 1)
            db.execute(
                "INSERT INTO tat (key, at) VALUES (?, ?) "
                "ON CONFLICT (key) DO UPDATE SET at = excluded.at",
                (key, tat + count * interval),
            )
            return Grant(count, ahead, interval, now)

        return self._atomically(take)

    def open_window(
        self, key: str, message: str, *, rate: float | None, relay: bool, hold: float
    ) -> float:
        def open_(db: sqlite3.Connection, now: float) -> float:
            in_force = allowed_rate(rate, self._rate_backoff(db, now), now) if relay else rate
            if in_force is None:
                return 0.0
            limit = max(math.floor(in_force + 1e-9), 1)
            db.execute(
                "DELETE FROM recent WHERE key = ? AND (answered <= ? OR answered > ?)",
                (key, now - 1.0, now + hold + CLOCK_SLACK_SECONDS),
            )
            count, oldest = db.execute(
                "SELECT count(*), min(answered) FROM recent WHERE key = ?", (key,)
            ).fetchone()
            if count < limit:
                db.execute(
                    "INSERT OR REPLACE INTO recent (key, message, answered) VALUES (?, ?, ?)",
                    (key, message, now + hold),
                )
                return 0.0
            return max(float(oldest) + 1.0 - now, 0.001)

        return self._atomically(open_)

    def close_window(self, key: str, messages: Sequence[str]) -> None:
        def close(db: sqlite3.Connection, now: float) -> None:
            db.executemany(
                "UPDATE recent SET answered = ? WHERE key = ? AND message = ?",
                [(now, key, m) for m in messages],
            )

        if messages:
            self._atomically(close)

    def relay_rate(self, configured: float | None) -> float | None:
        return self._atomically(
            lambda db, now: allowed_rate(configured, self._rate_backoff(db, now), now)
        )

    def push_back_rate(self, *, configured: float | None, observed: float) -> None:
        def push(db: sqlite3.Connection, now: float) -> None:
            cut = rate_after_pushback(
                configured, self._rate_backoff(db, now), observed=observed, now=now
            )
            if cut is not None:
                self._ensure_backoff_row(db)
                db.execute(
                    "UPDATE backoff SET rate_base = ?, rate_cut_at = ? WHERE id = 1",
                    (cut.base, cut.cut_at),
                )

        self._atomically(push)

    # -- connections ---------------------------------------------------------------------

    def take_connection(self, holder: str, *, configured: int | None, ttl: float) -> Admission:
        def take(db: sqlite3.Connection, now: float) -> Admission:
            count = self._drop_expired(db, now, ttl)
            allowed = allowed_connections(configured, self._connection_backoff(db, now), now)
            mine = db.execute("SELECT 1 FROM holders WHERE holder = ?", (holder,)).fetchone()
            if mine is None and allowed is not None and count >= allowed:
                return Admission(False, count, allowed)
            db.execute(
                "INSERT INTO holders (holder, expires) VALUES (?, ?) "
                "ON CONFLICT (holder) DO UPDATE SET expires = excluded.expires",
                (holder, now + ttl),
            )
            return Admission(True, count + (mine is None), allowed)

        return self._atomically(take)

    def renew_connections(self, holders: Sequence[str], *, ttl: float) -> None:
        def renew(db: sqlite3.Connection, now: float) -> None:
            db.executemany(
                "INSERT INTO holders (holder, expires) VALUES (?, ?) "
                "ON CONFLICT (holder) DO UPDATE SET expires = excluded.expires",
                [(holder, now + ttl) for holder in holders],
            )

        if holders:
            self._atomically(renew)

    def release_connections(self, holders: Sequence[str]) -> None:
        def release(db: sqlite3.Connection, _now: float) -> None:
            db.executemany("DELETE FROM holders WHERE holder = ?", [(h,) for h in holders])

        if holders:
            self._atomically(release)

    def refused_connection(self, holder: str, *, configured: int | None) -> int:
        def refused(db: sqlite3.Connection, now: float) -> int:
            db.execute("DELETE FROM holders WHERE expires <= ?", (now,))
            count = int(db.execute("SELECT count(*) FROM holders").fetchone()[0])
            mine = db.execute("SELECT 1 FROM holders WHERE holder = ?", (holder,)).fetchone()
            holders = count + (mine is None)
            cut = connections_after_refusal(
                configured, self._connection_backoff(db, now), holders=holders, now=now
            )
            if cut is not None:
                self._ensure_backoff_row(db)
                db.execute(
                    "UPDATE backoff SET connection_base = ?, connection_cut_at = ?, ceiling = ?, "
                    "ceiling_at = ? WHERE id = 1",
                    (cut.base, cut.cut_at, cut.ceiling, cut.ceiling_at),
                )
            return holders

        return self._atomically(refused)

    @staticmethod
    def _ensure_backoff_row(db: sqlite3.Connection) -> None:
        db.execute("INSERT OR IGNORE INTO backoff (id) VALUES (1)")

    # -- the daily quota -----------------------------------------------------------------

    def take_quota(self, *, quota: int, want: int) -> QuotaGrant:
        def take(db: sqlite3.Connection, now: float) -> QuotaGrant:
            day = quota_day(now)
            row = db.execute("SELECT used FROM quota WHERE day = ?", (day,)).fetchone()
            used = 0 if row is None else int(row[0])
            granted = max(min(want, quota - used), 0)
            if granted:
                db.execute(
                    "INSERT INTO quota (day, used) VALUES (?, ?) "
                    "ON CONFLICT (day) DO UPDATE SET used = used + excluded.used",
                    (day, granted),
                )
                db.execute("DELETE FROM quota WHERE day < ?", (day - 2,))
            return QuotaGrant(granted, day, float((day + 1) * DAY_SECONDS))

        return self._atomically(take)

    def return_quota(self, day: int, count: int) -> None:
        self._atomically(
            lambda db, _now: db.execute(
                "UPDATE quota SET used = max(used - ?, 0) WHERE day = ?", (count, day)
            )
        )

    # -- waits ---------------------------------------------------------------------------

    def record_waits(self, waits: Mapping[WaitKind, LimiterWaits]) -> None:
        def record(db: sqlite3.Connection, _now: float) -> None:
            db.executemany(
                "INSERT INTO waits (kind, count, seconds) VALUES (?, ?, ?) "
                "ON CONFLICT (kind) DO UPDATE "
                "SET count = count + excluded.count, seconds = seconds + excluded.seconds",
                [(kind.value, w.count, w.seconds) for kind, w in waits.items()],
            )

        if waits:
            self._atomically(record)

    @staticmethod
    def _waits(db: sqlite3.Connection) -> dict[WaitKind, LimiterWaits]:
        known = {kind.value: kind for kind in WaitKind}
        return {
            known[kind]: LimiterWaits(int(count), float(seconds))
            for kind, count, seconds in db.execute("SELECT kind, count, seconds FROM waits")
            if kind in known
        }

    # -- reading -------------------------------------------------------------------------

    def read(self) -> StoreReading:
        def read(db: sqlite3.Connection, now: float) -> StoreReading:
            held = db.execute("SELECT count(*) FROM holders WHERE expires > ?", (now,))
            used = db.execute("SELECT used FROM quota WHERE day = ?", (quota_day(now),))
            used_row = used.fetchone()
            return StoreReading(
                now=now,
                rate_backoff=self._rate_backoff(db, now),
                connection_backoff=self._connection_backoff(db, now),
                connections_held=int(held.fetchone()[0]),
                quota_used_today=0 if used_row is None else int(used_row[0]),
                waits=self._waits(db),
            )

        return self._atomically(read)

    def close(self) -> None:
        with self._lock:
            self._db.close()
