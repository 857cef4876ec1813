"""Evaluation runs (admins only): start a dialogue evaluation of a served model, follow its
progress, read its cases and scores, resume it. The worker runs it (Celery task)."""

from __future__ import annotations

import json
from typing import Annotated, Literal

from fastapi import APIRouter, Query
from fastapi.responses import Response

from services.eval import store as service
from services.eval.client import parse_endpoint
from services.eval.datasets import eval_set
from services.eval.dialogue import result_row
from services.gateway.auth.dependencies import AdminPrincipal
from services.gateway.db import Db
from services.gateway.deps import Queue
from services.gateway.errors import ApiError, NotFound
from services.store.tables.evals import RUN_ACTIVE, EvalRun
from services.store.tasks import TaskQueue

from .schemas import EvalCaseList, EvalCaseObject, EvalRunCreate, EvalRunList, EvalRunObject

router = APIRouter(prefix="/api/admin/evals", tags=["evaluation"])


async def _run(db: Db, run_id: str) -> EvalRun:
    run = await service.get_run(db=db, run_id=run_id)
    if run is None:
        raise NotFound("evaluation run")
    return run


async def _object(db: Db, run: EvalRun) -> EvalRunObject:
    return EvalRunObject.of(run, await service.progress(db=db, run_id=run.id))


async def _enqueue(queue: TaskQueue, db: Db, run: EvalRun) -> None:
    try:
        await queue.eval_run(run.id)
    except Exception as exc:  # the broker is down: say so, and leave no run waiting forever
        error = {"code": "queue_unavailable", "message": str(exc)}
        await service.finish(db=db, run=run, status="failed", error=error)
        await db.commit()
        raise ApiError(
            503,
            "queue_unavailable",
            "the job queue is unreachable; retry",
            headers={"Retry-After": "10"},
        ) from exc


@router.post("", response_model=EvalRunObject, status_code=201)
async def start_run(
    body: EvalRunCreate, db: Db, principal: AdminPrincipal, queue: Queue
) -> EvalRunObject:
    """Start a DISC-MedLLM dialogue evaluation of `model` (as the gateway serves it): the
    patient simulator and the judge are OpenAI-compatible endpoints given as URL/MODEL."""
    for param in ("patient", "judge"):
        try:
            parse_endpoint(getattr(body, param))
        except ValueError as exc:
            raise ApiError(400, "invalid_request", str(exc), param) from None
    config = body.model_dump(include={"patient", "judge", "turns", "limit", "concurrency"})
    run = await service.create_run(
        db=db,
        model=body.model,
        dataset=body.dataset,
        config=config,
        created_by=principal.user_id,
    )
    await db.commit()
    await _enqueue(queue, db, run)
    return await _object(db, run)


@router.get("", response_model=EvalRunList)
async def list_runs(
    db: Db,
    _: AdminPrincipal,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    after: str | None = None,
) -> EvalRunList:
    await service.reap_lost_runs(db=db)
    await db.commit()
    page = await service.list_runs(db=db, limit=limit + 1, after=after)
    return EvalRunList(
        data=[await _object(db, r) for r in page[:limit]], has_more=len(page) > limit
    )


@router.get("/{run_id}", response_model=EvalRunObject)
async def retrieve_run(run_id: str, db: Db, _: AdminPrincipal) -> EvalRunObject:
    """The run with its progress (cases scored and failed of the total) and, once it has
    ended, its averages."""
    await service.reap_lost_runs(db=db)
    await db.commit()
    return await _object(db, await _run(db, run_id))


@router.get("/{run_id}/cases", response_model=EvalCaseList)
async def list_cases(
    run_id: str,
    db: Db,
    _: AdminPrincipal,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    after: Annotated[int | None, Query(ge=0, le=2**62)] = None,
    status: Literal["scored", "failed"] | None = None,
) -> EvalCaseList:
    """Cases in the order they ended: the dialogue, the scores, the judge's raw reply."""
    await _run(db, run_id)
    page = await service.list_cases(
        db=db, run_id=run_id, limit=limit + 1, after_id=after, status=status
    )
    return EvalCaseList.of(page, limit, EvalCaseObject.of)


@router.get(
    "/{run_id}/results",
    response_class=Response,
    responses={200: {"content": {"application/x-ndjson": {}}}},
)
async def export_results(run_id: str, db: Db, _: AdminPrincipal) -> Response:
    """Scored cases as JSONL in DISC-MedLLM's published shape (`medchat eval report` reads it)."""
    run = await _run(db, run_id)
    source = eval_set(run.dataset).source
    lines = []
    for c in await service.scored_cases(db=db, run_id=run_id):
        row = result_row(
            case_id=c.case_id,
            model=run.model,
            source=source,
            conversation=c.conversation or [],
            scores=c.scores or {},
            dataset_info=c.dataset_info,
        )
        lines.append(json.dumps(row, ensure_ascii=False) + "\n")
    return Response("".join(lines), media_type="application/x-ndjson")


@router.post("/{run_id}/resume", response_model=EvalRunObject)
async def resume_run(run_id: str, db: Db, _: AdminPrincipal, queue: Queue) -> EvalRunObject:
    """Queue a failed or interrupted run again: only its unscored cases run."""
    await service.reap_lost_runs(db=db)
    run = await _run(db, run_id)
    if run.status in RUN_ACTIVE:
        raise ApiError(409, "run_active", f"the run is {run.status}", "run_id")
    run.status, run.error, run.finished_at = "queued", None, None
    await db.commit()
    await _enqueue(queue, db, run)
    return await _object(db, run)
