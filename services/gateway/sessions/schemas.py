from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import BaseModel, Field

from services.gateway.text import StoredText


class SessionCreate(BaseModel):
    title: StoredText | None = Field(None, max_length=200)


class SessionRename(BaseModel):
    title: StoredText = Field(min_length=1, max_length=200)


class SessionOut(BaseModel):
    id: uuid.UUID
    title: str
    created_at: datetime
    updated_at: datetime


class MessageOut(BaseModel):
    id: int
    seq: int
    role: str
    content: str
    status: str
    finish_reason: str | None
    error: str | None
    prompt_tokens: int | None
    completion_tokens: int | None
    turns_used: int | None
    created_at: datetime


class SessionDetail(SessionOut):
    messages: list[MessageOut]


class SessionPage(BaseModel):
    data: list[SessionOut]
    has_more: bool
