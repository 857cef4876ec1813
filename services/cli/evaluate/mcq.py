"""`medchat eval mcq`: multiple-choice accuracy of the model the gateway serves."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import click
from rich.table import Table

from .common import api_key_option, console, gateway_option, progress


@click.command()
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
            with progress() as bar:
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
