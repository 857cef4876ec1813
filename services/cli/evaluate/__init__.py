"""`medchat eval`: DISC-MedLLM's dialogue evaluation, multiple-choice accuracy, and reports.
The model under test is called through the gateway (`--gateway`/MEDCHAT_URL, a key in
MEDCHAT_API_KEY), so its answers pass the same format, safety and logging as any client's."""

from __future__ import annotations

import click

from .dialogues import dialogues
from .mcq import mcq
from .report import report


@click.group("eval")
def evaluate() -> None:
    """Evaluate served models: DISC-MedLLM dialogues, multiple choice, reports."""


for command in (dialogues, mcq, report):
    evaluate.add_command(command)

__all__ = ["evaluate"]
