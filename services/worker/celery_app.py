"""The Celery application: Redis as broker, job state in Postgres (never in Celery results).

Run a worker with `celery -A services.worker.celery_app worker -Q validate,train --pool solo`
(one job at a time per GPU worker; solo: the task runs in the worker process itself, so the
trainer it starts dies with it); `medchat up` starts one."""

from __future__ import annotations

from celery import Celery

from services.store.tasks import (
    RETENTION_TASK,
    VALIDATE_QUEUE,
    WEBHOOK_SWEEP_TASK,
    create_celery,
)

from .config import WorkerSettings, get_worker_settings


def _worker_app(settings: WorkerSettings) -> Celery:
    app = create_celery(settings.celery_broker, settings.visibility_timeout_s)
    app.conf.task_default_queue = VALIDATE_QUEUE
    # Run beat (`celery ... worker -B`, as medchat up does, or `celery ... beat`) for this.
    app.conf.beat_schedule = {
        "retention": {"task": RETENTION_TASK, "schedule": float(settings.retention_interval_s)},
        "webhook_sweep": {
            "task": WEBHOOK_SWEEP_TASK,
            "schedule": float(settings.webhook_sweep_interval_s),
        },
    }
    app.autodiscover_tasks(["services.worker"], related_name="tasks", force=True)
    return app


app = _worker_app(get_worker_settings())
