"""Passwords and login sessions: plain functions, the caller commits. API keys, which the
worker makes too, are in services.store.apikeys."""

from __future__ import annotations

import secrets
import uuid
from datetime import UTC, datetime, timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import delete, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from services.core.db import utcnow
from services.store.apikeys import sha256
from services.store.tables.auth import LoginSession, User

from .schemas import UserOut

_hasher = PasswordHasher()
# Verifying against this keeps the time of a login with an unknown account the same as
# with a wrong password, so response times do not reveal which accounts exist.
_DUMMY_HASH = _hasher.hash(secrets.token_urlsafe(16))


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password_hash: str | None, password: str) -> bool:
    try:
        return _hasher.verify(password_hash or _DUMMY_HASH, password) and password_hash is not None
    except (VerificationError, InvalidHashError):
        return False


async def find_user(*, db: AsyncSession, email: str | None, phone: str | None) -> User | None:
    conditions = [
        c
        for c in (User.email == email if email else None, User.phone == phone if phone else None)
        if c is not None
    ]
    if not conditions:
        return None
    return (await db.execute(select(User).where(or_(*conditions)))).scalar_one_or_none()


async def start_login(*, db: AsyncSession, user_id: uuid.UUID, ttl_s: int) -> tuple[str, str]:
    """A new login session; returns (cookie token, CSRF token)."""
    token, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(24)
    db.add(
        LoginSession(
            token_hash=sha256(token),
            user_id=user_id,
            csrf_token=csrf,
            expires_at=datetime.now(UTC) + timedelta(seconds=ttl_s),
        )
    )
    await db.flush()
    return token, csrf


async def login_by_token(*, db: AsyncSession, token: str) -> tuple[LoginSession, User] | None:
    row = (
        await db.execute(
            select(LoginSession, User)
            .join(User, User.id == LoginSession.user_id)
            .where(LoginSession.token_hash == sha256(token), LoginSession.expires_at > utcnow())
        )
    ).first()
    return (row[0], row[1]) if row else None


async def end_login(*, db: AsyncSession, token: str) -> None:
    await db.execute(delete(LoginSession).where(LoginSession.token_hash == sha256(token)))


def user_out(user: User) -> UserOut:
    return UserOut(
        id=user.id,
        email=user.email,
        phone=user.phone,
        role=user.role,
        is_guest=user.is_guest,
        display_name=user.display_name,
        title=user.title,
    )
