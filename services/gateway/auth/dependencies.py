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
import uuid
from dataclasses import dataclass
from typing import Annotated, Literal

from fastapi import Depends, Request

from services.gateway.db import Db
from services.gateway.errors import ApiError

from services.store import apikeys

from . import service
from .key_cache import KeyCache

SAFE_METHODS = {"GET", "HEAD", "OPTIONS"}
CSRF_HEADER = "X-CSRF-Token"


@dataclass(frozen=True)
class Principal:
    user_id: uuid.UUID
    role: str
    via: Literal["api_key", "cookie"]
    api_key_id: uuid.UUID | None = None
    is_guest: bool = False

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"


def _unauthorized(message: str) -> ApiError:
    return ApiError(401, "unauthorized", message, headers={"WWW-Authenticate": "Bearer"})


async def current_principal(request: Request, db: Db) -> Principal:
    try:
        return await _identify(request, db)
    finally:
        # End the read transaction now: FastAPI closes this request's session only after
        # the response, and a streamed answer would hold the connection (idle in
        # transaction) for its whole length. Nothing loaded here outlives this function.
        await db.rollback()


async def _identify(request: Request, db: Db) -> Principal:
    auth = request.headers.get("authorization", "")
    if auth:
        scheme, _, token = auth.partition(" ")
        if scheme.lower() != "bearer" or not token.startswith(apikeys.KEY_PREFIX):
            raise _unauthorized("use 'Authorization: Bearer mk-…' with an API key")
        cache: KeyCache = request.app.state.key_cache
        key_hash = apikeys.sha256(token.strip())
        if (cached := cache.get(key_hash)) is not None:
            return cached

        async def lookup() -> Principal | None:
            key = await apikeys.key_by_token(db=db, token=token.strip())
            return None if key is None else Principal(key.user_id, key.role, "api_key", key.id)

        principal = await cache.lookup_once(key_hash, lookup)
        if principal is None:
            raise _unauthorized("this API key is unknown or revoked")
        return principal
    cookie = request.cookies.get(request.app.state.settings.cookie_name)
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


async def api_key_principal(
    principal: Annotated[Principal, Depends(current_principal)],
) -> Principal:
    if principal.via != "api_key":
        raise _unauthorized(
            "this API takes an API key, not a browser login: send 'Authorization: Bearer mk-…'"
            " (admins create keys in the console or with `medchat apikey create`)"
        )
    return principal


CurrentPrincipal = Annotated[Principal, Depends(current_principal)]
AdminPrincipal = Annotated[Principal, Depends(admin_principal)]
ApiKeyPrincipal = Annotated[Principal, Depends(api_key_principal)]
