"""Sessions and messages: plain functions, keyword-only `db`, the caller commits."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Sequence
from datetime import timedelta

from sqlalchemy import case, delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from services.core.db import utcnow
from services.gateway.config import GatewaySettings
from services.gateway.errors import ApiError
from services.store.tables.auth import User
from services.store.tables.cases import MessageReview
from services.store.tables.sessions import ChatSession, Message

from .schemas import Author, MessageOut, ReviewLabel

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


def author_of(user: User) -> Author:
    return Author(name=user.display_name or "医生 / Clinician", title=user.title)


async def messages_out(*, db: AsyncSession, messages: Sequence[Message]) -> list[MessageOut]:
    """Messages as the API shows them: clinicians' names on their replies, reviews on AI
    answers (two small queries, only when such messages exist)."""
    author_ids = {m.author_id for m in messages if m.author_id is not None}
    answer_ids = [m.id for m in messages if m.role == "assistant"]
    reviews: dict[int, MessageReview] = {}
    if answer_ids:
        query = select(MessageReview).where(MessageReview.message_id.in_(answer_ids))
        reviews = {r.message_id: r for r in (await db.execute(query)).scalars()}
        author_ids |= {r.reviewer_id for r in reviews.values() if r.reviewer_id is not None}
    authors: dict[uuid.UUID, Author] = {}
    if author_ids:
        users = (await db.execute(select(User).where(User.id.in_(author_ids)))).scalars()
        authors = {u.id: author_of(u) for u in users}
    out = []
    for m in messages:
        item = MessageOut.model_validate(m, from_attributes=True)
        if m.author_id is not None:
            item.author = authors.get(m.author_id)
        if (review := reviews.get(m.id)) is not None:
            reviewer = authors.get(review.reviewer_id) if review.reviewer_id else None
            item.review = ReviewLabel(
                verdict=review.verdict,  # type: ignore[arg-type]
                reviewer=reviewer,
                corrected=review.corrected,
            )
        out.append(item)
    return out


async def delete_session(*, db: AsyncSession, session_id: uuid.UUID) -> None:
    await db.execute(delete(ChatSession).where(ChatSession.id == session_id))


async def try_lease(
    *, db: AsyncSession, session_id: uuid.UUID, lease_s: float, title: str | None = None
) -> tuple[int, bool] | None:
    """Take the session's generation lease in one UPDATE. Returns the session's newest
    message seq (0 when empty) and whether a clinician paused the model, or None while
    another post holds the lease.

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
        .returning(newest, ChatSession.model_paused)
    )
    row = result.first()
    return None if row is None else (int(row[0]), bool(row[1]))


async def wait_for_lease(
    *, db: AsyncSession, session_id: uuid.UUID, s: GatewaySettings, title: str | None = None
) -> tuple[int, bool]:
    """Writes to one session (a patient's post, a clinician's reply) run one at a time,
    across gateway replicas. Returns the session's newest message seq and whether the model
    is paused for it."""
    deadline = asyncio.get_running_loop().time() + s.session_lock_wait_s
    while True:
        leased = await try_lease(
            db=db, session_id=session_id, lease_s=s.session_lease_s, title=title
        )
        if leased is not None:
            await db.commit()
            return leased
        await db.rollback()
        if asyncio.get_running_loop().time() > deadline:
            raise ApiError(
                409,
                "session_busy",
                "another message of this session is still being answered",
                headers={"Retry-After": "5"},
            )
        await asyncio.sleep(0.05)
