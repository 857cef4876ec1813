"""Rate limits in Redis: per API key for integrators, per user for browser logins.

The limiter fails open: when Redis is unreachable, requests go through unlimited (chat keeps
working from Postgres) and limiting resumes by itself once Redis answers again.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated, NoReturn

from fastapi import Depends, Request
from redis.asyncio import Redis
from redis.exceptions import RedisError
from starlette.types import Scope

from .auth.dependencies import CurrentPrincipal, Principal, api_key_principal, current_principal
from .client_ip import client_ip
from .errors import ApiError

log = logging.getLogger(__name__)

# GCRA (generic cell rate algorithm) in one Lua script: a single round trip, atomic across
# every gateway replica, and O(1) memory per bucket (one integer, the "theoretical arrival
# time"), where a sliding log would keep a sorted-set entry per request. It allows a burst
# of `limit` and then one request per `window / limit`, with no doubled burst at a window
# edge as in fixed windows. The clock is Redis TIME, so replicas with skewed clocks agree.
# Times are integer microseconds: exact in Lua's doubles, and formatted with %d because
# Lua's default number-to-string would round a 16-digit timestamp.
# Needs Redis >= 5 (scripts replicate their effects, so TIME before a write is allowed).
_GCRA = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local window = tonumber(ARGV[1])
local interval = tonumber(ARGV[2])
local tat = tonumber(redis.call('GET', KEYS[1]) or now)
if tat < now then tat = now end
local allowed = 0
local used = tat - now
if tat + interval - now <= window then
  allowed = 1
  used = used + interval
  -- The key lives exactly until the bucket is full again, when it means the same as absent.
  redis.call('SET', KEYS[1], string.format('%d', now + used),
             'PX', string.format('%d', math.ceil(used / 1000)))
end
local remaining = math.floor((window - used) / interval)
local free_in = used - (window - (remaining + 1) * interval)
return {allowed, remaining, free_in}
"""


@dataclass(frozen=True)
class Decision:
    allowed: bool
    limit: int
    remaining: int
    reset_s: int  # seconds until one more request would be allowed


