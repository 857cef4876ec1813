"""`medchat eval report`: averages per dataset and model from result files or runs, with a chart."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import click

from ..admin import _url, database_option
from .common import console, err, score_table


@click.command()
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
        console.print(score_table(groups))
    if not no_chart:
        for path in render_chart(groups, chart):
            err.print(f"chart: {path}")


def _runs_scores(run_ids: list[str], database_url: str | None) -> list[Any]:
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
