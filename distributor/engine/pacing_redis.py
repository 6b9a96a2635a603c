"""The pacing store in Redis: Lua scripts, each atomic, timed by `redis.call('TIME')`.

Message slots are a GCRA (generic cell rate algorithm): one key per limit holds its
theoretical arrival time (TAT); a grant of n slots starts at max(TAT, now) and moves the TAT
n intervals on, so slots are one interval apart across every process, with no burst after an
idle spell. Slots are handed out at most HORIZON ahead of the server's clock.

The window of the last second is a sorted set per limit of the messages that went, scored by
when their reply came back (those still in flight: by when they are given up on); a message
goes only while fewer than the limit are in it.

Connection slots are a sorted set of holders scored by their expiry; a holder renews its
score while it lives, and expired members are dropped before each count, so the slots of a
killed process come back by themselves.

The relay's backoff (`relay_backoff.py`) is a hash the scripts read and write; the same
functions are written out here in Lua, with the constants taken from that module. Times are
whole microseconds, written with %.0f so that no digit is lost to Lua's number printing.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, cast

import redis

from distributor.engine import relay_backoff as rb
from distributor.engine.daily_quota import DAY_SECONDS
from distributor.engine.pacing import (
    PACE,
    Admission,
    Grant,
    LimiterWaits,
    QuotaGrant,
    StoreReading,
    WaitKind,
)
from distributor.engine.relay_backoff import ConnectionBackoff, RateBackoff

TAT_TTL_MS = 60_000
SOCKET_TIMEOUT_SECONDS = 2.0

COMMON = f"""
local function now_us()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000000 + tonumber(t[2])
end
local function us(x) return string.format('%.0f', x) end
local function num(x) if x == false or x == nil then return nil end return tonumber(x) end

local function allowed_rate(configured, base, cut_at, now)
  if base == nil then return configured end
  local target = configured or base
  local elapsed = math.max(now - cut_at, 0) / 1e6
  local slope = target * (1 - {rb.DECREASE}) / {rb.RECOVERY_SECONDS}
  local recovered = base * {rb.DECREASE} + slope * elapsed
  if configured == nil then
    if recovered >= base then return nil end
    return math.max(recovered, {rb.MIN_RATE})
  end
  return math.max(math.min(recovered, configured), {rb.MIN_RATE})
end

local function allowed_connections(configured, b, now)
  if b[1] == nil then return configured end
  local cap = configured
  if now - b[4] < {rb.CEILING_MEMORY_SECONDS} * 1e6 then
    local steps = math.floor(math.max(now - b[2], 0) / ({rb.CONNECTION_STEP_SECONDS} * 1e6))
    local recovered = math.max(1, math.floor(b[1] * {rb.DECREASE}) + steps)
    local learned = math.min(b[3], recovered)
    if cap == nil or learned < cap then cap = learned end
  end
  return cap
end

local function connection_backoff(key)
  local f = redis.call('HMGET', key, 'cb', 'cc', 'ceil', 'ceil_at')
  return {{num(f[1]), num(f[2]), num(f[3]), num(f[4])}}
end

local function positive(x)
  local n = tonumber(x)
  if n == nil or n <= 0 then return nil end
  return n
end

local function drop_expired(holders, now)
  redis.call('ZREMRANGEBYSCORE', holders, '-inf', now)
end
"""

# KEYS: tat, backoff. ARGV: rate (0: none), relay (1/0), want, horizon (us).
# Returns {count, first_in (us), interval (us), now (us)} as strings.
TAKE_MESSAGES = (
    COMMON
    + f"""
local now = now_us()
local rate = positive(ARGV[1])
if ARGV[2] == '1' then
  local f = redis.call('HMGET', KEYS[2], 'rb', 'rc')
  rate = allowed_rate(rate, num(f[1]), num(f[2]), now)
end
local want = tonumber(ARGV[3])
if rate == nil then return {{tostring(want), '0', '0', us(now)}} end
local interval = 1e6 / (rate * {PACE})
local horizon = tonumber(ARGV[4])
local tat = num(redis.call('GET', KEYS[1])) or now
if tat < now then tat = now end
local ahead = tat - now
if ahead > horizon then
  return {{'0', us(ahead - horizon), string.format('%.3f', interval), us(now)}}
