"""API keys: made by admins (gateway, CLI) and by the worker (a short-lived key for an
evaluation run against the platform's own API). Only a key's SHA-256 is stored."""

from __future__ import annotations

import hashlib
import secrets
import uuid

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from services.core.db import utcnow
from services.store.tables.auth import ApiKey, User

KEY_PREFIX = "mk-"


def sha256(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


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
