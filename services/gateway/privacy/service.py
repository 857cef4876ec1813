"""Export and erasure of one user's data. The caller commits."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from services.gateway.auth.service import user_out
from services.gateway.errors import NotFound
from services.gateway.sessions.router import session_detail
from services.store.tables.auth import User
from services.store.tables.sessions import ChatSession


async def export_data(*, db: AsyncSession, user_id: uuid.UUID) -> dict[str, Any]:
    user = await db.get(User, user_id)
    if user is None:
        raise NotFound("user")
    sessions = await db.scalars(
        select(ChatSession).where(ChatSession.user_id == user.id).order_by(ChatSession.created_at)
    )
    return {
        "user": user_out(user).model_dump(mode="json"),
        "training_consent_at": user.training_consent_at,
        "sessions": [(await session_detail(s, db)).model_dump(mode="json") for s in sessions],
    }


async def delete_account(*, db: AsyncSession, user_id: uuid.UUID) -> list[uuid.UUID]:
    """Deletes the user (sessions, messages, logins, keys and ratings cascade); returns the
    ids of the sessions that went, whose cached context the caller drops."""
    user = await db.get(User, user_id)
    if user is None:
        raise NotFound("user")
    session_ids = list(
        await db.scalars(select(ChatSession.id).where(ChatSession.user_id == user.id))
    )
    await db.delete(user)
    return session_ids
