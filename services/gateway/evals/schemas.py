"""Evaluation runs as the admin API shows them."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

from services.gateway.pagination import Page
from services.store.tables.evals import EvalCase, EvalRun

Endpoint = Field(
    min_length=8,
    max_length=500,
    pattern=r"^https?://\S+/\S+$",
    description="An OpenAI-compatible endpoint and model, URL/MODEL: http://host:8001/v1/gpt-4",
)


class EvalRunCreate(BaseModel):
    model: str = Field(min_length=1, max_length=200, description="The model under test")
    dataset: Literal["cmb-clin", "cmd", "cmid"] = "cmb-clin"
    patient: str = Endpoint
    judge: str = Endpoint
    turns: int = Field(default=3, ge=1, le=10)
    limit: int | None = Field(default=None, ge=1, le=100_000)
    concurrency: int | None = Field(default=None, ge=1, le=64)


class Progress(BaseModel):
    total: int | None
    scored: int
    failed: int


class EvalRunObject(BaseModel):
    id: str
    object: Literal["eval.run"] = "eval.run"
    kind: str
    model: str
    dataset: str
    config: dict[str, Any]
    status: str
    error: dict[str, Any] | None
    progress: Progress
    summary: dict[str, Any] | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None

    @classmethod
    def of(cls, run: EvalRun, counts: dict[str, int]) -> EvalRunObject:
        return cls(
            id=run.id,
            kind=run.kind,
            model=run.model,
            dataset=run.dataset,
            config=run.config,
            status=run.status,
            error=run.error,
            progress=Progress(
                total=run.total, scored=counts.get("scored", 0), failed=counts.get("failed", 0)
            ),
            summary=run.summary,
            created_at=run.created_at,
            started_at=run.started_at,
            finished_at=run.finished_at,
        )


class EvalRunList(Page[EvalRunObject]):
    pass


class EvalCaseObject(BaseModel):
    id: int
    case_id: str
    source: str
    status: str
    conversation: list[dict[str, Any]] | None
    dataset_info: dict[str, Any] | None
    scores: dict[str, Any] | None
    judge_reply: str | None
    error: str | None
    attempts: int
    updated_at: datetime

    @classmethod
    def of(cls, c: EvalCase) -> EvalCaseObject:
        return cls(
            id=c.id,
            case_id=c.case_id,
            source=c.source,
            status=c.status,
            conversation=c.conversation,
            dataset_info=c.dataset_info,
            scores=c.scores,
            judge_reply=c.judge_reply,
            error=c.error,
            attempts=c.attempts,
            updated_at=c.updated_at,
        )


class EvalCaseList(Page[EvalCaseObject]):
    pass
