"""`medchat eval dialogues`: DISC-MedLLM's dialogue evaluation through the gateway."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import Any

import click

from ..admin import _url, database_option
from .common import api_key_option, console, err, gateway_option, progress, score_table


@click.command()
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
                with progress() as bar:
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
    console.print(score_table(groups, title=f"{final.id} ({final.status})"))
    err.print(f"results: {output}")
    if final.status != "succeeded":
        err.print(f"[red]{(final.error or {}).get('message', final.status)}[/]")
        err.print(f"resume with: medchat eval dialogues --resume {final.id}")
        sys.exit(1)
