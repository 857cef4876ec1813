"""Celery tasks: thin wrappers that run the async job code. Tasks get job ids, never rows."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from celery import Task, shared_task
from celery.signals import worker_ready

from services.core.db import utcnow
from services.eval.config import get_eval_settings
from services.store import jobs
from services.store.tasks import (
    EVAL_TASK,
    REPORT_TASK,
    RETENTION_TASK,
    TRAIN_TASK,
    VALIDATE_TASK,
    WEBHOOK_SWEEP_TASK,
    WEBHOOK_TASK,
)

from .config import get_worker_settings
from .db import sessions, task_engine
from .evaluation import eval_run
from .retention import enforce_retention
from .training import train_job
from .validation import file_report, validate_job
from .webhooks import deliver, never_queued

log = logging.getLogger(__name__)


@shared_task(name=VALIDATE_TASK)
def validate(job_id: str) -> None:
    if asyncio.run(validate_job(job_id, get_worker_settings())):
        train.delay(job_id)


@shared_task(name=TRAIN_TASK)
def train(job_id: str) -> None:
    asyncio.run(train_job(job_id, get_worker_settings()))


@shared_task(name=REPORT_TASK)
def report(file_id: str, tokenizer_path: str, profile: str) -> None:
    asyncio.run(file_report(file_id, tokenizer_path, profile, get_worker_settings()))


@shared_task(name=EVAL_TASK)
def evaluate(run_id: str) -> None:
    asyncio.run(eval_run(run_id, get_eval_settings()))


@shared_task(name=RETENTION_TASK)
def retention() -> None:
    asyncio.run(enforce_retention(get_worker_settings(), utcnow()))


# Attempts are counted on the delivery's row (services/worker/webhooks.py decides when to stop),
# so Celery itself retries without a limit.
@shared_task(name=WEBHOOK_TASK, bind=True, max_retries=None)
def webhook_delivery(self: Task, delivery_id: str) -> None:
    retry_in = asyncio.run(deliver(delivery_id, get_worker_settings()))
    if retry_in is not None:
        raise self.retry(countdown=retry_in)


@shared_task(name=WEBHOOK_SWEEP_TASK)
def webhook_sweep() -> None:
    for delivery_id in asyncio.run(never_queued(get_worker_settings(), utcnow())):
        log.warning("webhook delivery %s was never queued; queueing it now", delivery_id)
        webhook_delivery.delay(delivery_id)


async def _reap() -> list[str]:
    settings = get_worker_settings()
    async with task_engine(settings.database_url) as engine, sessions(engine)() as db:
        requeued = await jobs.reap_dead_jobs(db=db, resume=settings.resume_interrupted_jobs)
        await db.commit()
    return requeued


@worker_ready.connect
def reap_on_start(**_: Any) -> None:
    """Jobs left `running` by a worker that died are failed when a worker starts again."""
    try:
        requeued = asyncio.run(_reap())
    except Exception:  # the database may not be up yet; the gateway reaps on read too
        log.exception("could not check for jobs left running")
        return
    for job_id in requeued:
        log.warning("resuming job %s whose worker had died", job_id)
        train.delay(job_id)
