"""OpenAI's fine-tuning API (admins only): create, list, retrieve, events (pages or a live
SSE stream), checkpoints, cancel. The work is done by the Celery worker."""

from __future__ import annotations

import asyncio
import contextlib
import secrets
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import StreamingResponse
from redis.asyncio import Redis
from redis.exceptions import RedisError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.core.registry import base_model_dir
from services.gateway.audit.dependencies import Audit
from services.gateway.auth.dependencies import AdminPrincipal
from services.gateway.db import Db
from services.gateway.deps import Queue, RedisClient, Sessions, Settings
from services.gateway.errors import ApiError, NotFound
from services.gateway.files.service import get_file
from services.gateway.sse import sse_response
from services.store import jobs
from services.store.tables.finetune import FINAL, FineTuneCheckpoint, FineTuneJob

from . import service
from .events import JOB_EVENTS_STREAM, JobEnd, JobEndEvent, JobEventEvent, sse
from .schemas import (
    CheckpointList,
    CheckpointObject,
    EventList,
    EventObject,
    JobCreate,
    JobList,
    JobObject,
)

router = APIRouter(prefix="/v1/fine_tuning/jobs", tags=["fine-tuning"])


async def _job(db: Db, job_id: str) -> FineTuneJob:
    job = await jobs.get_job(db=db, job_id=job_id)
    if job is None:
        raise NotFound("fine-tuning job")
    return job


@router.post("", response_model=JobObject)
async def create_job(
    body: JobCreate,
    trail: Audit,
    db: Db,
    principal: AdminPrincipal,
    settings: Settings,
    queue: Queue,
) -> JobObject:
    problem = body.resolved_hyperparameters().check()
    if problem:
        raise ApiError(400, "invalid_hyperparameters", problem, "hyperparameters")
    if base_model_dir(settings.models_dir, body.model) is None:
        raise ApiError(
            400,
            "model_not_found",
            f"no trainable model {body.model!r} in the model registry: put the base model's"
            " directory there, or name a merged fine-tune",
            "model",
        )
    for param, file_id in (
        ("training_file", body.training_file),
        ("validation_file", body.validation_file),
    ):
        if file_id is None:
            continue
        f = await get_file(db=db, file_id=file_id)
        if f is None or f.purpose != "fine-tune":
            raise ApiError(
                400,
                "file_not_found",
                f"{param} {file_id!r} is not an uploaded fine-tune file",
                param,
            )
    seed = body.seed if body.seed is not None else secrets.randbelow(2**31)
    job = await service.create_job(db=db, body=body, created_by=principal.user_id, seed=seed)
    trail(
        "finetune.create",
        target_type="fine_tuning_job",
        target_id=job.id,
        details={"model": body.model, "training_file": body.training_file},
        by=principal,
    )
    await db.commit()
    try:
        await queue.validate_job(job.id)
    except Exception as exc:  # the broker is down: say so, and leave no job waiting forever
        await jobs.finish(
            db=db,
            job=job,
            status="failed",
            message="The job could not be queued",
            error={"code": "queue_unavailable", "message": str(exc), "param": None},
        )
        await db.commit()
        raise ApiError(
            503,
            "queue_unavailable",
            "the job queue is unreachable; retry",
            headers={"Retry-After": "10"},
        ) from exc
    return JobObject.of(job)


async def _reap(settings: Settings, queue: Queue, db: Db) -> None:
    """Jobs whose worker died are failed, or queued again to resume (by setting)."""
    requeued = await jobs.reap_dead_jobs(db=db, resume=settings.resume_interrupted_jobs)
    await db.commit()
    for job_id in requeued:
        await queue.train_job(job_id)


@router.get("", response_model=JobList)
async def list_jobs(
    settings: Settings,
    queue: Queue,
    db: Db,
    _: AdminPrincipal,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    after: str | None = None,
) -> JobList:
    await _reap(settings, queue, db)
    page = await service.list_jobs(db=db, limit=limit + 1, after=after)
    return JobList.of(page, limit, JobObject.of)


