from __future__ import annotations

import uuid
from typing import Annotated

import orjson
from fastapi import APIRouter, Depends, Query, Request, Response
from sqlalchemy import select

from services.gateway.audit import service as audit
from services.gateway.config import GatewaySettings
from services.gateway.db import Db
from services.gateway.errors import ApiError, Json, NotFound
from services.gateway.ratelimit import guest_create_limit
from services.gateway.sessions.router import session_detail
from services.store import apikeys
from services.store.tables.auth import ApiKey, User
from services.store.tables.sessions import ChatSession

from . import revocations, service
from .dependencies import AdminPrincipal, CurrentPrincipal, current_principal
from .schemas import (
    ApiKeyCreate,
    ApiKeyCreated,
    ApiKeyOut,
    Credentials,
    LoginOut,
    RoleChange,
    UserOut,
)

router = APIRouter(prefix="/api/auth", tags=["auth"])
admin_router = APIRouter(prefix="/api/admin", tags=["admin"])
CSRF_COOKIE = "medchat_csrf"


def _set_login_cookies(
    response: Response, settings: GatewaySettings, token: str, csrf: str
) -> None:
    common = {
        "max_age": settings.login_ttl_s,
        "secure": settings.is_production,
        "samesite": "lax",
        "path": "/",
    }
    response.set_cookie(settings.cookie_name, token, httponly=True, **common)  # type: ignore[arg-type]
    # Readable by our pages (double-submit): they echo it in the X-CSRF-Token header.
    response.set_cookie(CSRF_COOKIE, csrf, httponly=False, **common)  # type: ignore[arg-type]


def _user_out(user: User) -> UserOut:
    return UserOut(
        id=user.id, email=user.email, phone=user.phone, role=user.role, is_guest=user.is_guest
    )


async def _login(request: Request, response: Response, db: Db, user: User) -> LoginOut:
    settings: GatewaySettings = request.app.state.settings
    token, csrf = await service.start_login(db=db, user_id=user.id, ttl_s=settings.login_ttl_s)
    await db.commit()
    _set_login_cookies(response, settings, token, csrf)
    return LoginOut(user=_user_out(user), csrf_token=csrf)


@router.post("/guest", status_code=201, dependencies=[Depends(guest_create_limit)])
async def start_guest(request: Request, response: Response, db: Db) -> LoginOut:
    """A patient without an account; their sessions can be claimed by signing up later."""
    user = User(role="patient", is_guest=True)
    db.add(user)
    await db.flush()
    audit.record(db, "auth.guest", request=request, actor_id=user.id, actor_role="patient")
    return await _login(request, response, db, user)


@router.post("/signup", status_code=201)
async def sign_up(body: Credentials, request: Request, response: Response, db: Db) -> LoginOut:
    if await service.find_user(db=db, email=body.email, phone=body.phone):
        raise ApiError(
            409,
            "account_exists",
            "an account with this email or phone exists",
            "email" if body.email else "phone",
        )
    guest = await _guest_of(request, db)
    user = guest or User(role="patient")
    if guest is None:
        db.add(user)
    # A guest who signs up keeps their sessions: the same user row becomes the account.
    user.email, user.phone, user.is_guest = body.email, body.phone, False
    user.password_hash = service.hash_password(body.password)
    await db.flush()
    audit.record(
        db,
        "auth.signup",
        request=request,
        actor_id=user.id,
        actor_role=user.role,
        via="cookie",
        details={"claimed_guest": guest is not None},
    )
    return await _login(request, response, db, user)


async def _guest_of(request: Request, db: Db) -> User | None:
    token = request.cookies.get(request.app.state.settings.cookie_name)
    found = await service.login_by_token(db=db, token=token) if token else None
    if found is None or not found[1].is_guest:
        return None
    principal = await current_principal(request, db)  # a claim is a write: CSRF applies
    return await db.get(User, principal.user_id)  # fresh: the check ended the transaction


@router.post("/login")
async def log_in(body: Credentials, request: Request, response: Response, db: Db) -> LoginOut:
    user = await service.find_user(db=db, email=body.email, phone=body.phone)
    by = "email" if body.email else "phone"
    if not service.verify_password(user.password_hash if user else None, body.password):
        audit.record(
            db,
            "auth.login_failed",
            request=request,
            subject_id=user.id if user else None,
            details={"by": by, "known_account": user is not None},
        )
        await db.commit()
        raise ApiError(401, "invalid_credentials", "wrong email/phone or password")
    assert user is not None
    audit.record(
        db, "auth.login", request=request, actor_id=user.id, actor_role=user.role, via="cookie"
    )
    return await _login(request, response, db, user)


@router.post("/logout", status_code=204)
async def log_out(
    request: Request, response: Response, db: Db, principal: CurrentPrincipal
) -> None:
    settings: GatewaySettings = request.app.state.settings
    token = request.cookies.get(settings.cookie_name)
    if token:
        await service.end_login(db=db, token=token)
        audit.record(db, "auth.logout", request=request, **audit.actor(principal))
        await db.commit()
    response.delete_cookie(settings.cookie_name, path="/")
    response.delete_cookie(CSRF_COOKIE, path="/")


