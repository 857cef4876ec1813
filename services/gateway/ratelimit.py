"""Rate limits as route dependencies: per API key for integrators, per user for browser
logins, per client address for guests. The algorithm and its Redis script: limiter.py."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated, NoReturn

from fastapi import Depends, Request
from starlette.types import Scope

from .auth.dependencies import CurrentPrincipal, Principal, api_key_principal
from .client_ip import client_ip
from .config import GatewaySettings
from .deps import Limiter, Settings, limiter_of, settings_of
from .errors import ApiError
from .limiter import Decision, RateLimiter, headers


def limit_key(principal: Principal) -> tuple[str, str]:
    """The bucket a caller draws from, and its kind: each API key has its own, so one
    integration cannot starve another of the same user; browser logins share the user's."""
    if principal.via == "api_key" and principal.api_key_id is not None:
        return f"key:{principal.api_key_id}", "key"
    return f"user:{principal.user_id}", "user"


LimitFor = Callable[[Principal, GatewaySettings], tuple[int, int]]


def _refuse(decision: Decision, why: str) -> NoReturn:
    raise ApiError(429, "rate_limited", f"too many requests: {why}", headers=headers(decision))


async def _charge(request: Request, principal: Principal, limit_for: LimitFor, scope: str) -> None:
    """Charge one request to the caller's bucket, or refuse it with 429."""
    limit, window_s = limit_for(principal, settings_of(request))
    bucket, _ = limit_key(principal)
    decision = await limiter_of(request).check(f"{scope}:{bucket}", limit, window_s)
    if not decision.allowed:
        retry = max(decision.reset_s, 1)
        _refuse(decision, f"at most {limit} every {window_s} s; retry in {retry} s")
    request.state.ratelimit_headers = headers(decision)


def rate_limited(
    limit_for: LimitFor, *, scope: str = "chat"
) -> Callable[..., Awaitable[Principal]]:
    """A dependency that charges one request to the caller (a key or a login cookie) and
    returns the caller; a route that asks for `CurrentPrincipal` too resolves it once.

    `limit_for` gives (limit, window_s) for a caller. Routes limited under different scopes
    draw from separate buckets: a bucket must always be checked with the same limit.
    """

    async def dependency(request: Request, principal: CurrentPrincipal) -> Principal:
        await _charge(request, principal, limit_for, scope)
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


def chat_limit(principal: Principal, settings: GatewaySettings) -> tuple[int, int]:
    """Answers are what cost: browsers are limited per user, integrators per key."""
    per_minute = (
        settings.rate_limit_key_per_minute
        if principal.via == "api_key"
        else settings.rate_limit_patient_per_minute
    )
    return per_minute, 60


async def key_chat_limited(request: Request) -> Principal:
    """The integrator API's caller: an API key only, each limited on its own. The key is
    checked by a call, not a sub-dependency: nothing else on those routes asks for it, and
    each resolution costs FastAPI ~10 µs per request on the hot path."""
    principal = await api_key_principal(request)
    await _charge(request, principal, chat_limit, "chat")
    return principal


ChatLimited = Annotated[Principal, Depends(rate_limited(chat_limit))]
KeyChatLimited = Annotated[Principal, Depends(key_chat_limited)]


async def _check_ip(
    request: Request, limiter: RateLimiter, scope: str, limit: int, window_s: int
) -> None:
    decision = await limiter.check(f"{scope}:ip:{client_ip(request)}", limit, window_s)
    if not decision.allowed:
        retry = max(decision.reset_s, 1)
        _refuse(decision, f"from your network address; retry in {retry} s, or sign in")


async def guest_create_limit(request: Request, limiter: Limiter, settings: Settings) -> None:
    """New guests per client address: a guest needs no credentials, so without this anyone
    could mint fresh ones, each with a fresh per-user limit."""
    limit = settings.rate_limit_guest_create_per_ip_per_hour
    await _check_ip(request, limiter, "guest-create", limit, 3600)


async def guest_chat_limit(
    request: Request, principal: CurrentPrincipal, limiter: Limiter, settings: Settings
) -> None:
    """Chat turns of all guests from one address together (signed-in patients are limited
    per user alone)."""
    if principal.is_guest:
        limit = settings.rate_limit_guest_chat_per_ip_per_minute
        await _check_ip(request, limiter, "guest-chat", limit, 60)