class RateLimiter:
    def __init__(
        self,
        redis: Redis,
        *,
        prefix: str = "medchat:rl",
        timeout_s: float = 0.5,
        probe_every_s: float = 1.0,
    ):
        self.prefix = prefix
        self.timeout_s = timeout_s
        self.probe_every_s = probe_every_s
        self._script = redis.register_script(_GCRA)
        # During an outage only one request per probe_every_s tries Redis; the others skip
        # it, so a down Redis (and the client's own retries) does not slow every chat turn.
        self._down_until: float | None = None

    async def check(self, key: str, limit: int, window_s: int) -> Decision:
        if limit < 1 or window_s < 1:
            raise ValueError("limit and window_s must be at least 1")
        if self._down_until is not None and time.monotonic() < self._down_until:
            return Decision(True, limit, limit, 0)
        window_us = window_s * 1_000_000
        # Floor, so that a full burst of `limit` always fits in the window.
        interval_us = max(window_us // limit, 1)
        try:
            async with asyncio.timeout(self.timeout_s):
                reply = await self._script(
                    keys=[f"{self.prefix}:{key}"], args=[window_us, interval_us]
                )
        except (RedisError, OSError) as exc:  # TimeoutError is an OSError
            if self._down_until is None:  # once per outage, not once per request
                log.warning(
                    "redis unavailable, rate limits are off until it is back: %s",
                    type(exc).__name__,
                )
            self._down_until = time.monotonic() + self.probe_every_s
            return Decision(True, limit, limit, 0)
        if self._down_until is not None:
            log.info("redis is back, rate limits are on again")
            self._down_until = None
        allowed, remaining, free_in_us = (int(v) for v in reply)
        return Decision(bool(allowed), limit, remaining, math.ceil(free_in_us / 1_000_000))


def limit_key(principal: Principal) -> tuple[str, str]:
    """The bucket a caller draws from, and its kind: each API key has its own, so one
    integration cannot starve another of the same user; browser logins share the user's."""
    if principal.via == "api_key" and principal.api_key_id is not None:
        return f"key:{principal.api_key_id}", "key"
    return f"user:{principal.user_id}", "user"


def headers(decision: Decision) -> dict[str, str]:
    out = {
        "X-RateLimit-Limit": str(decision.limit),
        "X-RateLimit-Remaining": str(decision.remaining),
        "X-RateLimit-Reset": str(decision.reset_s),
    }
    if not decision.allowed:
        out["Retry-After"] = str(max(decision.reset_s, 1))
    return out


LimitFor = Callable[[Principal, Request], tuple[int, int]]


async def _charge(request: Request, bucket: str, limit: int, window_s: int) -> Decision:
    limiter: RateLimiter = request.app.state.ratelimiter
    return await limiter.check(bucket, limit, window_s)


def _refuse(decision: Decision, why: str) -> NoReturn:
    raise ApiError(429, "rate_limited", f"too many requests: {why}", headers=headers(decision))


def rate_limited(
    limit_for: LimitFor,
    *,
    scope: str = "chat",
    who: Callable[..., Awaitable[Principal]] = current_principal,
) -> Callable[[Request, Principal], Awaitable[Principal]]:
    """A dependency that charges one request to the caller's bucket and returns the caller.

    `limit_for` gives (limit, window_s) for a caller. Routes limited under different scopes
    draw from separate buckets: a bucket must always be checked with the same limit. `who`:
    the credentials the route takes (auth/dependencies.py).
    """

    # A default, not Annotated: with postponed annotations FastAPI would look `who` up in
    # this module's globals and take `principal` for a query parameter.
    async def dependency(request: Request, principal: Principal = Depends(who)) -> Principal:  # noqa: B008
        limit, window_s = limit_for(principal, request)
        bucket, _ = limit_key(principal)
        decision = await _charge(request, f"{scope}:{bucket}", limit, window_s)
        if not decision.allowed:
            retry = max(decision.reset_s, 1)
            _refuse(decision, f"at most {limit} every {window_s} s; retry in {retry} s")
        request.state.ratelimit_headers = headers(decision)
        return principal

    return dependency


def response_headers(scope: Scope, present: set[bytes]) -> list[tuple[bytes, bytes]]:
    """The headers `rate_limited` left on request.state (a view on scope["state"]), for the
    response start — streamed answers included. Added by RequestContext's one hook on the
    response start, so no middleware of its own wraps every outgoing chunk."""
    extra: dict[str, str] = scope.get("state", {}).get("ratelimit_headers", {})
    return [
        (name.lower().encode(), value.encode())
        for name, value in extra.items()
        if name.lower().encode() not in present
    ]


def chat_limit(principal: Principal, request: Request) -> tuple[int, int]:
    """Answers are what cost: browsers are limited per user, integrators per key."""
    s = request.app.state.settings
    per_minute = (
        s.rate_limit_key_per_minute
        if principal.via == "api_key"
        else s.rate_limit_patient_per_minute
    )
    return per_minute, 60


ChatLimited = Annotated[Principal, Depends(rate_limited(chat_limit))]
# The integrator API: API keys only, each limited on its own.
KeyChatLimited = Annotated[Principal, Depends(rate_limited(chat_limit, who=api_key_principal))]


async def _check_ip(request: Request, scope: str, limit: int, window_s: int) -> None:
    decision = await _charge(request, f"{scope}:ip:{client_ip(request)}", limit, window_s)
    if not decision.allowed:
        retry = max(decision.reset_s, 1)
        _refuse(decision, f"from your network address; retry in {retry} s, or sign in")


async def guest_create_limit(request: Request) -> None:
    """New guests per client address: a guest needs no credentials, so without this anyone
    could mint fresh ones, each with a fresh per-user limit."""
    s = request.app.state.settings
    await _check_ip(request, "guest-create", s.rate_limit_guest_create_per_ip_per_hour, 3600)


async def guest_chat_limit(request: Request, principal: CurrentPrincipal) -> None:
    """Chat turns of all guests from one address together (signed-in patients are limited
    per user alone)."""
    if principal.is_guest:
        s = request.app.state.settings
        await _check_ip(request, "guest-chat", s.rate_limit_guest_chat_per_ip_per_minute, 60)
