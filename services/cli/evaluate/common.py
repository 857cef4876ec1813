"""What the `medchat eval` commands share: the consoles, the gateway and key options, the
progress bar and the score table."""

from __future__ import annotations

import sys
from typing import Any

import click
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn
from rich.table import Table

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


def progress() -> Progress:
    return Progress(
        "{task.description}", BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), console=err
    )


def score_table(groups: list[Any], title: str | None = None) -> Table:
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
