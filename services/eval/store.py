"""Evaluation runs in Postgres, shared by the gateway (requests, views) and the runners (the
worker's task and `medchat eval dialogues`). Functions take `*, db`; callers commit."""

from __future__ import annotations

import hashlib
import secrets
import uuid
from typing import Any

from sqlalchemy import func, select, text, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from services.core.db import utcnow
from services.eval.report import Scored, aggregate
from services.store.tables.evals import EvalCase, EvalRun


def new_run_id() -> str:
    return f"evalrun-{secrets.token_hex(12)}"


def lock_key(run_id: str) -> int:
    """The run's advisory-lock key: one runner at a time per run."""
    return int.from_bytes(hashlib.sha256(run_id.encode()).digest()[:8], "big", signed=True)


async def create_run(
    *,
    db: AsyncSession,
    model: str,
    dataset: str,
    config: dict[str, Any],
    created_by: uuid.UUID | None,
    output_path: str | None = None,
) -> EvalRun:
    run = EvalRun(
        id=new_run_id(),
        created_by=created_by,
        kind="dialogues",
        model=model,
        dataset=dataset,
        config=config,
        status="queued",
        output_path=output_path,
    )
    db.add(run)
    await db.flush()
    return run


async def get_run(*, db: AsyncSession, run_id: str) -> EvalRun | None:
    return await db.get(EvalRun, run_id)


async def list_runs(*, db: AsyncSession, limit: int, after: str | None) -> list[EvalRun]:
    """Newest first; `after` continues from a run id."""
    q = select(EvalRun).order_by(EvalRun.created_at.desc(), EvalRun.id.desc())
    if after and (cursor := await db.get(EvalRun, after)) is not None:
        q = q.where(
            (EvalRun.created_at < cursor.created_at)
            | ((EvalRun.created_at == cursor.created_at) & (EvalRun.id < cursor.id))
        )
    return list((await db.scalars(q.limit(limit))).all())


async def list_cases(
    *, db: AsyncSession, run_id: str, limit: int, after_id: int | None, status: str | None = None
) -> list[EvalCase]:
    q = select(EvalCase).where(EvalCase.run_id == run_id)
    if status is not None:
        q = q.where(EvalCase.status == status)
    if after_id is not None:
        q = q.where(EvalCase.id > after_id)
    return list((await db.scalars(q.order_by(EvalCase.id).limit(limit))).all())


async def scored_cases(*, db: AsyncSession, run_id: str) -> list[EvalCase]:
    q = select(EvalCase).where(EvalCase.run_id == run_id, EvalCase.status == "scored")
    return list((await db.scalars(q.order_by(EvalCase.id))).all())


async def scored_ids(*, db: AsyncSession, run_id: str) -> set[str]:
    q = select(EvalCase.case_id).where(EvalCase.run_id == run_id, EvalCase.status == "scored")
    return set((await db.scalars(q)).all())


async def progress(*, db: AsyncSession, run_id: str) -> dict[str, int]:
    """Cases per status so far: {"scored": n, "failed": m}."""
    q = (
        select(EvalCase.status, func.count())
        .where(EvalCase.run_id == run_id)
        .group_by(EvalCase.status)
    )
    counts = {"scored": 0, "failed": 0}
    counts.update({status: n for status, n in (await db.execute(q)).all()})
    return counts


async def save_case(
    *,
    db: AsyncSession,
    run_id: str,
    case_id: str,
    source: str,
    status: str,
    conversation: list[dict[str, Any]] | None,
    dataset_info: dict[str, Any] | None = None,
    scores: dict[str, float] | None = None,
    judge_reply: str | None = None,
    error: str | None = None,
) -> None:
    """Record a case's outcome; a case run again (after a failure) replaces its row."""
    values = {
        "conversation": conversation,
        "dataset_info": dataset_info,
        "scores": scores,
        "judge_reply": judge_reply,
        "error": error,
        "status": status,
        "updated_at": utcnow(),
    }
    stmt = insert(EvalCase).values(run_id=run_id, case_id=case_id, source=source, **values)
    stmt = stmt.on_conflict_do_update(
        index_elements=[EvalCase.run_id, EvalCase.case_id],
        set_={**values, "attempts": EvalCase.attempts + 1},
    )
    await db.execute(stmt)


def summarize(run: EvalRun, cases: list[EvalCase]) -> dict[str, Any] | None:
    """The run's averages (criteria and overall) over its scored cases."""
    rows = [Scored(c.source, run.model, c.case_id, c.scores) for c in cases if c.scores]
    groups = aggregate(rows)
    return groups[0].as_dict() if groups else None


async def finish(
    *, db: AsyncSession, run: EvalRun, status: str, error: dict[str, Any] | None = None
) -> None:
    run.status = status
    run.error = error
    run.finished_at = utcnow()
    run.summary = summarize(run, await scored_cases(db=db, run_id=run.id))


async def reap_lost_runs(*, db: AsyncSession) -> list[str]:
    """Mark failed the runs left `running` by a runner that died (its lock is free): they
    show as resumable instead of running forever."""
    running = (await db.scalars(select(EvalRun.id).where(EvalRun.status == "running"))).all()
    lost = []
    conn = await db.connection()
    for run_id in running:
        key = lock_key(run_id)
        got = (await conn.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": key})).scalar()
        if not got:
            continue
        await conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": key})
        changed = await db.execute(
            update(EvalRun)
            .where(EvalRun.id == run_id, EvalRun.status == "running")
            .values(
                status="failed",
                finished_at=utcnow(),
                error={
                    "code": "runner_lost",
                    "message": "the process running this evaluation stopped; resume the run"
                    " to finish its remaining cases",
                },
            )
        )
        if changed.rowcount:  # type: ignore[attr-defined]
            lost.append(run_id)
    return lost