@router.get("/{job_id}", response_model=JobObject)
async def retrieve_job(
    job_id: str, settings: Settings, queue: Queue, db: Db, _: AdminPrincipal
) -> JobObject:
    await _reap(settings, queue, db)
    return JobObject.of(await _job(db, job_id))


@router.post("/{job_id}/cancel", response_model=JobObject)
async def cancel_job(job_id: str, trail: Audit, db: Db, principal: AdminPrincipal) -> JobObject:
    job = await _job(db, job_id)
    if job.status in FINAL:
        raise ApiError(400, "job_not_active", f"the job has already {job.status}", "job_id")
    await service.request_cancel(db=db, job=job)
    trail(
        "finetune.cancel",
        target_type="fine_tuning_job",
        target_id=job.id,
        by=principal,
    )
    await db.commit()
    return JobObject.of(job)


def _event_id(cursor: str | None, param: str) -> int | None:
    if cursor is None:
        return None
    try:
        return int(cursor.removeprefix("ftevent-"))
    except ValueError:
        raise ApiError(
            400, "invalid_request", f"{param} must be an event id (ftevent-N)", param
        ) from None


@router.get(
    "/{job_id}/events",
    response_model=EventList,
    responses={200: JOB_EVENTS_STREAM},
)
async def list_events(
    job_id: str,
    request: Request,
    sessions: Sessions,
    redis: RedisClient,
    db: Db,
    _: AdminPrincipal,
    limit: Annotated[int, Query(ge=1, le=1000)] = 20,
    after: str | None = None,
    stream: bool = False,
) -> EventList | StreamingResponse:
    """Events newest first (`after`: continue from an event id). `stream=true`: every event
    from the oldest (or after `after`) as server-sent events, live until the job ends."""
    await _job(db, job_id)
    cursor = _event_id(after, "after")
    if stream:
        await db.rollback()  # the stream opens its own short sessions
        return sse_response(_live_events(request, sessions, redis, job_id, cursor or 0))
    page = await service.list_events(db=db, job_id=job_id, limit=limit + 1, before_id=cursor)
    return EventList.of(page, limit, EventObject.of)


async def _live_events(
    request: Request,
    sessionmaker: async_sessionmaker[AsyncSession],
    redis: Redis,
    job_id: str,
    after_id: int,
) -> AsyncIterator[bytes]:
    pubsub = redis.pubsub()
    subscribed = False
    with contextlib.suppress(RedisError):
        await pubsub.subscribe(jobs.progress_channel(job_id))
        subscribed = True
    try:
        while True:
            async with sessionmaker() as db:
                events = await service.events_after(db=db, job_id=job_id, after_id=after_id)
                job = await jobs.get_job(db=db, job_id=job_id)
            for e in events:
                after_id = e.id
                yield sse(JobEventEvent(event="event", data=EventObject.of(e)))
            if job is None or (job.status in FINAL and not events):
                status = job.status if job else "deleted"
                yield sse(JobEndEvent(event="end", data=JobEnd(status=status)))
                return
            if await request.is_disconnected():
                return
            # Woken by the worker's publish, or every second without Redis.
            try:
                if not subscribed:
                    raise RedisError("not subscribed")
                await pubsub.get_message(ignore_subscribe_messages=True, timeout=1.0)
            except RedisError:
                await asyncio.sleep(1.0)
    finally:
        with contextlib.suppress(RedisError):
            await pubsub.aclose()


@router.get("/{job_id}/checkpoints", response_model=CheckpointList)
async def list_checkpoints(
    job_id: str,
    db: Db,
    _: AdminPrincipal,
    limit: Annotated[int, Query(ge=1, le=100)] = 10,
    after: str | None = None,
) -> CheckpointList:
    await _job(db, job_id)
    before = None
    if after is not None:
        try:
            cursor = await db.get(FineTuneCheckpoint, int(after.removeprefix("ftckpt-")))
        except ValueError:
            raise ApiError(
                400, "invalid_request", "after must be a checkpoint id", "after"
            ) from None
        before = cursor.step if cursor else None
    page = await service.list_checkpoints(db=db, job_id=job_id, limit=limit + 1, before_step=before)
    return CheckpointList.of(page, limit, CheckpointObject.of)
