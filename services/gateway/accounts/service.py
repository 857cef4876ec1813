"""Users and API keys as admins list and change them. The caller commits."""

from __future__ import annotations

import uuid

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from services.gateway.auth.schemas import ClinicianCreate
from services.gateway.auth.service import find_user, hash_password
from services.gateway.errors import ApiError, NotFound
from services.store.tables.auth import ApiKey, User


async def list_users(
    *, db: AsyncSession, limit: int, offset: int, include_guests: bool
) -> list[User]:
    query = select(User).order_by(User.created_at.desc()).limit(limit).offset(offset)
    if not include_guests:
        query = query.where(User.is_guest.is_(False))
    return list((await db.scalars(query)).all())


async def change_role(
    *,
    db: AsyncSession,
    user_id: uuid.UUID,
    role: str,
    display_name: str | None = None,
    title: str | None = None,
) -> tuple[User, str]:
    """The user with the new role (and, for clinicians, the name they sign with), and the
    role before."""
    user = await db.get(User, user_id)
    if user is None:
        raise NotFound("user")
    before, user.role = user.role, role
    user.display_name = display_name or user.display_name
    user.title = title or user.title
    return user, before


async def create_clinician(*, db: AsyncSession, body: ClinicianCreate) -> User:
    if await find_user(db=db, email=body.email, phone=body.phone) is not None:
        raise ApiError(409, "account_exists", "an account with this email or phone exists")
    user = User(
        email=body.email,
        phone=body.phone,
        password_hash=hash_password(body.password),
        role="clinician",
        display_name=body.display_name,
        title=body.title,
    )
    db.add(user)
    await db.flush()
    return user


async def list_keys(*, db: AsyncSession) -> list[ApiKey]:
    return list((await db.scalars(select(ApiKey).order_by(ApiKey.created_at.desc()))).all())