end
local n = math.min(want, math.floor((horizon - ahead) / interval) + 1)
redis.call('SET', KEYS[1], us(tat + n * interval), 'PX', {TAT_TTL_MS})
return {{tostring(n), us(ahead), string.format('%.3f', interval), us(now)}}
"""
)

# KEYS: window, backoff. ARGV: rate (0: none), relay (1/0), message, hold (us).
# The window holds the messages of the last second scored by when their reply came back
# (those in flight by now + hold). Returns '0' when counted, else the wait (us).
OPEN_WINDOW = (
    COMMON
    + f"""
local now = now_us()
local rate = positive(ARGV[1])
if ARGV[2] == '1' then
  local f = redis.call('HMGET', KEYS[2], 'rb', 'rc')
  rate = allowed_rate(rate, num(f[1]), num(f[2]), now)
end
if rate == nil then return '0' end
local limit = math.max(math.floor(rate + 1e-9), 1)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', us(now - 1e6))
if redis.call('ZCARD', KEYS[1]) < limit then
  redis.call('ZADD', KEYS[1], us(now + tonumber(ARGV[4])), ARGV[3])
  redis.call('PEXPIRE', KEYS[1], {TAT_TTL_MS})
  return '0'
end
local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
return us(math.max(tonumber(oldest[2]) + 1e6 - now, 1000))
"""
)

# KEYS: window. ARGV: message... Each is scored by now: it leaves the window in a second.
CLOSE_WINDOW = (
    COMMON
    + """
local now = us(now_us())
for i = 1, #ARGV do redis.call('ZADD', KEYS[1], 'XX', now, ARGV[i]) end
return #ARGV
"""
)

# KEYS: backoff. ARGV: configured rate (0: none). Returns the rate in force, or false.
RELAY_RATE = (
    COMMON
    + """
local f = redis.call('HMGET', KEYS[1], 'rb', 'rc')
local rate = allowed_rate(positive(ARGV[1]), num(f[1]), num(f[2]), now_us())
if rate == nil then return false end
return string.format('%.6f', rate)
"""
)

# KEYS: holders, backoff. ARGV: holder, configured cap (0: none), ttl (us).
# Returns {held (1/0), holders, allowed (-1: no limit)}.
TAKE_CONNECTION = (
    COMMON
    + """
local now = now_us()
drop_expired(KEYS[1], now)
local count = redis.call('ZCARD', KEYS[1])
local cap = allowed_connections(positive(ARGV[2]), connection_backoff(KEYS[2]), now)
local ttl = tonumber(ARGV[3])
local mine = redis.call('ZSCORE', KEYS[1], ARGV[1])
if not mine and cap ~= nil and count >= cap then return {0, count, cap} end
redis.call('ZADD', KEYS[1], us(now + ttl), ARGV[1])
redis.call('PEXPIRE', KEYS[1], math.floor(2 * ttl / 1000))
if not mine then count = count + 1 end
return {1, count, cap or -1}
"""
)

# KEYS: holders. ARGV: ttl (us), holder...
RENEW_CONNECTIONS = (
    COMMON
    + """
local now = now_us()
local ttl = tonumber(ARGV[1])
for i = 2, #ARGV do redis.call('ZADD', KEYS[1], us(now + ttl), ARGV[i]) end
redis.call('PEXPIRE', KEYS[1], math.floor(2 * ttl / 1000))
return #ARGV - 1
"""
)

# KEYS: holders, backoff. ARGV: holder, configured cap (0: none). Returns the holders then.
REFUSED_CONNECTION = (
    COMMON
    + f"""
local now = now_us()
drop_expired(KEYS[1], now)
local holders = redis.call('ZCARD', KEYS[1])
if not redis.call('ZSCORE', KEYS[1], ARGV[1]) then holders = holders + 1 end
local took = holders - 1
if took < 1 then return holders end
local b = connection_backoff(KEYS[2])
local remembered = b[1] ~= nil and now - b[4] < {rb.CEILING_MEMORY_SECONDS} * 1e6
local ceiling = took
if remembered and b[3] < took then ceiling = b[3] end
if remembered and now - b[2] < {rb.COOLDOWN_SECONDS} * 1e6 then
  redis.call('HSET', KEYS[2], 'ceil', ceiling, 'ceil_at', us(now))
