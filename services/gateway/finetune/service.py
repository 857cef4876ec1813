"""Fine-tuning jobs as the API sees them: creation from a request, listings, cancellation.
The job's state machine, shared with the worker, is in services.store.jobs."""

from __future__ import annotations

import uuid

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from services.store.jobs import add_event, finish, new_job_id
from services.store.tables.finetune import FineTuneCheckpoint, FineTuneEvent, FineTuneJob

from .schemas import JobCreate


async def create_job(
    *, db: AsyncSession, body: JobCreate, created_by: uuid.UUID, seed: int
) -> FineTuneJob:
    lora = body.lora_options()
    job = FineTuneJob(
        id=new_job_id(),
        created_by=created_by,
        model=body.model,
        training_file=body.training_file,
        validation_file=body.validation_file,
        suffix=body.suffix,
        seed=seed,
        hyperparameters=body.resolved_hyperparameters().model_dump(),
        max_seq_length=body.max_seq_length,
        lora=lora.model_dump() if lora else None,
        status="validating_files",
    )
    db.add(job)
    await db.flush()
    await add_event(db=db, job_id=job.id, message=f"Created fine-tuning job: {job.id}")
    return job


async def list_jobs(*, db: AsyncSession, limit: int, after: str | None) -> list[FineTuneJob]:
    q = select(FineTuneJob).order_by(FineTuneJob.created_at.desc(), FineTuneJob.id.desc())
    if after and (cursor := await db.get(FineTuneJob, after)) is not None:
        q = q.where(
            (FineTuneJob.created_at < cursor.created_at)
            | ((FineTuneJob.created_at == cursor.created_at) & (FineTuneJob.id < cursor.id))
        )
    return list((await db.scalars(q.limit(limit))).all())


async def list_events(
    *, db: AsyncSession, job_id: str, limit: int, before_id: int | None
) -> list[FineTuneEvent]:
    """Newest first, as OpenAI lists them; `before_id` continues a listing."""
    q = select(FineTuneEvent).where(FineTuneEvent.job_id == job_id)
    if before_id is not None:
        q = q.where(FineTuneEvent.id < before_id)
    return list((await db.scalars(q.order_by(FineTuneEvent.id.desc()).limit(limit))).all())


async def events_after(*, db: AsyncSession, job_id: str, after_id: int) -> list[FineTuneEvent]:
    """Oldest first: what a live view has not seen yet."""
    q = (
        select(FineTuneEvent)
        .where(FineTuneEvent.job_id == job_id, FineTuneEvent.id > after_id)
        .order_by(FineTuneEvent.id)
        .limit(1000)
    )
    return list((await db.scalars(q)).all())


async def list_checkpoints(
    *, db: AsyncSession, job_id: str, limit: int, before_step: int | None
) -> list[FineTuneCheckpoint]:
    q = select(FineTuneCheckpoint).where(FineTuneCheckpoint.job_id == job_id)
    if before_step is not None:
        q = q.where(FineTuneCheckpoint.step < before_step)
    return list((await db.scalars(q.order_by(FineTuneCheckpoint.step.desc()).limit(limit))).all())


async def request_cancel(*, db: AsyncSession, job: FineTuneJob) -> None:
    """A job not yet running is cancelled at once; a running one is stopped by its worker,
    which polls this flag."""
    job.cancel_requested = True
    if job.status in ("validating_files", "queued"):
        await finish(db=db, job=job, status="cancelled", message="The job was cancelled")
    else:
        await add_event(db=db, job_id=job.id, message="Cancellation requested")
