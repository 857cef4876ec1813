"""A clinician's review of an AI answer, the per-model figures, the dataset request."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Literal, get_args

from pydantic import BaseModel, Field, model_validator

from services.gateway.sessions.schemas import Author
from services.gateway.text import StoredText

Verdict = Literal["correct", "corrected"]
# Why an answer needed correcting: a fixed list, so the figures per model add up.
CorrectionReason = Literal[
    "factually_wrong",  # wrong medicine, wrong mechanism, wrong numbers
    "unsafe",  # advice that could harm
    "missed_red_flag",  # should have sent the patient to a doctor or to emergency care
    "prescribes",  # names a prescription-only medicine with a dose: a doctor's decision
    "incomplete",  # right as far as it goes, leaves out what matters
    "unclear",  # the patient would not understand it
    "other",
]
CORRECTION_REASONS: tuple[str, ...] = get_args(CorrectionReason)


class ReviewIn(BaseModel):
    message_id: int = Field(ge=1, le=2**63 - 1, description="an AI answer of the case's session")
    verdict: Verdict
    corrected: StoredText | None = Field(
        None,
        min_length=1,
        max_length=20_000,
        description="the answer the clinician would have given; required iff `corrected`",
    )
    reason: CorrectionReason | None = Field(
        None, description="why the answer needed correcting (only with `corrected`)"
    )

    @model_validator(mode="after")
    def _matches_verdict(self) -> ReviewIn:
        if self.verdict == "corrected":
            if self.corrected is None or not self.corrected.strip():
                raise ValueError("a correction needs the corrected answer in `corrected`")
        elif self.corrected is not None or self.reason is not None:
            raise ValueError("`corrected` and `reason` go only with the verdict `corrected`")
        return self


class ReviewOut(BaseModel):
    message_id: int
    case_id: uuid.UUID | None
    verdict: Verdict
    corrected: str | None
    reason: CorrectionReason | None
    reviewer: Author | None
    model: str | None = Field(description="the model that wrote the answer")
    created_at: datetime


class ReasonCount(BaseModel):
    reason: CorrectionReason
    count: int


class ModelReviewStats(BaseModel):
    model: str | None = Field(description="the model that wrote the answers (null: not recorded)")
    reviewed: int = Field(description="answers a clinician reviewed")
    corrected: int = Field(description="of them, answers a clinician corrected")
    corrected_share: float = Field(description="corrected / reviewed")
    top_reasons: list[ReasonCount] = Field(description="the three most frequent, most first")


class ReviewStats(BaseModel):
    data: list[ModelReviewStats] = Field(description="one entry per model, most reviewed first")


class ReviewDatasetRequest(BaseModel):
    redact: bool = True
    include_correct: bool = Field(
        True, description="also train on answers a clinician marked correct, as they were"
    )