else
  local in_force = allowed_connections(positive(ARGV[2]), b, now)
  local base = took
  if in_force ~= nil and in_force < took then base = in_force end
  redis.call('HSET', KEYS[2], 'cb', base, 'cc', us(now), 'ceil', ceiling, 'ceil_at', us(now))
end
redis.call('PEXPIRE', KEYS[2], {int(rb.CEILING_MEMORY_SECONDS * 1000)})
return holders
"""
)

# KEYS: backoff. ARGV: configured rate (0: none), observed rate. Returns 1 when cut.
PUSH_BACK_RATE = (
    COMMON
    + f"""
local now = now_us()
local f = redis.call('HMGET', KEYS[1], 'rb', 'rc')
local base, cut_at = num(f[1]), num(f[2])
if base ~= nil and now - cut_at < {rb.COOLDOWN_SECONDS} * 1e6 then return 0 end
local in_force = allowed_rate(positive(ARGV[1]), base, cut_at, now)
if in_force == nil and tonumber(ARGV[2]) <= {rb.MIN_RATE} then return 0 end
local new_base = in_force or tonumber(ARGV[2])
new_base = math.max(new_base, {rb.MIN_RATE})
redis.call('HSET', KEYS[1], 'rb', string.format('%.6f', new_base), 'rc', us(now))
redis.call('PEXPIRE', KEYS[1], {int(rb.CEILING_MEMORY_SECONDS * 1000)})
return 1
"""
)

# ARGV: key prefix, quota, want. Returns {granted, day, next day's start (s)}.
TAKE_QUOTA = (
    COMMON
    + f"""
local now = now_us()
local day = math.floor(now / ({DAY_SECONDS} * 1e6))
local key = ARGV[1] .. 'quota:' .. day
local used = tonumber(redis.call('GET', key) or '0')
local n = math.min(tonumber(ARGV[3]), tonumber(ARGV[2]) - used)
if n > 0 then
  redis.call('INCRBY', key, n)
  redis.call('EXPIRE', key, {3 * DAY_SECONDS})
else
  n = 0
end
return {{n, day, (day + 1) * {DAY_SECONDS}}}
"""
)

# KEYS: holders, backoff, waits. ARGV: key prefix.
READ = (
    COMMON
    + f"""
