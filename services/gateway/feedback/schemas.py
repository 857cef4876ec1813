"""Ratings, consent and the feedback dataset request."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field


class FeedbackIn(BaseModel):
    helpful: bool
    comment: str | None = Field(default=None, max_length=2000)


class ConsentIn(BaseModel):
    consent: bool


class DatasetRequest(BaseModel):
    redact: bool = True
    format: Literal["disc-medllm"] = "disc-medllm"
