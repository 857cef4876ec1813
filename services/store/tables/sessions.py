"""Chat sessions and their messages: Postgres is the source of truth."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import BigInteger, DateTime, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from services.core.db import Base, utcnow


class ChatSession(Base):
    __tablename__ = "chat_sessions"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    title: Mapped[str] = mapped_column(String(200), default="")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    # Serializes posts to one session across gateway replicas without holding a database
    # connection for the length of a generation: a lease taken with one UPDATE.
    busy_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # A clinician who claimed this session's case paused the model: questions are stored
    # and wait for the clinician. Read by the lease statement, so it costs no query.
    model_paused: Mapped[bool] = mapped_column(default=False, server_default="false")
    # A legal hold: retention and account deletion leave the session (and say why).
    legal_hold_reason: Mapped[str | None] = mapped_column(String(500))
    legal_hold_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    __table_args__ = (Index("ix_chat_sessions_user_updated", "user_id", "updated_at"),)


class Message(Base):
    __tablename__ = "messages"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    session_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("chat_sessions.id", ondelete="CASCADE")
    )
    seq: Mapped[int] = mapped_column(Integer)
    role: Mapped[str] = mapped_column(String(16))  # user | assistant | clinician
    content: Mapped[str] = mapped_column(Text)
    # complete | stopped (partial answer kept) | failed (error says why)
    status: Mapped[str] = mapped_column(String(16), default="complete")
    # The engine's reason to end an answer: "stop" (it was done) or "length" (cut at
    # max_new_tokens, so the UI can say the answer is incomplete).
    finish_reason: Mapped[str | None] = mapped_column(String(16))
    error: Mapped[str | None] = mapped_column(Text)
    prompt_tokens: Mapped[int | None] = mapped_column(Integer)
    completion_tokens: Mapped[int | None] = mapped_column(Integer)
    turns_used: Mapped[int | None] = mapped_column(Integer)
    model: Mapped[str | None] = mapped_column(String(300))  # which model wrote an answer
    # The clinician who wrote a "clinician" message (kept as None once the account is gone).
    author_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    __table_args__ = (Index("ix_messages_session_seq", "session_id", "seq", unique=True),)
