"""The validation task: the job's files through the format module's validator, with the base
model's own tokenizer and profile, before a GPU is spent on them."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from services.core.chatformat import FormatError, chat_format, get_profile, load_tokenizer
from services.core.chatformat.validate import ValidationReport, validate_file
from services.core.registry import base_model_dir, model_profile
from services.store import jobs
from services.store.files import FileStore, open_store
from services.store.tables.files import StoredFile
from services.store.tables.finetune import FineTuneJob

from .config import WorkerSettings
from .db import sessions, task_engine

log = logging.getLogger(__name__)
PROBLEM_EVENTS = 20  # line-numbered problems written as events (all are counted)


def _summary(report: ValidationReport) -> str:
    return (
        f"{report.valid_rows} rows, {report.trained_tokens} trained tokens;"
        f" {report.truncated_rows} rows longer than max_seq_length {report.max_seq_length}"
        f" ({report.trained_tokens_lost} trained tokens cut)"
    )


async def validate_job(job_id: str, settings: WorkerSettings) -> bool:
    """Validate the job's files; True when the job is now queued for training."""
    async with task_engine(settings.database_url) as engine, sessions(engine)() as db:
        job = await jobs.get_job(db=db, job_id=job_id)
        if job is None or job.status != "validating_files":
            return False  # cancelled meanwhile, or already done by a redelivered task
        await jobs.add_event(db=db, job_id=job_id, message=f"Validating {job.training_file}")
        await db.commit()
        failure = await _check(job, settings)
        await db.refresh(job)
        if job.status != "validating_files":
            return False
        if failure is not None:
            param, message, report = failure
            for p in (report.problems if report else [])[:PROBLEM_EVENTS]:
                if p.severity == "error":
                    await jobs.add_event(
                        db=db,
                        job_id=job_id,
                        level="error",
                        message=f"{param} line {p.line}: {p.message} ({p.code})",
                        data=p.to_dict(),
                    )
            await jobs.finish(
                db=db,
                job=job,
                status="failed",
                message=f"Validation failed: {message}",
                error={"code": "invalid_file", "message": message, "param": param},
            )
        else:
            job.status = "queued"
            await jobs.add_event(
                db=db, job_id=job_id, message="Files validated, moving job to queued state"
            )
        await db.commit()
        return failure is None


async def _check(
    job: FineTuneJob, settings: WorkerSettings
) -> tuple[str, str, ValidationReport | None] | None:
    """(param, message, report) of the first file that fails, or None."""
    model_dir = base_model_dir(settings.models_dir, job.model)
    if model_dir is None:
        return "model", f"model {job.model!r} is no longer in the registry", None
    try:
        tokenizer = load_tokenizer(model_dir)
        fmt = chat_format(tokenizer, get_profile(model_profile(model_dir, settings.profile)))
    except Exception as exc:  # a broken model directory: the job says why
        return "model", f"cannot load the tokenizer of {job.model!r}: {exc}", None
    store = open_store(settings)
    for param, file_id in (
        ("training_file", job.training_file),
        ("validation_file", job.validation_file),
    ):
        if file_id is None:
            continue
        try:
            report = await asyncio.to_thread(
                _validate_stored, store, file_id, chat_format=fmt, max_seq_length=job.max_seq_length
            )
        except FileNotFoundError:
            return param, f"{file_id} has been deleted", None
        except FormatError as exc:
            return "max_seq_length", str(exc), None
        if not report.ok:
            first = next(p for p in report.problems if p.severity == "error")
            message = (
                f"{report.errors} error(s) in {file_id}; the first, line {first.line}:"
                f" {first.message} ({first.code})"
            )
            return param, message, report
        log.info("job %s: %s validated: %s", job.id, file_id, _summary(report))
    return None


async def file_report(
    file_id: str, tokenizer_path: str, profile: str, settings: WorkerSettings
) -> None:
    """Store the token-level report of an uploaded file (for the admin console)."""
    fmt = chat_format(load_tokenizer(tokenizer_path), get_profile(profile))
    report = await asyncio.to_thread(
        _validate_stored, open_store(settings), file_id, chat_format=fmt
    )
    async with task_engine(settings.database_url) as engine, sessions(engine)() as db:
        stored = await db.get(StoredFile, file_id)
        if stored is None:
            return  # deleted meanwhile
        stored.report = report.to_dict() | {"path": stored.filename}  # never the store's path
        await db.commit()


def _validate_stored(store: FileStore, file_id: str, **kw: Any) -> ValidationReport:
    """Validate a stored file from a local copy (the file itself in a directory store, a
    download removed afterwards from a bucket); FileNotFoundError when it is gone."""
    with store.local_copy(file_id) as path:
        return validate_file(path, **kw)
