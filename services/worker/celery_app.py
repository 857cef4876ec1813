"""The Celery application: Redis as broker, job state in Postgres (never in Celery results).

Run a worker with `celery -A services.worker.celery_app worker --concurrency 1` (one job at a
time per GPU worker); `medchat up` starts one."""

from __future__ import annotations

from celery import Celery

from .config import WorkerSettings, get_worker_settings


def broker_url(redis_url: str) -> str:
    """kombu spells a Unix-socket Redis `redis+socket:///path` where redis-py says `unix://`."""
    if redis_url.startswith("unix://"):
        return "redis+socket://" + redis_url.removeprefix("unix://")
    return redis_url


def create_celery(settings: WorkerSettings) -> Celery:
    app = Celery("medchat", broker=broker_url(settings.redis_url))
    app.conf.update(
        # A task is acknowledged when it ends, so a worker killed mid-job leaves it to be
        # redelivered (and found dead by the job's lock), not lost.
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,  # queued jobs wait in the broker, in order
        broker_transport_options={"visibility_timeout": settings.visibility_timeout_s},
        task_ignore_result=True,  # job state lives in Postgres
        broker_connection_retry_on_startup=True,
        task_serializer="json",
        accept_content=["json"],
        worker_hijack_root_logger=False,
    )
    app.autodiscover_tasks(["services.worker"], related_name="tasks", force=False)
    return app


app = create_celery(get_worker_settings())
