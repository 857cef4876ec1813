"""Sessions and messages: plain functions, keyword-only `db`, the caller commits."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import timedelta

from sqlalchemy import case, delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from services.core.db import utcnow
from services.store.tables.sessions import ChatSession, Message

TITLE_CHARS = 40


def title_from(question: str) -> str:
    """A session's title is the start of its first question, on one line."""
    line = " ".join(question.split())
    return line if len(line) <= TITLE_CHARS else line[: TITLE_CHARS - 1] + "…"


async def create_session(
    *, db: AsyncSession, user_id: uuid.UUID, title: str | None = None
) -> ChatSession:
    row = ChatSession(user_id=user_id, title=title or "")
    db.add(row)
    await db.flush()
    return row


async def count_sessions(*, db: AsyncSession, user_id: uuid.UUID) -> int:
    query = select(func.count()).select_from(ChatSession).where(ChatSession.user_id == user_id)
    return int((await db.execute(query)).scalar_one())


async def owned_session(
    *, db: AsyncSession, session_id: uuid.UUID, user_id: uuid.UUID
) -> ChatSession | None:
    """The session if `user_id` owns it; None otherwise (callers answer 404 either way)."""
    query = select(ChatSession).where(ChatSession.id == session_id, ChatSession.user_id == user_id)
    return (await db.execute(query)).scalar_one_or_none()


async def list_sessions(
    *, db: AsyncSession, user_id: uuid.UUID, limit: int, offset: int
) -> tuple[Sequence[ChatSession], bool]:
    rows = (
        (
            await db.execute(
                select(ChatSession)
                .where(ChatSession.user_id == user_id)
                .order_by(ChatSession.updated_at.desc(), ChatSession.id)
                .limit(limit + 1)
                .offset(offset)
            )
        )
        .scalars()
        .all()
    )
    return rows[:limit], len(rows) > limit


async def messages_of(*, db: AsyncSession, session_id: uuid.UUID) -> Sequence[Message]:
    query = select(Message).where(Message.session_id == session_id).order_by(Message.seq)
    return (await db.execute(query)).scalars().all()


async def delete_session(*, db: AsyncSession, session_id: uuid.UUID) -> None:
    await db.execute(delete(ChatSession).where(ChatSession.id == session_id))


async def try_lease(
    *, db: AsyncSession, session_id: uuid.UUID, lease_s: float, title: str | None = None
) -> int | None:
    """Take the session's generation lease in one UPDATE. Returns the session's newest
    message seq (0 when empty), or None while another post holds the lease.

    The lease expires by itself, so a gateway that dies mid-answer cannot lock a session.
    The newest seq comes back in the same statement: it tells whether a cached context is
    current without another query.
    """
    now = utcnow()
    values: dict[str, object] = {"busy_until": now + timedelta(seconds=lease_s), "updated_at": now}
    if title:  # the first question names the session, in the same statement
        values["title"] = case((ChatSession.title == "", title), else_=ChatSession.title)
    newest = (
        select(func.coalesce(func.max(Message.seq), 0))
        .where(Message.session_id == session_id)
        .scalar_subquery()
    )
    result = await db.execute(
        update(ChatSession)
        .where(
            ChatSession.id == session_id,
            (ChatSession.busy_until.is_(None)) | (ChatSession.busy_until < now),
        )
        .values(values)
        .returning(newest)
    )
    row = result.first()
    return None if row is None else int(row[0])
