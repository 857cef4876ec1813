"""`medchat`: the command line of DISC-MedChat. Each domain adds its own command group."""

from __future__ import annotations

import click

from .admin import apikey, audit, db
from .dataset import dev_tokenizer, render, validate
from .doctor import doctor
from .engine import engine
from .evaluate import evaluate
from .finetune import finetune
from .serve import chat, serve
from .train import train
from .up import up


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="disc-medchat")
def cli() -> None:
    """DISC-MedChat: medical consultation platform around DISC-MedLLM."""


cli.add_command(validate)
cli.add_command(render)
cli.add_command(dev_tokenizer)
cli.add_command(db)
cli.add_command(apikey)
cli.add_command(audit)
cli.add_command(serve)
cli.add_command(chat)
cli.add_command(up)
cli.add_command(finetune)
cli.add_command(train)
cli.add_command(doctor)
cli.add_command(evaluate)
cli.add_command(engine)
