"""Evaluation runs and their cases (each case: the dialogue and the judge's scores). The
gateway writes the request, the runner (worker or CLI) writes the results; a case scored in
Postgres is never run again when its run resumes."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, DateTime, ForeignKey, Index, Integer, String, Text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from services.core.db import Base, utcnow

# queued -> running -> succeeded | failed (some cases failed, or the run could not go on);
# a failed or interrupted run can be resumed: only its unscored cases run again.
RUN_ACTIVE = ("queued", "running")
RUN_FINAL = ("succeeded", "failed")


class EvalRun(Base):
    __tablename__ = "eval_runs"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)  # evalrun-<24 hex>
    created_by: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL")
    )
    kind: Mapped[str] = mapped_column(String(16), default="dialogues")
    model: Mapped[str] = mapped_column(String(200))  # the model under test, as the gateway names it
    dataset: Mapped[str] = mapped_column(String(32))  # cmb-clin | cmd | cmid
    # patient and judge (URL/MODEL, never their keys), turns, limit, concurrency.
    config: Mapped[dict[str, Any]] = mapped_column(JSONB)
    status: Mapped[str] = mapped_column(String(16), default="queued")
    error: Mapped[dict[str, Any] | None] = mapped_column(JSONB)  # {code, message}
    total: Mapped[int | None] = mapped_column(Integer)  # cases in the run, once known
    summary: Mapped[dict[str, Any] | None] = mapped_column(JSONB)  # averages when it ends
    output_path: Mapped[str | None] = mapped_column(Text)  # the JSONL written alongside
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    __table_args__ = (Index("ix_eval_runs_created", "created_at"),)


class EvalCase(Base):
    __tablename__ = "eval_cases"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    run_id: Mapped[str] = mapped_column(ForeignKey("eval_runs.id", ondelete="CASCADE"))
    case_id: Mapped[str] = mapped_column(String(64))  # the sample's id in its dataset
    source: Mapped[str] = mapped_column(String(32))  # CMB-clin | CMD | CMID
    status: Mapped[str] = mapped_column(String(16))  # scored | failed
    conversation: Mapped[list[dict[str, Any]] | None] = mapped_column(JSONB)
    dataset_info: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    scores: Mapped[dict[str, Any] | None] = mapped_column(JSONB)  # criterion -> 1..5
    judge_reply: Mapped[str | None] = mapped_column(Text)  # raw, as the judge wrote it
    error: Mapped[str | None] = mapped_column(Text)
    attempts: Mapped[int] = mapped_column(Integer, default=1)  # how often the case ran
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    __table_args__ = (Index("ix_eval_cases_run_case", "run_id", "case_id", unique=True),)