local now = now_us()
local day = math.floor(now / ({DAY_SECONDS} * 1e6))
local f = redis.call('HMGET', KEYS[2], 'rb', 'rc', 'cb', 'cc', 'ceil', 'ceil_at')
local held = redis.call('ZCOUNT', KEYS[1], '(' .. us(now), '+inf')
local used = redis.call('GET', ARGV[1] .. 'quota:' .. day) or '0'
local waits = redis.call('HGETALL', KEYS[3])
return {{us(now), held, used, f[1], f[2], f[3], f[4], f[5], f[6], waits}}
"""
)


class RedisPacingStore:
    def __init__(self, url: str, *, installation: str) -> None:
        self.prefix = f"distributor:pacing:{installation}:"
        self._client = redis.Redis.from_url(
            url,
            socket_timeout=SOCKET_TIMEOUT_SECONDS,
            socket_connect_timeout=SOCKET_TIMEOUT_SECONDS,
        )
        self._holders = self.prefix + "holders"
        self._backoff = self.prefix + "backoff"
        # Counters with no expiry: "<kind>:count" and "<kind>:seconds" of every wait.
        self._waits = self.prefix + "waits"
        client: Any = self._client
        self._take_messages = client.register_script(TAKE_MESSAGES)
        self._relay_rate = client.register_script(RELAY_RATE)
        self._open_window = client.register_script(OPEN_WINDOW)
        self._close_window = client.register_script(CLOSE_WINDOW)
        self._take_connection = client.register_script(TAKE_CONNECTION)
        self._renew = client.register_script(RENEW_CONNECTIONS)
        self._refused = client.register_script(REFUSED_CONNECTION)
        self._push_back = client.register_script(PUSH_BACK_RATE)
        self._take_quota = client.register_script(TAKE_QUOTA)
        self._read = client.register_script(READ)

    def take_messages(
        self, key: str, *, rate: float | None, relay: bool, want: int, horizon: float
    ) -> Grant:
        count, first_in, interval, now = self._take_messages(
            keys=[self.prefix + "tat:" + key, self._backoff],
            args=[rate or 0, 1 if relay else 0, want, int(horizon * 1e6)],
        )
        return Grant(int(count), float(first_in) / 1e6, float(interval) / 1e6, float(now) / 1e6)

    def open_window(
        self, key: str, message: str, *, rate: float | None, relay: bool, hold: float
    ) -> float:
        wait = self._open_window(
            keys=[self.prefix + "window:" + key, self._backoff],
            args=[rate or 0, 1 if relay else 0, message, int(hold * 1e6)],
        )
        return float(wait) / 1e6

    def close_window(self, key: str, messages: Sequence[str]) -> None:
        if messages:
            self._close_window(keys=[self.prefix + "window:" + key], args=list(messages))

    def relay_rate(self, configured: float | None) -> float | None:
        rate = self._relay_rate(keys=[self._backoff], args=[configured or 0])
        return None if rate is None else float(rate)

    def take_connection(self, holder: str, *, configured: int | None, ttl: float) -> Admission:
        held, holders, allowed = self._take_connection(
            keys=[self._holders, self._backoff], args=[holder, configured or 0, int(ttl * 1e6)]
        )
        return Admission(bool(held), int(holders), None if int(allowed) < 0 else int(allowed))

    def renew_connections(self, holders: Sequence[str], *, ttl: float) -> None:
        if holders:
            self._renew(keys=[self._holders], args=[int(ttl * 1e6), *holders])

    def release_connections(self, holders: Sequence[str]) -> None:
        if holders:
            self._client.zrem(self._holders, *holders)

    def refused_connection(self, holder: str, *, configured: int | None) -> int:
        return int(
            self._refused(keys=[self._holders, self._backoff], args=[holder, configured or 0])
        )

    def push_back_rate(self, *, configured: float | None, observed: float) -> None:
        self._push_back(keys=[self._backoff], args=[configured or 0, observed])

    def take_quota(self, *, quota: int, want: int) -> QuotaGrant:
        granted, day, renews_at = self._take_quota(args=[self.prefix, quota, want])
        return QuotaGrant(int(granted), int(day), float(renews_at))

    def return_quota(self, day: int, count: int) -> None:
        self._client.decrby(f"{self.prefix}quota:{day}", count)

    def record_waits(self, waits: Mapping[WaitKind, LimiterWaits]) -> None:
        if not waits:
            return
        pipe = self._client.pipeline(transaction=True)
        for kind, w in waits.items():
            pipe.hincrby(self._waits, f"{kind.value}:count", w.count)
            pipe.hincrbyfloat(self._waits, f"{kind.value}:seconds", w.seconds)
        pipe.execute()

    def read(self) -> StoreReading:
        now, held, used, rate_base, rate_cut, base, cut, ceiling, ceiling_at, waits = self._read(
            keys=[self._holders, self._backoff, self._waits], args=[self.prefix]
        )
        return StoreReading(
            now=float(now) / 1e6,
            rate_backoff=None
            if rate_base is None
            else RateBackoff(float(rate_base), float(rate_cut) / 1e6),
            connection_backoff=None
            if base is None
            else ConnectionBackoff(
                int(base), float(cut) / 1e6, int(ceiling), float(ceiling_at) / 1e6
            ),
            connections_held=int(held),
            quota_used_today=int(used),
            waits=_waits_from(waits),
        )

    def clear(self) -> None:
        """Forget every limit's state (tests, and a fresh start of an installation)."""
        keys = list(cast(Any, self._client).scan_iter(match=self.prefix + "*"))
        if keys:
            self._client.delete(*keys)

    def close(self) -> None:
        self._client.close()


def _waits_from(flat: Sequence[bytes]) -> dict[WaitKind, LimiterWaits]:
    """HGETALL's field, value, field, value ... as waits by kind."""
    fields = {
        name.decode(): value.decode() for name, value in zip(flat[::2], flat[1::2], strict=True)
    }
    return {
        kind: LimiterWaits(
            int(fields.get(f"{kind.value}:count", 0)),
            float(fields.get(f"{kind.value}:seconds", 0.0)),
        )
        for kind in WaitKind
        if f"{kind.value}:count" in fields
    }
