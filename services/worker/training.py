"""The training task: one job at a time, under the job's Postgres lock; the trainer runs as a
subprocess in its own process group, its progress lines become job events, checkpoints and
Redis wake-ups for live views; a cancel ends the whole group within seconds."""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import json
import logging
import os
import signal
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from redis.asyncio import Redis
from redis.exceptions import RedisError
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from services.core.db import utcnow
from services.core.registry import base_model_dir, model_profile, publish
from services.store import jobs
from services.store.files import open_store
from services.store.tables.files import StoredFile
from services.store.tables.finetune import FineTuneCheckpoint, FineTuneJob

from . import kube, launch
from .config import WorkerSettings
from .db import sessions, task_engine

log = logging.getLogger(__name__)
POLL_S = 0.5  # progress file and cancel flag; a cancel takes at most this plus the grace
GRACE_S = 3.0  # SIGTERM, then SIGKILL for the process group
ERROR_TAIL = 2000  # characters of the trainer's log quoted in a failed job's error


@dataclass
class Outcome:
    returncode: int | None = None
    cancelled: bool = False
    summary: dict[str, Any] = field(default_factory=dict)


def _die_with_parent() -> None:
    """In the child: SIGKILL when the worker dies (even by SIGKILL), so no trainer outlives it."""
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


