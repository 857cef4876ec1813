"""Fine-tuning job records in Postgres, kept by both sides: the gateway creates and cancels
jobs, the worker moves them through their states. Functions take `*, db` and leave committing
to the caller."""

from __future__ import annotations

import hashlib
import secrets
from typing import Any

from sqlalchemy import select, text, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from services.core.db import utcnow
from services.store.tables.finetune import ACTIVE, FineTuneCheckpoint, FineTuneEvent, FineTuneJob


def new_job_id() -> str:
    return f"ftjob-{secrets.token_hex(12)}"


def progress_channel(job_id: str) -> str:
    """Redis channel the worker publishes to when a job has new events (a wake-up only: the
    events themselves are read from Postgres)."""
    return f"medchat:ft:{job_id}"


def lock_key(job_id: str) -> int:
    """The job's Postgres advisory-lock key: whoever runs the job holds it, on a connection
    that dies with its process, so a free lock on a running job means its runner is gone."""
    return int.from_bytes(hashlib.sha256(job_id.encode()).digest()[:8], "big", signed=True)


async def add_event(
    *,
    db: AsyncSession,
    job_id: str,
    message: str,
    level: str = "info",
    type: str = "message",
    data: dict[str, Any] | None = None,
) -> FineTuneEvent:
    event = FineTuneEvent(job_id=job_id, message=message, level=level, type=type, data=data)
    db.add(event)
    await db.flush()
    return event


async def get_job(*, db: AsyncSession, job_id: str) -> FineTuneJob | None:
    return await db.get(FineTuneJob, job_id)


async def finish(
    *,
    db: AsyncSession,
    job: FineTuneJob,
    status: str,
    message: str,
    error: dict[str, Any] | None = None,
) -> None:
    """Move a job to a final state, with the event that says why."""
    job.status = status
    job.error = error
    job.finished_at = utcnow()
    await add_event(
        db=db, job_id=job.id, message=message, level="error" if status == "failed" else "info"
    )


async def runner_alive(conn: AsyncConnection, job_id: str) -> bool:
    """Whether some process holds the job's lock (tried, and let go at once if we got it)."""
    key = lock_key(job_id)
    got = (await conn.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": key})).scalar()
    if got:
        await conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": key})
    return not got


async def reap_dead_jobs(*, db: AsyncSession, resume: bool = False) -> list[str]:
    """Running jobs whose runner died (killed worker, lost host) are never left `running`:
    with `resume` and a checkpoint to resume from they go back to `queued` (returned: the
    caller queues them again); otherwise they fail."""
    running = (
        await db.scalars(select(FineTuneJob.id).where(FineTuneJob.status == "running"))
    ).all()
    if not running:
        return []
    conn = await db.connection()
    dead = [job_id for job_id in running if not await runner_alive(conn, job_id)]
    return [job_id for job_id in dead if await runner_gone(db=db, job_id=job_id, resume=resume)]


async def runner_gone(*, db: AsyncSession, job_id: str, resume: bool) -> bool:
    """A running job whose runner is gone: back to `queued` when resuming is on and a
    checkpoint exists (True: queue it again), else failed."""
    last = await db.scalar(
        select(FineTuneCheckpoint.step)
        .where(FineTuneCheckpoint.job_id == job_id)
        .order_by(FineTuneCheckpoint.step.desc())
        .limit(1)
    )
    if resume and last is not None:
        values: dict[str, Any] = {"status": "queued"}
        message, level = f"The worker running this job stopped; resuming from step {last}", "info"
    else:
        values = {
            "status": "failed",
            "finished_at": utcnow(),
            "error": {
                "code": "worker_lost",
                "message": "the worker running this job stopped (killed or its host lost);"
                " create the job again to retry",
                "param": None,
            },
        }
        message, level = "The worker running this job stopped; the job failed", "error"
    changed = await db.execute(
        update(FineTuneJob)
        .where(FineTuneJob.id == job_id, FineTuneJob.status == "running")
        .values(**values)
    )
    if not changed.rowcount:  # type: ignore[attr-defined]
        return False
    await add_event(db=db, job_id=job_id, level=level, message=message)
    return bool(values["status"] == "queued")


def is_active(job: FineTuneJob) -> bool:
    return job.status in ACTIVE
