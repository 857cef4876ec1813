"""The rate limiter: GCRA buckets in Redis, shared by every gateway replica, with a local lease
so that a busy bucket costs one Redis round trip per lease rather than one per request.

The limiter fails open: when Redis is unreachable, requests go through unlimited (chat keeps
working from Postgres) and limiting resumes by itself once Redis answers again.

Local lease (buckets of a high rate only). When a bucket's limit allows at least `LEASE_MIN`
requests per `lease_s`, a replica takes up to that many cells at once from Redis (one atomic
script, like a single request) and hands them out locally until they are used or `lease_s`
has passed. The tolerance, documented for operators:
  * never more than the limit: every request admitted was reserved in Redis first, so all
    replicas together admit at most `limit` per window, as without a lease;
  * possibly fewer: cells a replica reserved and did not use within `lease_s` are lost to the
    others until the bucket drains, at most one lease per replica, i.e. min(limit / 32, the
    rate over `lease_s`) requests (600/min: 10; the patient default of 20/min: no lease);
  * `X-RateLimit-Remaining` of a leased bucket is Redis's count at the lease plus the cells
    this replica still holds: exact on one replica, an estimate across several.
Buckets below that rate (the patients' defaults, every test's limits) check Redis on every
request, exactly as before.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from dataclasses import dataclass

from redis.asyncio import Redis
from redis.exceptions import RedisError

log = logging.getLogger(__name__)

# GCRA (generic cell rate algorithm) in one Lua script: a single round trip, atomic across
# every gateway replica, and O(1) memory per bucket (one integer, the "theoretical arrival
# time"), where a sliding log would keep a sorted-set entry per request. It allows a burst
# of `limit` and then one request per `window / limit`, with no doubled burst at a window
# edge as in fixed windows. The clock is Redis TIME, so replicas with skewed clocks agree.
# Times are integer microseconds: exact in Lua's doubles, and formatted with %d because
# Lua's default number-to-string would round a 16-digit timestamp.
# ARGV[3] asks for up to that many cells at once (a lease); the reply's 4th value is how
# many were granted (0: denied). With 1 it is the plain one-request check.
# Needs Redis >= 5 (scripts replicate their effects, so TIME before a write is allowed).
_GCRA = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local window = tonumber(ARGV[1])
local interval = tonumber(ARGV[2])
local want = tonumber(ARGV[3] or 1)
local tat = tonumber(redis.call('GET', KEYS[1]) or now)
if tat < now then tat = now end
local used = tat - now
local granted = math.floor((window - used) / interval)
if granted > want then granted = want end
local allowed = 0
if granted >= 1 then
  allowed = 1
  used = used + granted * interval
  -- The key lives exactly until the bucket is full again, when it means the same as absent.
  redis.call('SET', KEYS[1], string.format('%d', now + used),
             'PX', string.format('%d', math.ceil(used / 1000)))
else
  granted = 0
end
local remaining = math.floor((window - used) / interval)
local free_in = used - (window - (remaining + 1) * interval)
return {allowed, remaining, free_in, granted}
"""

LEASE_MIN = 2  # a lease smaller than this is a plain check
LEASE_SHARE = 32  # a lease takes at most this fraction of a bucket's burst


@dataclass(frozen=True)
class Decision:
    allowed: bool
    limit: int
    remaining: int
    reset_s: int  # seconds until one more request would be allowed


@dataclass(slots=True)
class _Lease:
    cells: int  # still ours to hand out
    remaining: int  # Redis's count after the lease was taken
    reset_s: int
    expires: float  # monotonic