async def train_job(job_id: str, settings: WorkerSettings) -> None:
    async with task_engine(settings.database_url) as engine, engine.connect() as lock:
        key = jobs.lock_key(job_id)
        if not (await lock.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": key})).scalar():
            log.info("job %s is being run by another worker", job_id)
            return
        await lock.commit()  # the session-level lock stays; the transaction does not
        async with sessions(engine)() as db:
            job = await jobs.get_job(db=db, job_id=job_id)
            if job is None:
                return
            if job.status == "running":  # we hold its lock, so its runner is gone
                await jobs.runner_gone(
                    db=db, job_id=job_id, resume=settings.resume_interrupted_jobs
                )
                await db.commit()
                await db.refresh(job)
            if job.status != "queued" or job.cancel_requested:
                return
            job.status, job.started_at = "running", utcnow()
            await jobs.add_event(db=db, job_id=job_id, message="Fine-tuning job started")
            await db.commit()
            redis = Redis.from_url(settings.redis_url)
            try:
                await _run(job, db, redis, settings)
            finally:
                await redis.aclose()
        await lock.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": key})


async def _run(job: FineTuneJob, db: AsyncSession, redis: Redis, settings: WorkerSettings) -> None:
    """The job's files as local paths for as long as the trainer runs: the files themselves
    in a directory store; from a bucket, copies under MEDCHAT_FILES_DIR/cache (the volume
    trainer pods share on Kubernetes), removed when the job is done."""
    store = open_store(settings)
    with contextlib.ExitStack() as copies:
        try:
            train_file = await asyncio.to_thread(
                copies.enter_context, store.local_copy(job.training_file)
            )
            eval_file = None
            if job.validation_file:
                eval_file = await asyncio.to_thread(
                    copies.enter_context, store.local_copy(job.validation_file)
                )
        except FileNotFoundError as exc:
            await _fail(db, job, "file_not_found", f"{exc.args[0]} has been deleted")
            await db.commit()
            await _wake(redis, job.id)
            return
        await _train(job, db, redis, settings, train_file, eval_file)


async def _train(
    job: FineTuneJob,
    db: AsyncSession,
    redis: Redis,
    settings: WorkerSettings,
    train_file: Path,
    eval_file: Path | None,
) -> None:
    model_dir = base_model_dir(settings.models_dir, job.model)
    job_dir = settings.models_dir.parent / "jobs" / job.id
    job_dir.mkdir(parents=True, exist_ok=True)
    if model_dir is None:
        await _fail(db, job, "model_not_found", f"model {job.model!r} left the registry")
        await db.commit()
        await _wake(redis, job.id)
        return
    profile = model_profile(model_dir, settings.profile)
    on_k8s = settings.trainer_backend != "subprocess"
    kind = launch.pod_launcher(settings) if on_k8s else launch.launcher(settings)
    progress = job_dir / "progress.jsonl"
    output_dir = job_dir / "output"
    # A job resumed after its worker died continues from its last checkpoint, and only the
    # progress lines written from now on are new.
    resuming = any(output_dir.glob("checkpoint-*"))
    if not resuming:
        progress.unlink(missing_ok=True)
    start = progress.stat().st_size if progress.exists() else 0
    stored = await db.get(StoredFile, job.training_file)
    training_rows = stored.rows if stored else 1
    args = launch.trainer_arguments(
        job,
        model_dir=model_dir,
        train_file=train_file,
        eval_file=eval_file,
        output_dir=output_dir,
        profile=profile,
        deepspeed_config=settings.deepspeed_config if kind == "deepspeed" else None,
        progress_file=progress,
        rows=training_rows,
    )
    if resuming:
        args["resume_from_checkpoint"] = True
    job.hyperparameters = {
        **job.hyperparameters,
        **launch.resolve_hyperparameters(job.hyperparameters),
    }
    args_file = launch.write_arguments(job_dir, args)
    where = settings.trainer_backend if on_k8s else "a subprocess"
    await jobs.add_event(db=db, job_id=job.id, message=f"Launching the trainer ({kind}, {where})")
    await db.commit()
    if on_k8s:
        argv = launch.command(kind, args_file, python="python", gpus=settings.k8s_gpus_per_node)
        outcome = await _supervise_k8s(job, db, redis, argv, progress, start, settings)
    else:
        argv = launch.command(kind, args_file)
        outcome = await _supervise(job, db, redis, argv, job_dir, progress, start)
    await db.refresh(job)
    if outcome.cancelled:
        await jobs.finish(db=db, job=job, status="cancelled", message="The job was cancelled")
    elif outcome.returncode != 0:
        await _fail(
            db,
            job,
            "training_failed",
            f"the trainer exited with status {outcome.returncode}: {_log_tail(job_dir)}",
        )
    else:
        job.trained_tokens = outcome.summary.get("trained_tokens")
        saved_kind: Literal["adapter", "merged"] = (
            "adapter" if job.lora and job.lora.get("save") != "merged" else "merged"
        )
        model = publish(
            settings.models_dir,
            output_dir,
            base=job.model,
            suffix=job.suffix,
            job_id=job.id,
            kind=saved_kind,
            profile=profile,
        )
        job.fine_tuned_model = model.name
        await jobs.add_event(
            db=db, job_id=job.id, message=f"New fine-tuned model created: {model.name}"
        )
        await jobs.finish(
            db=db, job=job, status="succeeded", message="The job has successfully completed"
        )
    await db.commit()
    await _wake(redis, job.id)


async def _fail(db: AsyncSession, job: FineTuneJob, code: str, message: str) -> None:
    await jobs.finish(
        db=db,
        job=job,
        status="failed",
        message=message,
        error={"code": code, "message": message, "param": None},
    )


def _log_tail(job_dir: Path) -> str:
    try:
        text_ = (job_dir / "trainer.log").read_text(errors="replace")
    except OSError:
        return "(no log)"
    return text_[-ERROR_TAIL:].strip()


async def _wake(redis: Redis, job_id: str) -> None:
    with contextlib.suppress(RedisError, OSError):
        await redis.publish(jobs.progress_channel(job_id), "1")


async def _supervise(
    job: FineTuneJob,
    db: AsyncSession,
    redis: Redis,
    argv: list[str],
    job_dir: Path,
    progress: Path,
    offset: int,
) -> Outcome:
    outcome = Outcome()
    with (job_dir / "trainer.log").open("ab") as log_file:
        proc = await asyncio.create_subprocess_exec(
            *argv,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=log_file,
            stderr=asyncio.subprocess.STDOUT,
            start_new_session=True,  # its own process group: a cancel reaches every rank
            preexec_fn=_die_with_parent,
        )
        try:
            while True:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(proc.wait(), POLL_S)
                offset = await _forward(job, db, redis, progress, offset, outcome)
                if proc.returncode is not None:
                    break
                await db.refresh(job, ["cancel_requested"])
                await db.commit()
                if job.cancel_requested and not outcome.cancelled:
                    outcome.cancelled = True
                    await _stop_group(proc)
        finally:
            if proc.returncode is None:  # the task itself was interrupted
                await _stop_group(proc)
    outcome.returncode = proc.returncode
    return outcome


async def _supervise_k8s(
    job: FineTuneJob,
    db: AsyncSession,
    redis: Redis,
    argv: list[str],
    progress: Path,
    offset: int,
    settings: WorkerSettings,
) -> Outcome:
    """The same loop for a training Job or PyTorchJob: progress from the shared volume,
    the cancel flag, the resource's status; deleted on cancel or if this task is stopped."""
    kind: kube.Kind = "pytorchjob" if settings.trainer_backend == "pytorchjob" else "k8s-job"
    body = kube.manifest(kind, job.id, argv, settings)
    name = body["metadata"]["name"]
    api = kube.KubeApi(settings)
    outcome = Outcome()
    finished = False
    try:
        await api.create(kind, body)
        await jobs.add_event(db=db, job_id=job.id, message=f"Created {body['kind']} {name}")
        await db.commit()
        while True:
            await asyncio.sleep(POLL_S)
            offset = await _forward(job, db, redis, progress, offset, outcome)
            state, why = await api.state(kind, name)
            if state != "running":
                offset = await _forward(job, db, redis, progress, offset, outcome)
                outcome.returncode = 0 if state == "succeeded" else 1
                if why:
                    await jobs.add_event(db=db, job_id=job.id, level="error", message=why)
                finished = True
                return outcome
            await db.refresh(job, ["cancel_requested"])
            await db.commit()
            if job.cancel_requested:
                outcome.cancelled = True
                return outcome
    finally:
        if not finished:
            await api.delete(kind, name)
        await api.close()


async def _stop_group(proc: asyncio.subprocess.Process) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        await asyncio.wait_for(proc.wait(), GRACE_S)
    except TimeoutError:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        await proc.wait()


async def _forward(
    job: FineTuneJob, db: AsyncSession, redis: Redis, progress: Path, offset: int, outcome: Outcome
) -> int:
    """New complete lines of the progress file into events and checkpoints."""
    try:
        with progress.open("rb") as f:
            f.seek(offset)
            data = f.read()
    except FileNotFoundError:
        return offset
    end = data.rfind(b"\n") + 1
    if end == 0:
        return offset
    for raw in data[:end].splitlines():
        try:
            line = json.loads(raw)
        except ValueError:
            continue
        if isinstance(line, dict):
            await _record(job, db, line, outcome)
    await db.commit()
    await _wake(redis, job.id)
    return offset + end


async def _record(
    job: FineTuneJob, db: AsyncSession, line: dict[str, Any], outcome: Outcome
) -> None:
    """One trainer progress line (trainer/progress.py) into events and checkpoints."""
    kind = line.get("event", "progress")
    add = jobs.add_event
    if kind == "progress":
        await add(db=db, job_id=job.id, type="metrics", message=_describe_step(line), data=line)
    elif kind == "eval":
        await add(
            db=db,
            job_id=job.id,
            type="metrics",
            message=f"Eval at step {line.get('step')}",
            data=line,
        )
    elif kind == "checkpoint":
        step = int(line.get("step", 0))
        metrics = {k: v for k, v in line.items() if k not in ("event", "path")}
        db.add(
            FineTuneCheckpoint(
                job_id=job.id, step=step, metrics=metrics, path=str(line.get("path", ""))
            )
        )
        await add(db=db, job_id=job.id, message=f"Checkpoint saved at step {step}", data=metrics)
    elif kind == "start":
        await add(
            db=db, job_id=job.id, message=f"Training {line.get('max_steps')} steps", data=line
        )
    elif kind == "summary":
        outcome.summary = line
        await add(db=db, job_id=job.id, type="metrics", message=_describe_summary(line), data=line)
    elif kind == "error":
        await add(db=db, job_id=job.id, level="error", message=str(line.get("message")), data=line)


def _describe_step(line: dict[str, Any]) -> str:
    total = line.get("max_steps") or line.get("total_steps")
    step = f"Step {line['step']}/{total}" if total else f"Step {line['step']}"
    loss = line.get("loss")
    return f"{step}: training loss={loss:.4f}" if isinstance(loss, int | float) else step


def _describe_summary(line: dict[str, Any]) -> str:
    parts = [
        f"{k}={line[k]}" for k in ("trained_tokens", "train_runtime_s", "final_loss") if k in line
    ]
    return "Training finished: " + ", ".join(parts) if parts else "Training finished"
