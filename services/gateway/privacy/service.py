"""Export and erasure of one user's data, and legal holds on sessions. The caller commits."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from services.core.db import utcnow
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


async def _locked_session(db: AsyncSession, session_id: uuid.UUID) -> ChatSession:
    session = await db.get(ChatSession, session_id, with_for_update=True)
    if session is None:
        raise NotFound("session")
    return session


async def place_legal_hold(*, db: AsyncSession, session_id: uuid.UUID, reason: str) -> ChatSession:
    """Holds the session (again: the reason is replaced, the time the hold began is kept)."""
    session = await _locked_session(db, session_id)
    session.legal_hold_reason = reason
    if session.legal_hold_at is None:
        session.legal_hold_at = utcnow()
    return session


async def release_legal_hold(
    *, db: AsyncSession, session_id: uuid.UUID
) -> tuple[ChatSession, str | None]:
    """Releases the hold (a session without one is left as it is); returns the session and
    the reason it was held for (None: it was not)."""
    session = await _locked_session(db, session_id)
    was = session.legal_hold_reason if session.legal_hold_at is not None else None
    session.legal_hold_reason = None
    session.legal_hold_at = None
    return session, was