@router.get("/me")
async def me(principal: CurrentPrincipal, db: Db) -> UserOut:
    user = await db.get(User, principal.user_id)
    if user is None:
        raise NotFound("user")
    return _user_out(user)


@router.get("/me/export")
async def export_my_data(principal: CurrentPrincipal, request: Request, db: Db) -> Json:
    """Everything stored about the caller: the account and every session with its messages."""
    user = await db.get(User, principal.user_id)
    if user is None:
        raise NotFound("user")
    sessions = await db.scalars(
        select(ChatSession).where(ChatSession.user_id == user.id).order_by(ChatSession.created_at)
    )
    body = {
        "user": _user_out(user).model_dump(mode="json"),
        "training_consent_at": user.training_consent_at,
        "sessions": [(await session_detail(s, db)).model_dump(mode="json") for s in sessions],
    }
    audit.record(
        db, "privacy.export", request=request, subject_id=user.id, **audit.actor(principal)
    )
    await db.commit()
    return Json(
        orjson.loads(orjson.dumps(body, default=str)),
        headers={"Content-Disposition": 'attachment; filename="medchat-my-data.json"'},
    )


@router.delete("/me", status_code=204)
async def delete_my_account(
    principal: CurrentPrincipal, request: Request, response: Response, db: Db
) -> None:
    """Delete the caller's account and every conversation, in Postgres and Redis (rows go,
    not a flag); the audit log keeps that it happened, never what was said."""
    user = await db.get(User, principal.user_id)
    if user is None:
        raise NotFound("user")
    session_ids = list(
        await db.scalars(select(ChatSession.id).where(ChatSession.user_id == user.id))
    )
    await db.delete(user)  # sessions, messages, logins, keys and ratings cascade
    audit.record(
        db,
        "privacy.account_deleted",
        request=request,
        subject_id=principal.user_id,
        details={"sessions": len(session_ids)},
        **audit.actor(principal),
    )
    await db.commit()
    for sid in session_ids:
        await request.app.state.context.drop(sid)
    settings: GatewaySettings = request.app.state.settings
    response.delete_cookie(settings.cookie_name, path="/")
    response.delete_cookie(CSRF_COOKIE, path="/")


@admin_router.get("/users")
async def list_users(
    _: AdminPrincipal,
    db: Db,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    offset: Annotated[int, Query(ge=0, le=2**31 - 1)] = 0,  # a bigint overflow was a 500
    include_guests: bool = False,
) -> list[UserOut]:
    query = select(User).order_by(User.created_at.desc()).limit(limit).offset(offset)
    if not include_guests:
        query = query.where(User.is_guest.is_(False))
    return [_user_out(u) for u in (await db.execute(query)).scalars()]


@admin_router.patch("/users/{user_id}")
async def change_role(
    user_id: uuid.UUID, body: RoleChange, principal: AdminPrincipal, request: Request, db: Db
) -> UserOut:
    if user_id == principal.user_id:
        raise ApiError(409, "own_role", "admins cannot change their own role", "role")
    user = await db.get(User, user_id)
    if user is None:
        raise NotFound("user")
    before, user.role = user.role, body.role
    audit.record(
        db,
        "admin.user_role",
        request=request,
        target_type="user",
        target_id=user.id,
        details={"from": before, "to": body.role},
        **audit.actor(principal),
    )
    await db.commit()
    return _user_out(user)


@admin_router.get("/keys")
async def list_keys(_: AdminPrincipal, db: Db) -> list[ApiKeyOut]:
    rows = (await db.execute(select(ApiKey).order_by(ApiKey.created_at.desc()))).scalars()
    return [ApiKeyOut.model_validate(r, from_attributes=True) for r in rows]


@admin_router.post("/keys", status_code=201)
async def create_key(
    body: ApiKeyCreate, principal: AdminPrincipal, request: Request, db: Db
) -> ApiKeyCreated:
    row, key = await apikeys.create_api_key(db=db, name=body.name, role=body.role)
    audit.record(
        db,
        "admin.key_create",
        request=request,
        target_type="api_key",
        target_id=row.id,
        details={"role": body.role, "name": body.name},
        **audit.actor(principal),
    )
    await db.commit()
    return ApiKeyCreated(
        **ApiKeyOut.model_validate(row, from_attributes=True).model_dump(), key=key
    )


@admin_router.delete("/keys/{key_id}", status_code=204)
async def revoke_key(
    key_id: uuid.UUID, principal: AdminPrincipal, request: Request, db: Db
) -> None:
    if not await apikeys.revoke_api_key(db=db, key_id=key_id):
        raise NotFound("active API key")
    audit.record(
        db,
        "admin.key_revoke",
        request=request,
        target_type="api_key",
        target_id=key_id,
        **audit.actor(principal),
    )
    await db.commit()
    request.app.state.key_cache.forget(key_id)
    await revocations.announce(request.app.state.redis, key_id)


__all__ = ["admin_router", "router"]
