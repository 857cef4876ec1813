"""Queues and task names, and the Celery app both sides build: the gateway sends tasks by name
through `TaskQueue` (importing nothing of the worker's), the worker runs them."""

from __future__ import annotations

import anyio.to_thread
from celery import Celery


def broker_url(redis_url: str) -> str:
    """kombu spells a Unix-socket Redis `redis+socket:///path` where redis-py says `unix://`."""
    if redis_url.startswith("unix://"):
        return "redis+socket://" + redis_url.removeprefix("unix://")
    return redis_url


# Validation is CPU work any worker can do; training needs the GPU worker. medchat up runs one
# worker on both queues.
VALIDATE_QUEUE = "validate"
TRAIN_QUEUE = "train"
VALIDATE_TASK = "medchat.validate_job"
TRAIN_TASK = "medchat.train_job"
REPORT_TASK = "medchat.file_report"  # token statistics of an uploaded file, for the console
RETENTION_TASK = "medchat.retention"  # periodic (Celery beat): deletes what is due
EVAL_TASK = "medchat.eval_run"  # a dialogue-evaluation run (network-bound: any worker)
WEBHOOK_SWEEP_TASK = "medchat.webhook_sweep"  # periodic: deliveries whose task was never sent
WEBHOOK_TASK = "medchat.webhook_delivery"  # one signed POST to an integrator (any worker)


def create_celery(broker: str, visibility_timeout_s: int = 7 * 24 * 3600) -> Celery:
    """The Celery app; the gateway makes one too, to send tasks by name."""
    app = Celery("medchat", broker=broker_url(broker))
    app.conf.update(
        # A task is acknowledged when it ends, so a worker killed mid-job leaves it to be
        # redelivered (and found dead by the job's lock), not lost.
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,  # queued jobs wait in the broker, in order
        broker_transport_options={"visibility_timeout": visibility_timeout_s},
        task_routes={
            VALIDATE_TASK: {"queue": VALIDATE_QUEUE},
            REPORT_TASK: {"queue": VALIDATE_QUEUE},
            RETENTION_TASK: {"queue": VALIDATE_QUEUE},
            EVAL_TASK: {"queue": VALIDATE_QUEUE},
            WEBHOOK_TASK: {"queue": VALIDATE_QUEUE},
            WEBHOOK_SWEEP_TASK: {"queue": VALIDATE_QUEUE},
            TRAIN_TASK: {"queue": TRAIN_QUEUE},
        },
        task_ignore_result=True,  # job state lives in Postgres
        broker_connection_retry_on_startup=True,
        task_serializer="json",
        accept_content=["json"],
        worker_hijack_root_logger=False,
    )
    return app


class TaskQueue:
    """Sends the platform's tasks by name. Celery's send is a blocking broker round trip, so
    it runs in a worker thread, off the event loop."""

    def __init__(self, celery: Celery) -> None:
        self.celery = celery

    @classmethod
    def connect(cls, broker: str) -> TaskQueue:
        return cls(create_celery(broker))

    async def send(self, task: str, *args: object) -> None:
        await anyio.to_thread.run_sync(lambda: self.celery.send_task(task, args=list(args)))

    async def validate_job(self, job_id: str) -> None:
        await self.send(VALIDATE_TASK, job_id)

    async def train_job(self, job_id: str) -> None:
        await self.send(TRAIN_TASK, job_id)

    async def file_report(self, *args: object) -> None:
        await self.send(REPORT_TASK, *args)

    async def eval_run(self, run_id: str) -> None:
        await self.send(EVAL_TASK, run_id)

    async def webhook_delivery(self, delivery_id: str) -> None:
        await self.send(WEBHOOK_TASK, delivery_id)
