"""A dialogue-evaluation run: its cases in parallel (bounded), each recorded in Postgres as
it ends and appended to the run's JSONL. Resumable: a case already scored, in Postgres or in
the JSONL, is not run again, and the two are brought back in step first. Used by the
worker's task and by `medchat eval dialogues` alike."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from services.core.db import utcnow
from services.eval import store
from services.store.tables.evals import EvalRun

from .client import ChatClient, EndpointError
from .datasets import Case, eval_set, load_cases
from .dialogue import JudgeFailed, judge, result_row, simulate
from .judge import JudgeParseError
from .report import scored_from_row

log = logging.getLogger(__name__)

Progress = Callable[[int, int], None]  # (cases done, cases in the run)


class RunError(RuntimeError):
    pass


@dataclass
class Clients:
    doctor: ChatClient  # the model under test, through the gateway
    patient: ChatClient
    judge: ChatClient

    async def close(self) -> None:
        for c in (self.doctor, self.patient, self.judge):
            await c.close()


@dataclass(frozen=True)
class Options:
    data_dir: Path
    concurrency: int = 4
    judge_retries: int = 2
    doctor_max_tokens: int | None = None


@contextlib.asynccontextmanager
async def run_lock(engine: AsyncEngine, run_id: str) -> AsyncIterator[None]:
    """Postgres advisory lock held for the run's length, on a connection that dies with the
    process: a crashed runner's lock is free again at once, a live one's is not."""
    async with engine.connect() as conn:
        key = store.lock_key(run_id)
        if not (await conn.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": key})).scalar():
            raise RunError(f"run {run_id} is being run elsewhere")
        await conn.commit()
        try:
            yield
        finally:
            await conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": key})
            await conn.commit()


class JsonlOutput:
    """The run's JSONL: one published-format line per scored case, appended in order of
    completion (a line is whole or, after a crash mid-write, dropped on resume)."""

    def __init__(self, path: Path):
        self.path = path
        self.lock = asyncio.Lock()

    def read(self) -> dict[str, dict[str, Any]]:
        """Whole lines by case id; rewrites the file without a torn last line."""
        if not self.path.exists():
            return {}
        rows: dict[str, dict[str, Any]] = {}
        good: list[str] = []
        torn = False
        for line in self.path.read_text(encoding="utf-8").splitlines():
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except ValueError:
                torn = True
                continue
            rows[str(row["id"])] = row
            good.append(line)
        if torn:
            self.path.write_text("".join(g + "\n" for g in good), encoding="utf-8")
        return rows

    async def append(self, row: dict[str, Any]) -> None:
        line = json.dumps(row, ensure_ascii=False) + "\n"
        async with self.lock:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with self.path.open("a", encoding="utf-8") as f:
                f.write(line)
                f.flush()


async def _reconcile(
    db: AsyncSession, run: EvalRun, source: str, output: JsonlOutput | None
) -> set[str]:
    """Bring Postgres and the JSONL in step; returns the ids scored in either."""
    done = await store.scored_ids(db=db, run_id=run.id)
    if output is None:
        return done
    in_file = output.read()
    for case_id, row in in_file.items():
        if row.get("model") != run.model or row.get("source") != source:
            raise RunError(
                f"{output.path} holds results of another run ({row.get('model')!r},"
                f" {row.get('source')!r}): choose another output file"
            )
        if case_id not in done:  # scored by an earlier run of this file: keep, do not redo
            try:
                scores = scored_from_row(row)
            except JudgeParseError:
                continue
            await store.save_case(
                db=db,
                run_id=run.id,
                case_id=case_id,
                source=source,
                status="scored",
                conversation=row.get("conversation"),
                dataset_info=row.get("dataset_info"),
                scores=scores,
            )
            done.add(case_id)
    await db.commit()
    missing = done - set(in_file)
    for c in await store.scored_cases(db=db, run_id=run.id):
        if c.case_id in missing and c.conversation is not None and c.scores:
            await output.append(
                result_row(
                    case_id=c.case_id,
                    model=run.model,
                    source=source,
                    conversation=c.conversation,
                    scores=c.scores,
                    dataset_info=c.dataset_info,
                )
            )
    return done


async def run_dialogues(
    run_id: str,
    *,
    engine: AsyncEngine,
    clients: Clients,
    options: Options,
    output: Path | None = None,
    on_progress: Progress | None = None,
) -> EvalRun:
    """Run (or resume) a run to its end; returns the run row, final."""
    sessionmaker = async_sessionmaker(engine, expire_on_commit=False)
    async with run_lock(engine, run_id), sessionmaker() as db:
        run = await store.get_run(db=db, run_id=run_id)
        if run is None:
            raise RunError(f"no evaluation run {run_id}")
        try:
            return await _run(run, db, sessionmaker, clients, options, output, on_progress)
        except Exception as exc:
            await db.rollback()
            run = await store.get_run(db=db, run_id=run_id)
            if run is not None:
                error = {"code": "run_error", "message": f"{type(exc).__name__}: {exc}"}
                await store.finish(db=db, run=run, status="failed", error=error)
                await db.commit()
            raise


async def _run(
    run: EvalRun,
    db: AsyncSession,
    sessionmaker: async_sessionmaker[AsyncSession],
    clients: Clients,
    options: Options,
    output_path: Path | None,
    on_progress: Progress | None,
) -> EvalRun:
    source = eval_set(run.dataset).source
    cases = load_cases(options.data_dir, run.dataset, run.config.get("limit"))
    turns = int(run.config.get("turns", 3))
    output = JsonlOutput(output_path) if output_path else None
    run.status, run.total, run.error, run.finished_at = "running", len(cases), None, None
    run.started_at = run.started_at or utcnow()
    if output_path is not None:
        run.output_path = str(output_path)
    await db.commit()

    done = await _reconcile(db, run, source, output)
    todo = [c for c in cases if c.id not in done]
    finished = len(cases) - len(todo)
    log.info("run %s: %d cases, %d already scored", run.id, len(cases), finished)
    if on_progress:
        on_progress(finished, len(cases))
    gate = asyncio.Semaphore(max(1, options.concurrency))

    async def one(case: Case) -> None:
        nonlocal finished
        async with gate:
            await _case(run, case, turns, clients, options, sessionmaker, output)
        finished += 1
        if on_progress:
            on_progress(finished, len(cases))

    await asyncio.gather(*(one(c) for c in todo))

    counts = await store.progress(db=db, run_id=run.id)
    failed = len(cases) - len(await store.scored_ids(db=db, run_id=run.id) & {c.id for c in cases})
    if failed:
        error = {
            "code": "cases_failed",
            "message": f"{failed} of {len(cases)} cases failed; resume the run to retry them",
        }
        await store.finish(db=db, run=run, status="failed", error=error)
    else:
        await store.finish(db=db, run=run, status="succeeded")
    await db.commit()
    log.info("run %s: %s (%s)", run.id, run.status, counts)
    return run


async def _case(
    run: EvalRun,
    case: Case,
    turns: int,
    clients: Clients,
    options: Options,
    sessionmaker: async_sessionmaker[AsyncSession],
    output: JsonlOutput | None,
) -> None:
    conversation: list[dict[str, str]] | None = None
    try:
        conversation = await simulate(
            case,
            doctor=clients.doctor,
            patient=clients.patient,
            turns=turns,
            doctor_max_tokens=options.doctor_max_tokens,
        )
        verdict = await judge(
            case.source, conversation, judge=clients.judge, retries=options.judge_retries
        )
    except (EndpointError, JudgeFailed) as exc:
        log.warning("run %s case %s failed: %s", run.id, case.id, exc)
        replies = exc.replies if isinstance(exc, JudgeFailed) else []
        async with sessionmaker() as db:
            await store.save_case(
                db=db,
                run_id=run.id,
                case_id=case.id,
                source=case.source,
                status="failed",
                conversation=conversation,
                dataset_info=case.dataset_info or None,
                judge_reply=replies[-1] if replies else None,
                error=str(exc),
            )
            await db.commit()
        return
    async with sessionmaker() as db:
        await store.save_case(
            db=db,
            run_id=run.id,
            case_id=case.id,
            source=case.source,
            status="scored",
            conversation=conversation,
            dataset_info=case.dataset_info or None,
            scores=verdict.scores,
            judge_reply=verdict.reply,
        )
        await db.commit()  # Postgres first: the JSONL never holds a case Postgres lacks
    if output is not None:
        await output.append(
            result_row(
                case_id=case.id,
                model=run.model,
                source=case.source,
                conversation=conversation,
                scores=verdict.scores,
                dataset_info=case.dataset_info or None,
            )
        )
