"""`medchat engine`: commands about the inference engine itself."""

from __future__ import annotations

import click

from .probe import probe


@click.group()
def engine() -> None:
    """The inference engine: prove it computes the served model (`probe`)."""


engine.add_command(probe)
