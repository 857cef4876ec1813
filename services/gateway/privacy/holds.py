"""Legal holds as deletions see them: a held session is kept by retention (worker), by the
patient's own delete and by account erasure. The checks lock the rows they read, so a hold
placed at the same moment either is seen or waits and then finds the session gone.

Imported by other domains' delete routes: this module imports no router."""

from __future__ import annotations

import uuid

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from services.gateway.errors import ApiError
from services.store.tables.sessions import ChatSession

# What the patient is told. The admin's reason stays in the audit log: it may name a matter,
# an authority or another person.
SESSION_HELD = (
    "this conversation is kept under a legal hold and cannot be deleted now; "
    "contact the service operator"
)
ACCOUNT_HELD = (
    "some of your conversations are kept under a legal hold, so the account cannot be "
    "deleted now; you can still export your data; contact the service operator"
)


class LegalHold(ApiError):
    def __init__(self, message: str):
        super().__init__(409, "legal_hold", message)


async def hold_reason(*, db: AsyncSession, session_id: uuid.UUID) -> str | None:
    """The session's hold reason (None: not held), its row locked until the caller commits."""
    row = await db.execute(
        select(ChatSession.legal_hold_at, ChatSession.legal_hold_reason)
        .where(ChatSession.id == session_id)
        .with_for_update()
    )
    found = row.first()
    if found is None or found.legal_hold_at is None:
        return None
    return found.legal_hold_reason or ""


async def held_sessions(*, db: AsyncSession, user_id: uuid.UUID) -> list[uuid.UUID]:
    """The user's held sessions; every session of the user locked until the caller commits."""
    rows = await db.execute(
        select(ChatSession.id, ChatSession.legal_hold_at)
        .where(ChatSession.user_id == user_id)
        .order_by(ChatSession.created_at)
        .with_for_update()
    )
    return [r.id for r in rows if r.legal_hold_at is not None]
