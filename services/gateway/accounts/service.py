"""Users and API keys as admins list and change them. The caller commits."""

from __future__ import annotations

import uuid

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from services.gateway.errors import NotFound
from services.store.tables.auth import ApiKey, User


async def list_users(
    *, db: AsyncSession, limit: int, offset: int, include_guests: bool
) -> list[User]:
    query = select(User).order_by(User.created_at.desc()).limit(limit).offset(offset)
    if not include_guests:
        query = query.where(User.is_guest.is_(False))
    return list((await db.scalars(query)).all())


async def change_role(*, db: AsyncSession, user_id: uuid.UUID, role: str) -> tuple[User, str]:
    """The user with the new role, and the role before."""
    user = await db.get(User, user_id)
    if user is None:
        raise NotFound("user")
    before, user.role = user.role, role
    return user, before


async def list_keys(*, db: AsyncSession) -> list[ApiKey]:
    return list((await db.scalars(select(ApiKey).order_by(ApiKey.created_at.desc()))).all())
