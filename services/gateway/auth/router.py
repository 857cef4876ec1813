from __future__ import annotations

from fastapi import APIRouter, Depends, Request, Response

from services.gateway.audit.dependencies import Audit
from services.gateway.config import GatewaySettings
from services.gateway.db import Db
from services.gateway.deps import Settings
from services.gateway.errors import ApiError, NotFound
from services.gateway.ratelimit import guest_create_limit
from services.store.tables.auth import User

from . import service
from .cookies import clear_login_cookies, set_login_cookies
from .dependencies import CurrentPrincipal, identify
from .schemas import Credentials, LoginOut, UserOut
from .service import user_out

router = APIRouter(prefix="/api/auth", tags=["auth"])


async def _login(settings: GatewaySettings, response: Response, db: Db, user: User) -> LoginOut:
    token, csrf = await service.start_login(db=db, user_id=user.id, ttl_s=settings.login_ttl_s)
    await db.commit()
    set_login_cookies(response, settings, token, csrf)
    return LoginOut(user=user_out(user), csrf_token=csrf)


@router.post("/guest", status_code=201, dependencies=[Depends(guest_create_limit)])
async def start_guest(settings: Settings, response: Response, db: Db, trail: Audit) -> LoginOut:
    """A patient without an account; their sessions can be claimed by signing up later."""
    user = User(role="patient", is_guest=True)
    db.add(user)
    await db.flush()
    trail("auth.guest", actor_id=user.id, actor_role="patient")
    return await _login(settings, response, db, user)


@router.post("/signup", status_code=201)
async def sign_up(
    body: Credentials,
    request: Request,
    response: Response,
    db: Db,
    trail: Audit,
    settings: Settings,
) -> LoginOut:
    if await service.find_user(db=db, email=body.email, phone=body.phone):
        raise ApiError(
            409,
            "account_exists",
            "an account with this email or phone exists",
            "email" if body.email else "phone",
        )
    guest = await _guest_of(request, settings, db)
    user = guest or User(role="patient")
    if guest is None:
        db.add(user)
    # A guest who signs up keeps their sessions: the same user row becomes the account.
    user.email, user.phone, user.is_guest = body.email, body.phone, False
    user.password_hash = service.hash_password(body.password)
    await db.flush()
    trail(
        "auth.signup",
        actor_id=user.id,
        actor_role=user.role,
        via="cookie",
        details={"claimed_guest": guest is not None},
    )
    return await _login(settings, response, db, user)


async def _guest_of(request: Request, settings: GatewaySettings, db: Db) -> User | None:
    token = request.cookies.get(settings.cookie_name)
    found = await service.login_by_token(db=db, token=token) if token else None
    if found is None or not found[1].is_guest:
        return None
    # A claim is a write: CSRF applies.
    principal = await identify(request, db, keys=None, cookie_name=settings.cookie_name)
    await db.rollback()  # end the read: the user below is loaded fresh
    return await db.get(User, principal.user_id)


@router.post("/login")
async def log_in(
    body: Credentials,
    request: Request,
    response: Response,
    db: Db,
    trail: Audit,
    settings: Settings,
) -> LoginOut:
    user = await service.find_user(db=db, email=body.email, phone=body.phone)
    by = "email" if body.email else "phone"
    if not service.verify_password(user.password_hash if user else None, body.password):
        trail(
            "auth.login_failed",
            subject_id=user.id if user else None,
            details={"by": by, "known_account": user is not None},
        )
        await db.commit()
        raise ApiError(401, "invalid_credentials", "wrong email/phone or password")
    assert user is not None
    trail("auth.login", actor_id=user.id, actor_role=user.role, via="cookie")
    return await _login(settings, response, db, user)


@router.post("/logout", status_code=204)
async def log_out(
    request: Request,
    response: Response,
    db: Db,
    trail: Audit,
    principal: CurrentPrincipal,
    settings: Settings,
) -> None:
    token = request.cookies.get(settings.cookie_name)
    if token:
        await service.end_login(db=db, token=token)
        trail("auth.logout", by=principal)
        await db.commit()
    clear_login_cookies(response, settings)


@router.get("/me")
async def me(principal: CurrentPrincipal, db: Db) -> UserOut:
    user = await db.get(User, principal.user_id)
    if user is None:
        raise NotFound("user")
    return user_out(user)
