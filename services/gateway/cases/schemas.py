from __future__ import annotations

import uuid
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

from services.gateway.sessions.schemas import Author, MessageOut
from services.gateway.text import StoredText

Reason = Literal["emergency", "patient_request", "unhelpful", "admin"]
State = Literal["open", "claimed", "answered", "closed"]


class Handoff(BaseModel):
    """The patient's view of a hand-off to a person: shown in the chat as soon as a case
    opens, and again whenever its state changes."""

    case_id: uuid.UUID
    state: State
    urgent: bool
    clinician: Author | None = Field(description="who claimed the case, once someone has")
    model_paused: bool = Field(description="the model does not answer until the hand-off ends")
    message_zh: str
    message_en: str


class CaseOut(BaseModel):
    id: uuid.UUID
    session_id: uuid.UUID
    reason: Reason
    category: str | None = Field(description="the emergency category that opened it, if any")
    urgent: bool
    state: State
    opened_at: datetime
    due_at: datetime = Field(description="when the SLA says a clinician should have answered")
    overdue: bool
    claimed_by: Author | None
    claimed_by_me: bool
    claimed_at: datetime | None
    answered_at: datetime | None
    closed_at: datetime | None
    model_paused: bool


class CaseSummary(BaseModel):
    text: str
    model: str
    ai_generated: bool = Field(
        default=True, description="written by a model for the clinician; check it against the chat"
    )


class CaseDetail(CaseOut):
    messages: list[MessageOut]
    summary: CaseSummary | None


class CasePage(BaseModel):
    data: list[CaseOut]
    has_more: bool


class CaseCreate(BaseModel):
    """An admin escalates a session by its id (admins never need to read it to do so)."""

    session_id: uuid.UUID
    urgent: bool = False


class ClaimRequest(BaseModel):
    pause_model: bool = Field(
        True, description="stop the model answering this session while the case is claimed"
    )


class PauseRequest(BaseModel):
    paused: bool


class ReplyCreate(BaseModel):
    content: StoredText = Field(min_length=1, max_length=20_000)


class HandoffRequest(BaseModel):
    lang: str = Field("zh", pattern="^(zh|en)$")
