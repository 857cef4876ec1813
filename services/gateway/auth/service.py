"""Passwords, API keys and login sessions: plain functions, the caller commits."""

from __future__ import annotations

import hashlib
import secrets
import uuid
from datetime import UTC, datetime, timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import delete, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from services.core.db import utcnow

from .models import ApiKey, LoginSession, User

KEY_PREFIX = "mk-"
_hasher = PasswordHasher()
# Verifying against this keeps the time of a login with an unknown account the same as
# with a wrong password, so response times do not reveal which accounts exist.
_DUMMY_HASH = _hasher.hash(secrets.token_urlsafe(16))


def sha256(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


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


async def create_api_key(
    *, db: AsyncSession, name: str, role: str, user_id: uuid.UUID | None = None
) -> tuple[ApiKey, str]:
    """Create a key (and, without `user_id`, a service user that owns what the key creates).
    Returns the row and the key itself, which is shown once and never stored."""
    if user_id is None:
        user = User(role=role)
        db.add(user)
        await db.flush()
        user_id = user.id
    key = KEY_PREFIX + secrets.token_urlsafe(32)
    row = ApiKey(user_id=user_id, name=name, role=role, prefix=key[:10], key_hash=sha256(key))
    db.add(row)
    await db.flush()
    return row, key


async def key_by_token(*, db: AsyncSession, token: str) -> ApiKey | None:
    row = (
        await db.execute(select(ApiKey).where(ApiKey.key_hash == sha256(token)))
    ).scalar_one_or_none()
    return row if row is not None and row.revoked_at is None else None


async def revoke_api_key(*, db: AsyncSession, key_id: uuid.UUID) -> bool:
    result = await db.execute(
        update(ApiKey)
        .where(ApiKey.id == key_id, ApiKey.revoked_at.is_(None))
        .values(revoked_at=utcnow())
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


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
