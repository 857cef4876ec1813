"""Who is calling: an API key (Authorization: Bearer mk-…) or a browser login cookie.

Which credentials a route takes is said once, by the dependency it declares:
- `CurrentPrincipal`: a key or a login cookie (the web UI's and the console's routes);
- `ApiKeyPrincipal`: a key only — the integrator API (`POST /v1/chat/completions`), which
  must not become a free API for anyone holding a guest cookie;
- `AdminPrincipal`: an admin, by key or by cookie.
tests/gateway/test_access_matrix.py checks every route against a table of expected answers.
"""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession

from services.gateway.deps import keys_of, sessions_of, settings_of
from services.gateway.errors import ApiError
from services.store import apikeys

from . import service
from .key_cache import KeyCache
from .principal import Principal

__all__ = [
    "AdminPrincipal",
    "ApiKeyPrincipal",
    "CurrentPrincipal",
    "Principal",
    "admin_principal",
    "api_key_principal",
    "current_principal",
    "identify",
]

SAFE_METHODS = {"GET", "HEAD", "OPTIONS"}
CSRF_HEADER = "X-CSRF-Token"


def _unauthorized(message: str) -> ApiError:
    return ApiError(401, "unauthorized", message, headers={"WWW-Authenticate": "Bearer"})


async def current_principal(request: Request) -> Principal:
    # A remembered API key (the integrator hot path) needs no database session at all.
    keys = keys_of(request)
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and (principal := keys.get(apikeys.sha256(token.strip()))):
        return principal
    # A session of its own, closed before the route runs: a streamed answer must not hold a
    # connection (idle in transaction) for its whole length. Nothing loaded here outlives it.
    async with sessions_of(request)() as db:
        cookie_name = settings_of(request).cookie_name
        return await identify(request, db, keys=keys, cookie_name=cookie_name)


async def identify(
    request: Request, db: AsyncSession, *, keys: KeyCache | None, cookie_name: str
) -> Principal:
    """The caller of `request` (without `keys`: API keys are looked up every time)."""
    auth = request.headers.get("authorization", "")
    if auth:
        scheme, _, token = auth.partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token.startswith(apikeys.KEY_PREFIX):
            raise _unauthorized("use 'Authorization: Bearer mk-…' with an API key")

        async def lookup() -> Principal | None:
            key = await apikeys.key_by_token(db=db, token=token)
            return None if key is None else Principal(key.user_id, key.role, "api_key", key.id)

        if keys is None:
            principal = await lookup()
        else:
            key_hash = apikeys.sha256(token)
            principal = keys.get(key_hash) or await keys.lookup_once(key_hash, lookup)
        if principal is None:
            raise _unauthorized("this API key is unknown or revoked")
        return principal
    cookie = request.cookies.get(cookie_name)
    found = await service.login_by_token(db=db, token=cookie) if cookie else None
    if found is None:
        raise _unauthorized("sign in, start a guest session, or send an API key")
    login, user = found
    # Cookies ride along on cross-site requests; writes must echo the CSRF token that only
    # our own pages can read.
    if request.method not in SAFE_METHODS and not hmac.compare_digest(
        request.headers.get(CSRF_HEADER, ""), login.csrf_token
    ):
        raise ApiError(403, "csrf_failed", f"missing or wrong {CSRF_HEADER} header")
    return Principal(user.id, user.role, "cookie", is_guest=user.is_guest)


async def admin_principal(principal: Annotated[Principal, Depends(current_principal)]) -> Principal:
    if not principal.is_admin:
        raise ApiError(403, "forbidden", "admins only")
    return principal


async def api_key_principal(request: Request) -> Principal:
    # current_principal called, not declared: one dependency resolution fewer per request
    # on the integrator API (nothing else on those routes asks for the principal).
    principal = await current_principal(request)
    if principal.via != "api_key":
        raise _unauthorized(
            "this API takes an API key, not a browser login: send 'Authorization: Bearer mk-…'"
            " (admins create keys in the console or with `medchat apikey create`)"
        )
    return principal


CurrentPrincipal = Annotated[Principal, Depends(current_principal)]
AdminPrincipal = Annotated[Principal, Depends(admin_principal)]
ApiKeyPrincipal = Annotated[Principal, Depends(api_key_principal)]
