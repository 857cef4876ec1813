"""Ratings of answers, training consent, and the redacted dataset built from consented,
rated conversations. The caller commits."""

from __future__ import annotations

import json
import uuid

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from services.core.db import utcnow
from services.core.privacy import default_redactor
from services.gateway.errors import ApiError, NotFound
from services.store.tables.auth import User
from services.store.tables.feedback import Feedback
from services.store.tables.sessions import ChatSession, Message


async def rate_answer(
    *,
    db: AsyncSession,
    session_id: uuid.UUID,
    message_id: int,
    user_id: uuid.UUID,
    helpful: bool,
    comment: str | None,
) -> None:
    """One rating per answer: rating again replaces it."""
    message = await db.get(Message, message_id)
    if message is None or message.session_id != session_id:
        raise NotFound("message")
    if message.role != "assistant":
        raise ApiError(400, "not_an_answer", "only answers can be rated", "message_id")
    stmt = insert(Feedback).values(
        message_id=message_id,
        user_id=user_id,
        helpful=helpful,
        comment=comment,
        created_at=utcnow(),
    )
    await db.execute(
        stmt.on_conflict_do_update(
            index_elements=[Feedback.message_id],
            set_={k: stmt.excluded[k] for k in ("helpful", "comment", "created_at")},
        )
    )


async def set_consent(*, db: AsyncSession, user_id: uuid.UUID, consent: bool) -> None:
    user = await db.get(User, user_id)
    if user is None:
        raise NotFound("user")
    user.training_consent_at = utcnow() if consent else None


async def rated_conversations(*, db: AsyncSession) -> list[tuple[uuid.UUID, list[Message]]]:
    """Conversations of consenting patients up to their last answer rated helpful, with no
    answer rated unhelpful kept."""
    result = await db.execute(
        select(Message.session_id, Message.seq, Feedback.helpful)
        .join(Feedback, Feedback.message_id == Message.id)
        .join(ChatSession, ChatSession.id == Message.session_id)
        .join(User, User.id == ChatSession.user_id)
        .where(User.training_consent_at.is_not(None))
    )
    rated = result.all()  # read twice below
    cut: dict[uuid.UUID, int] = {}
    for session_id, seq, helpful in rated:
        if helpful:
            cut[session_id] = max(cut.get(session_id, -1), seq)
    unhelpful = {(sid, seq) for sid, seq, helpful in rated if not helpful}
    out = []
    for session_id, last in cut.items():
        msgs = (
            await db.scalars(
                select(Message)
                .where(Message.session_id == session_id, Message.seq <= last)
                .order_by(Message.seq)
            )
        ).all()
        # Stop before the first answer rated unhelpful (and its question).
        kept: list[Message] = []
        for m in msgs:
            if (session_id, m.seq) in unhelpful:
                if kept and kept[-1].role == "user":
                    kept.pop()
                break
            kept.append(m)
        if any(m.role == "assistant" for m in kept):
            out.append((session_id, kept))
    return out


async def dataset_lines(*, db: AsyncSession, redact: bool) -> list[str]:
    """DISC-MedLLM JSONL rows (`{"conversation": [...]}`) of the rated conversations, each
    ending with an answer; redacted unless asked otherwise."""
    redactor = default_redactor()
    lines = []
    for _, msgs in await rated_conversations(db=db):
        turns = [
            {"role": m.role, "content": redactor.redact(m.content) if redact else m.content}
            for m in msgs
            if m.status == "complete"
        ]
        while turns and turns[-1]["role"] != "assistant":
            turns.pop()
        if turns:
            lines.append(json.dumps({"conversation": turns}, ensure_ascii=False))
    return lines
