"""`medchat eval`: DISC-MedLLM's dialogue evaluation, multiple-choice accuracy, and reports.
The model under test is called through the gateway (`--gateway`/MEDCHAT_URL, a key in
MEDCHAT_API_KEY), so its answers pass the same format, safety and logging as any client's."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn
from rich.table import Table

from .admin import _url, database_option

# Piped or captured output keeps whole column names (rich would fit 80 columns).
console = Console(highlight=False, width=None if sys.stdout.isatty() else 160)
err = Console(stderr=True, highlight=False)

gateway_option = click.option(
    "--gateway",
    envvar="MEDCHAT_URL",
    default="http://127.0.0.1:8000",
    show_default=True,
    help="The gateway serving the model under test (MEDCHAT_URL).",
)
api_key_option = click.option(
    "--api-key", envvar="MEDCHAT_API_KEY", required=True, help="A gateway API key (mk-…)."
)


@click.group("eval")
def evaluate() -> None:
    """Evaluate served models: DISC-MedLLM dialogues, multiple choice, reports."""


def _progress() -> Progress:
    return Progress(
        "{task.description}", BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), console=err
    )


def _table(groups: list[Any], title: str | None = None) -> Table:
    from services.eval.prompts import CRITERIA

    table = Table(title=title)
    for name in ("Dataset", "Model", "N", *CRITERIA, "Overall"):
        table.add_column(name, justify="left" if name in ("Dataset", "Model") else "right")
    for g in groups:
        table.add_row(
            g.source,
            g.model,
            str(g.n),
            *(f"{g.means[c]:.2f}" for c in CRITERIA),
            f"{g.overall:.2f}",
        )
    return table


@evaluate.command()
@click.option("--model", help="The model under test, as the gateway names it.")
@click.option("--patient", help="Patient simulator: URL/MODEL of an OpenAI-compatible API.")
@click.option("--judge", help="Judge: URL/MODEL of an OpenAI-compatible API.")
@click.option(
    "--set",
    "dataset",
    type=click.Choice(["cmb-clin", "cmd", "cmid"]),
    default="cmb-clin",
    show_default=True,
)
@click.option("--limit", type=click.IntRange(min=1), help="Only the first N cases.")
@click.option("--turns", type=click.IntRange(1, 10), help="Doctor replies per dialogue [3].")
@click.option("--concurrency", type=click.IntRange(1, 64), help="Cases in flight at once [4].")
@click.option("--max-tokens", type=click.IntRange(min=1), help="Cap on each doctor reply.")
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    help="JSONL results (default: MEDCHAT_EVAL_RESULTS_DIR/<run id>.jsonl).",
)
@click.option("--resume", "resume_id", help="Finish an earlier run: only unscored cases run.")
@click.option(
    "--eval-data",
    type=click.Path(file_okay=False, path_type=Path),
    help="DISC-MedLLM's eval/ folder (holds samples/).",
)
@click.option("--patient-key", envvar="MEDCHAT_EVAL_PATIENT_API_KEY", help="Patient API key.")
@click.option("--judge-key", envvar="MEDCHAT_EVAL_JUDGE_API_KEY", help="Judge API key.")
@gateway_option
@api_key_option
@database_option
def dialogues(
    model: str | None,
    patient: str | None,
    judge: str | None,
    dataset: str,
    limit: int | None,
    turns: int | None,
    concurrency: int | None,
    max_tokens: int | None,
    out: Path | None,
    resume_id: str | None,
    eval_data: Path | None,
    patient_key: str | None,
    judge_key: str | None,
    gateway: str,
    api_key: str,
    database_url: str | None,
) -> None:
    """DISC-MedLLM's multi-turn evaluation: a simulated patient consults the model for each
    case, a judge scores every dialogue on four criteria. Stored in Postgres and as JSONL."""
    from services.eval import store as service
    from services.eval.client import ChatClient, Endpoint, parse_endpoint
    from services.eval.config import get_eval_settings
    from services.eval.runner import Clients, Options, RunError, run_dialogues
    from services.gateway.db import make_engine, make_sessionmaker

    settings = get_eval_settings()
    if resume_id is None and not (model and patient and judge):
        raise click.UsageError("--model, --patient and --judge are needed (or --resume RUN_ID)")
    for name, spec in (("--patient", patient), ("--judge", judge)):
        if spec is not None:
            try:
                parse_endpoint(spec)
            except ValueError as exc:
                raise click.BadParameter(str(exc), param_hint=name) from None

    async def main() -> Any:
        engine = make_engine(_url(database_url))
        try:
            async with make_sessionmaker(engine)() as db:
                if resume_id is not None:
                    run = await service.get_run(db=db, run_id=resume_id)
                    if run is None:
                        raise click.ClickException(f"no evaluation run {resume_id}")
                    if run.status in ("queued", "running") and run.started_at is None:
                        raise click.ClickException(f"run {run.id} is queued for the worker")
                else:
                    config = {
                        "patient": patient,
                        "judge": judge,
                        "turns": turns or settings.eval_turns,
                        "limit": limit,
                        "concurrency": concurrency,
                    }
                    run = await service.create_run(
                        db=db, model=model or "", dataset=dataset, config=config, created_by=None
                    )
                    await db.commit()
            err.print(f"run {run.id}: {run.model} on {run.dataset}")
            output = out or (
                Path(run.output_path)
                if run.output_path
                else settings.eval_results_dir / f"{run.id}.jsonl"
            )

            def client(endpoint: Endpoint) -> ChatClient:
                return ChatClient(
                    endpoint, timeout_s=settings.eval_timeout_s, retries=settings.eval_retries
                )

            clients = Clients(
                doctor=client(Endpoint(gateway.rstrip("/") + "/v1", run.model, api_key)),
                patient=client(parse_endpoint(run.config["patient"], patient_key)),
                judge=client(parse_endpoint(run.config["judge"], judge_key)),
            )
            options = Options(
                data_dir=eval_data or settings.eval_data_dir,
                concurrency=concurrency
                or run.config.get("concurrency")
                or settings.eval_concurrency,
                judge_retries=settings.eval_judge_retries,
                doctor_max_tokens=max_tokens,
            )
            try:
                with _progress() as bar:
                    task = bar.add_task("cases", total=None)
                    final = await run_dialogues(
                        run.id,
                        engine=engine,
                        clients=clients,
                        options=options,
                        output=output,
                        on_progress=lambda done, total: bar.update(
                            task, completed=done, total=total
                        ),
                    )
            except RunError as exc:
                raise click.ClickException(str(exc)) from None
            finally:
                await clients.close()
            async with make_sessionmaker(engine)() as db:
                cases = await service.scored_cases(db=db, run_id=final.id)
            return final, cases, output
        finally:
            await engine.dispose()

    final, cases, output = asyncio.run(main())
    from services.eval.report import Scored, aggregate

    groups = aggregate(Scored(c.source, final.model, c.case_id, c.scores) for c in cases)
    console.print(_table(groups, title=f"{final.id} ({final.status})"))
    err.print(f"results: {output}")
    if final.status != "succeeded":
        err.print(f"[red]{(final.error or {}).get('message', final.status)}[/]")
        err.print(f"resume with: medchat eval dialogues --resume {final.id}")
        sys.exit(1)


@evaluate.command()
@click.argument("sources", nargs=-1, required=True)
@click.option(
    "--chart",
    type=click.Path(dir_okay=False, path_type=Path),
    default=Path("eval-report"),
    show_default=True,
    help="Chart path; .png and .svg are written.",
)
@click.option("--no-chart", is_flag=True, help="Only the table.")
@click.option("--json", "as_json", is_flag=True, help="Averages as JSON on stdout.")
@database_option
def report(
    sources: tuple[str, ...], chart: Path, no_chart: bool, as_json: bool, database_url: str | None
) -> None:
    """Averages per dataset and model from score files (JSONL: DISC-MedLLM's published
    gpt4_scores, or our runs'; directories too) and run ids (evalrun-…, from Postgres)."""
    from services.eval.report import aggregate, read_paths, render_chart

    paths = [Path(s) for s in sources if not s.startswith("evalrun-")]
    run_ids = [s for s in sources if s.startswith("evalrun-")]
    missing = [str(p) for p in paths if not p.exists()]
    if missing:
        raise click.BadParameter(f"no such file: {', '.join(missing)}", param_hint="SOURCES")
    loaded = read_paths(paths)
    if run_ids:
        loaded.rows.extend(_runs_scores(run_ids, database_url))
    for where, why in loaded.skipped:
        err.print(f"[yellow]skipped {where}: {why}[/]")
    groups = aggregate(loaded.rows)
    if not groups:
        raise click.ClickException("no scored cases found")
    if as_json:
        console.print_json(json.dumps([g.as_dict() for g in groups], ensure_ascii=False))
    else:
        console.print(_table(groups))
    if not no_chart:
        for path in render_chart(groups, chart):
            err.print(f"chart: {path}")


def _runs_scores(run_ids: list[str], database_url: str | None) -> list[Any]:
    import services.store.tables  # noqa: F401  (every table: foreign keys resolve)
    from services.eval import store as service
    from services.eval.datasets import eval_set
    from services.eval.report import Scored
    from services.gateway.db import make_engine, make_sessionmaker

    async def main() -> list[Scored]:
        engine = make_engine(_url(database_url))
        rows: list[Scored] = []
        try:
            async with make_sessionmaker(engine)() as db:
                for run_id in run_ids:
                    run = await service.get_run(db=db, run_id=run_id)
                    if run is None:
                        raise click.ClickException(f"no evaluation run {run_id}")
                    source = eval_set(run.dataset).source
                    for c in await service.scored_cases(db=db, run_id=run_id):
                        rows.append(Scored(source, run.model, c.case_id, c.scores or {}))
        finally:
            await engine.dispose()
        return rows

    return asyncio.run(main())


@evaluate.command()
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--model", required=True, help="The model under test, as the gateway names it.")
@click.option("--shots", type=click.IntRange(0, 20), default=0, show_default=True)
@click.option(
    "--dev",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Where few-shot examples come from (default: FILE's other questions).",
)
@click.option("--limit", type=click.IntRange(min=1), help="Only the first N questions.")
@click.option("--concurrency", type=click.IntRange(1, 64), default=4, show_default=True)
@click.option("--max-tokens", type=click.IntRange(1, 4096), default=64, show_default=True)
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Each question's reply, extracted answer and verdict, as JSONL.",
)
@click.option("--json", "as_json", is_flag=True, help="Accuracy per subject as JSON.")
@gateway_option
@api_key_option
def mcq(
    file: Path,
    model: str,
    shots: int,
    dev: Path | None,
    limit: int | None,
    concurrency: int,
    max_tokens: int,
    out: Path | None,
    as_json: bool,
    gateway: str,
    api_key: str,
) -> None:
    """Multiple-choice accuracy per subject, zero-shot or with --shots K examples."""
    from services.eval.client import ChatClient, Endpoint
    from services.eval.config import get_eval_settings
    from services.eval.mcq import McqFormatError, answer_all, read_questions, score

    try:
        questions = read_questions(file)
        pool = read_questions(dev) if dev else questions
    except McqFormatError as exc:
        raise click.ClickException(str(exc)) from None
    questions = questions[:limit] if limit else questions
    settings = get_eval_settings()

    async def main() -> Any:
        endpoint = Endpoint(gateway.rstrip("/") + "/v1", model, api_key)
        async with ChatClient(
            endpoint, timeout_s=settings.eval_timeout_s, retries=settings.eval_retries
        ) as doctor:
            with _progress() as bar:
                task = bar.add_task("questions", total=len(questions))
                return await answer_all(
                    questions,
                    doctor=doctor,
                    shots=shots,
                    pool=pool,
                    concurrency=concurrency,
                    max_tokens=max_tokens,
                    on_done=lambda _: bar.advance(task),
                )

    results = asyncio.run(main())
    if out is not None:
        with out.open("w", encoding="utf-8") as f:
            for r in results:
                f.write(
                    json.dumps({"model": model, "shots": shots, **r.as_dict()}, ensure_ascii=False)
                    + "\n"
                )
    rows = score(results)
    if as_json:
        data = [
            {
                "subject": s.subject,
                "n": s.n,
                "correct": s.correct,
                "accuracy": s.accuracy,
                "unreadable": s.unreadable,
            }
            for s in rows
        ]
        out_json = {"model": model, "shots": shots, "subjects": data}
        click.echo(json.dumps(out_json, ensure_ascii=False))
        return
    table = Table(title=f"{model}, {shots}-shot")
    for name in ("Subject", "N", "Correct", "Accuracy", "Unreadable"):
        table.add_column(name, justify="left" if name == "Subject" else "right")
    for s in rows:
        table.add_row(
            s.subject, str(s.n), str(s.correct), f"{100 * s.accuracy:.2f}", str(s.unreadable)
        )
    console.print(table)
