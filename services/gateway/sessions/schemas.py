from __future__ import annotations

import uuid
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field, model_validator

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


class Author(BaseModel):
    """The clinician who wrote a message or reviewed an answer, as the patient sees them."""

    name: str
    title: str | None


class ReviewLabel(BaseModel):
    verdict: Literal["correct", "corrected"]
    reviewer: Author | None = None
    corrected: str | None = Field(
        None, description="the clinician's corrected answer, shown instead of the model's"
    )


class MessageOut(BaseModel):
    id: int
    seq: int
    role: str = Field(description="user | assistant (the model) | clinician (a person)")
    content: str
    status: str
    finish_reason: str | None
    error: str | None
    prompt_tokens: int | None
    completion_tokens: int | None
    turns_used: int | None
    created_at: datetime
    ai_generated: bool = Field(
        False, description="written by a model, not a person (an answer, not a diagnosis)"
    )
    author: Author | None = Field(None, description="the clinician of a clinician message")
    review: ReviewLabel | None = Field(
        None, description="a clinician reviewed this AI answer (then it says so, not just AI)"
    )

    @model_validator(mode="after")
    def _label(self) -> MessageOut:
        self.ai_generated = self.role == "assistant"
        return self


class SessionDetail(SessionOut):
    messages: list[MessageOut]


class SessionPage(BaseModel):
    data: list[SessionOut]
    has_more: bool
