"""Ratings of answers, training consent, and the redacted dataset built from consented,
rated conversations. The caller commits.

`dataset_rows` and `dataset_file` are shared by every dataset built from conversations (the
reviews domain's too): one place decides the row shape, the redaction and how the file is
stored."""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from itertools import takewhile
from typing import Literal

import anyio.to_thread
from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from services.core.db import utcnow
from services.core.privacy import default_redactor
from services.gateway.errors import ApiError, NotFound
from services.gateway.files import service as files
from services.gateway.files.upload import discard_upload
from services.store.files import FileStore, new_file_id
from services.store.tables.auth import User
from services.store.tables.feedback import Feedback
from services.store.tables.files import StoredFile
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


@dataclass(frozen=True)
class TrainingTurn:
    role: str  # user | assistant | clinician (a person, on the assistant's side)
    content: str
    trained: bool = True  # False: context only (`"weight": 0`), the model does not learn it


def dataset_rows(
    turns: Iterable[TrainingTurn],
    *,
    redact: bool,
    key: Literal["conversation", "messages"] = "conversation",
) -> list[str]:
    """JSONL rows the fine-tune jobs take (DISC-MedLLM `conversation` or OpenAI `messages`)
    from one conversation, redacted unless asked otherwise; none when nothing trains.

    User and assistant strictly alternate: a clinician's message is an assistant turn, and
    consecutive turns of one side are merged. A row starts with a question and ends with a
    trained answer; context-only answers carry `"weight": 0`. A merged answer trains only if
    every part does, so a trained answer followed by context-only text (a clinician's reply
    to it) ends a row of its own first, and later rows hold the two merged as context."""
    groups: list[tuple[str, list[TrainingTurn]]] = []
    for turn in turns:
        side = "user" if turn.role == "user" else "assistant"
        if groups and groups[-1][0] == side:
            groups[-1][1].append(turn)
        elif groups or side == "user":
            groups.append((side, [turn]))
    redactor = default_redactor() if redact else None

    def text(parts: list[TrainingTurn]) -> str:
        content = "\n\n".join(p.content for p in parts)
        return redactor.redact(content) if redactor is not None else content

    rows: list[list[dict[str, object]]] = []
    current: list[dict[str, object]] = []
    for side, parts in groups:
        out: dict[str, object] = {"role": side, "content": text(parts)}
        if side == "assistant" and not all(p.trained for p in parts):
            if lead := list(takewhile(lambda p: p.trained, parts)):
                rows.append([*current, {"role": side, "content": text(lead)}])
            out["weight"] = 0
        current.append(out)
    while current and (current[-1]["role"] != "assistant" or "weight" in current[-1]):
        current.pop()
    if current:
        rows.append(current)
    return [json.dumps({key: row}, ensure_ascii=False) for row in rows]


async def dataset_lines(*, db: AsyncSession, redact: bool) -> list[str]:
    """DISC-MedLLM JSONL rows (`{"conversation": [...]}`) of the rated conversations, each
    ending with an answer; redacted unless asked otherwise. A clinician's replies are
    context only: the model must not learn to speak as the doctor."""
    lines = []
    for _, msgs in await rated_conversations(db=db):
        turns = (
            TrainingTurn(m.role, m.content, trained=m.role != "clinician")
            for m in msgs
            if m.status == "complete"
        )
        lines.extend(dataset_rows(turns, redact=redact))
    return lines


@asynccontextmanager
async def dataset_file(
    *, db: AsyncSession, store: FileStore, owner_id: uuid.UUID, name: str, lines: list[str]
) -> AsyncIterator[StoredFile]:
    """`lines` stored as a fine-tune JSONL file (`<name>-<time>.jsonl`) and its row, flushed.
    The caller audits and commits inside the block: the file is stored before its row is
    committed, and removed again if anything there fails."""
    data = ("\n".join(lines) + "\n").encode()
    file_id = new_file_id()
    pending = store.begin(file_id)
    try:
        await anyio.to_thread.run_sync(pending.write, data)
        stored = await files.add_file(
            db=db,
            file_id=file_id,
            owner_id=owner_id,
            purpose="fine-tune",
            filename=f"{name}-{utcnow():%Y%m%d-%H%M%S}.jsonl",
            size=len(data),
            sha256=hashlib.sha256(data).hexdigest(),
            rows=len(lines),
        )
        await anyio.to_thread.run_sync(pending.complete)
        yield stored
    except BaseException:
        await discard_upload(pending)
        raise