class RateLimiter:
    def __init__(
        self,
        redis: Redis,
        *,
        prefix: str = "medchat:rl",
        timeout_s: float = 0.5,
        probe_every_s: float = 1.0,
        lease_s: float = 1.0,
    ):
        self.prefix = prefix
        self.timeout_s = timeout_s
        self.probe_every_s = probe_every_s
        self.lease_s = lease_s
        self._script = redis.register_script(_GCRA)
        # During an outage only one request per probe_every_s tries Redis; the others skip
        # it, so a down Redis (and the client's own retries) does not slow every chat turn.
        self._down_until: float | None = None
        self._leases: dict[str, _Lease] = {}
        self._refills: dict[str, asyncio.Future[Decision | None]] = {}

    def lease_size(self, limit: int, window_s: int) -> int:
        """Cells taken per Redis round trip for this bucket (1: no lease)."""
        by_rate = int(limit * self.lease_s / window_s)
        size = min(limit // LEASE_SHARE, by_rate)
        return size if size >= LEASE_MIN else 1

    async def check(self, key: str, limit: int, window_s: int) -> Decision:
        if limit < 1 or window_s < 1:
            raise ValueError("limit and window_s must be at least 1")
        size = self.lease_size(limit, window_s)
        if size == 1:
            return (await self._ask(key, limit, window_s, 1))[0]
        while True:
            lease = self._leases.get(key)
            if lease is not None and lease.cells > 0 and time.monotonic() < lease.expires:
                lease.cells -= 1
                return Decision(True, limit, lease.remaining + lease.cells, lease.reset_s)
            # One refill per bucket at a time: the others wait for it, then draw from it (or
            # share its refusal: they asked at the same moment).
            if (pending := self._refills.get(key)) is not None:
                refused = await asyncio.shield(pending)
                if refused is not None:
                    return refused
                continue
            done: asyncio.Future[Decision | None] = asyncio.get_running_loop().create_future()
            self._refills[key] = done
            decision: Decision | None = None
            try:
                decision, granted = await self._ask(key, limit, window_s, size)
            finally:
                del self._refills[key]
                done.set_result(decision if decision is not None and not decision.allowed else None)
            if not decision.allowed or granted == 0:  # denied, or Redis down (fail open)
                self._leases.pop(key, None)
                return decision
            self._leases[key] = _Lease(
                granted - 1, decision.remaining, decision.reset_s, time.monotonic() + self.lease_s
            )
            return Decision(True, limit, decision.remaining + granted - 1, decision.reset_s)

    async def _ask(self, key: str, limit: int, window_s: int, want: int) -> tuple[Decision, int]:
        """One script call: the decision, and how many cells were granted (0 when Redis is
        down: the decision then allows, failing open)."""
        if self._down_until is not None and time.monotonic() < self._down_until:
            return Decision(True, limit, limit, 0), 0
        window_us = window_s * 1_000_000
        # Floor, so that a full burst of `limit` always fits in the window.
        interval_us = max(window_us // limit, 1)
        try:
            async with asyncio.timeout(self.timeout_s):
                reply = await self._script(
                    keys=[f"{self.prefix}:{key}"], args=[window_us, interval_us, want]
                )
        except (RedisError, OSError) as exc:  # TimeoutError is an OSError
            if self._down_until is None:  # once per outage, not once per request
                log.warning(
                    "redis unavailable, rate limits are off until it is back: %s",
                    type(exc).__name__,
                )
            self._down_until = time.monotonic() + self.probe_every_s
            return Decision(True, limit, limit, 0), 0
        if self._down_until is not None:
            log.info("redis is back, rate limits are on again")
            self._down_until = None
        allowed, remaining, free_in_us, granted = (int(v) for v in reply)
        decision = Decision(bool(allowed), limit, remaining, math.ceil(free_in_us / 1_000_000))
        return decision, granted


def headers(decision: Decision) -> dict[str, str]:
    out = {
        "X-RateLimit-Limit": str(decision.limit),
        "X-RateLimit-Remaining": str(decision.remaining),
        "X-RateLimit-Reset": str(decision.reset_s),
    }
    if not decision.allowed:
        out["Retry-After"] = str(max(decision.reset_s, 1))
    return out
