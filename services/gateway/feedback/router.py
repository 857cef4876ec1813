"""Patients rate answers and consent to their rated conversations becoming training data;
admins turn consented, rated conversations into a redacted dataset file."""

from __future__ import annotations

import hashlib
import json
import uuid
from typing import Literal

import anyio.to_thread
from fastapi import APIRouter, Request
from pydantic import BaseModel, Field
from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert

from services.core.db import utcnow
from services.core.privacy import default_redactor
from services.gateway.audit.dependencies import Audit
from services.gateway.auth.dependencies import AdminPrincipal, CurrentPrincipal
from services.gateway.db import Db
from services.gateway.errors import ApiError, NotFound
from services.gateway.files import service as files
from services.gateway.files.schemas import FileObject
from services.gateway.files.upload import discard_upload
from services.gateway.sessions.dependencies import OwnedSession
from services.store.files.storage import FileStore, new_file_id
from services.store.tables.auth import User
from services.store.tables.feedback import Feedback
from services.store.tables.sessions import ChatSession, Message

router = APIRouter(tags=["feedback"])


class FeedbackIn(BaseModel):
    helpful: bool
    comment: str | None = Field(default=None, max_length=2000)


class ConsentIn(BaseModel):
    consent: bool


class DatasetRequest(BaseModel):
    redact: bool = True
    format: Literal["disc-medllm"] = "disc-medllm"


@router.post("/api/sessions/{session_id}/messages/{message_id}/feedback", status_code=204)
async def rate_answer(
    message_id: int, body: FeedbackIn, session: OwnedSession, principal: CurrentPrincipal, db: Db
) -> None:
    message = await db.get(Message, message_id)
    if message is None or message.session_id != session.id:
        raise NotFound("message")
    if message.role != "assistant":
        raise ApiError(400, "not_an_answer", "only answers can be rated", "message_id")
    values = {
        "message_id": message_id,
        "user_id": principal.user_id,
        "helpful": body.helpful,
        "comment": body.comment,
        "created_at": utcnow(),
    }
    stmt = insert(Feedback).values(**values)
    await db.execute(
        stmt.on_conflict_do_update(
            index_elements=[Feedback.message_id],
            set_={k: stmt.excluded[k] for k in ("helpful", "comment", "created_at")},
        )
    )
    await db.commit()


@router.put("/api/auth/me/consent", status_code=204)
async def set_consent(body: ConsentIn, principal: CurrentPrincipal, trail: Audit, db: Db) -> None:
    """Consent (or its withdrawal) to rated conversations being used, redacted, for training."""
    user = await db.get(User, principal.user_id)
    if user is None:
        raise NotFound("user")
    user.training_consent_at = utcnow() if body.consent else None
    trail(
        "privacy.consent" if body.consent else "privacy.consent_withdrawn",
        subject_id=user.id,
        by=principal,
    )
    await db.commit()


async def _rated_conversations(db: Db) -> list[tuple[uuid.UUID, list[Message]]]:
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


@router.post("/api/admin/datasets/from-feedback", response_model=FileObject, status_code=201)
async def dataset_from_feedback(
    body: DatasetRequest, principal: AdminPrincipal, request: Request, db: Db, trail: Audit
) -> FileObject:
    """A JSONL file (DISC-MedLLM rows) of rated conversations from consenting patients,
    redacted by default, stored as a fine-tune file the jobs API accepts."""
    conversations = await _rated_conversations(db)
    if not conversations:
        raise ApiError(
            404, "no_rated_conversations", "no consented conversation has a helpful rating yet"
        )
    redactor = default_redactor()
    lines = []
    for _, msgs in conversations:
        turns = [
            {"role": m.role, "content": redactor.redact(m.content) if body.redact else m.content}
            for m in msgs
            if m.status == "complete"
        ]
        while turns and turns[-1]["role"] != "assistant":
            turns.pop()
        if turns:
            lines.append(json.dumps({"conversation": turns}, ensure_ascii=False))
    data = ("\n".join(lines) + "\n").encode()
    store: FileStore = request.app.state.files
    file_id = new_file_id()
    pending = store.begin(file_id)
    try:
        await anyio.to_thread.run_sync(pending.write, data)
        stored = await files.add_file(
            db=db,
            file_id=file_id,
            owner_id=principal.user_id,
            purpose="fine-tune",
            filename=f"feedback-{utcnow():%Y%m%d-%H%M%S}.jsonl",
            size=len(data),
            sha256=hashlib.sha256(data).hexdigest(),
            rows=len(lines),
        )
        trail(
            "dataset.from_feedback",
            target_type="file",
            target_id=file_id,
            details={"conversations": len(lines), "redacted": body.redact},
            by=principal,
        )
        await anyio.to_thread.run_sync(pending.complete)
        await db.commit()
    except BaseException:
        await discard_upload(pending)
        raise
    return FileObject.of(stored)
