"""`medchat train`: launch the trainer as the worker does, on the hardware at hand.

deepspeed when GPUs are visible and the arguments name a DeepSpeed config (and DeepSpeed is
installed), torchrun on other GPU hosts, plain python on a CPU. Anything after the options
goes to the trainer unchanged (`medchat train -f sft.json --output_dir out --max_steps 10`).
"""

from __future__ import annotations

import importlib.util
import json
import shlex
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import click

LAUNCHERS = ("auto", "deepspeed", "torchrun", "python")


def gpu_count() -> int:
    """Visible CUDA devices (0 without torch): torch is imported only here, not at CLI load."""
    try:
        import torch
    except ImportError:
        return 0
    return int(torch.cuda.device_count())


def wants_deepspeed(args_file: Path, extra: Sequence[str]) -> bool:
    """Whether the arguments (file, then command-line overrides) name a DeepSpeed config."""
    try:
        value = json.loads(args_file.read_text(encoding="utf-8")).get("deepspeed")
    except (OSError, ValueError, AttributeError):
        value = None
    for i, arg in enumerate(extra):
        if arg == "--deepspeed":
            value = extra[i + 1] if i + 1 < len(extra) else None
        elif arg.startswith("--deepspeed="):
            value = arg.split("=", 1)[1]
    return bool(value)


def choose_launcher(
    requested: str, *, gpus: int, deepspeed_config: bool, has_deepspeed: bool
) -> str:
    if requested != "auto":
        return requested
    if gpus == 0:
        return "python"  # the trainer itself refuses DeepSpeed without a GPU, with a message
    return "deepspeed" if deepspeed_config and has_deepspeed else "torchrun"


def launch_command(kind: str, gpus: int, args_file: Path, extra: Sequence[str]) -> list[str]:
    """The command line; launchers run as modules of this interpreter, so they use its
    environment (`python -m torch.distributed.run` is what the `torchrun` script runs)."""
    trainer = ["trainer.train", "--train_args_file", str(args_file), *extra]
    if kind == "deepspeed":
        runner = [sys.executable, "-m", "deepspeed.launcher.runner"]
        return [*runner, f"--num_gpus={gpus}", "--module", *trainer]
    if kind == "torchrun":
        runner = [sys.executable, "-m", "torch.distributed.run"]
        return [*runner, "--standalone", f"--nproc_per_node={gpus}", "-m", *trainer]
    return [sys.executable, "-m", *trainer]


@click.command(
    context_settings={"ignore_unknown_options": True, "allow_extra_args": True},
    short_help="Fine-tune a model (deepspeed, torchrun or python).",
)
@click.option(
    "-f",
    "--train-args-file",
    "args_file",
    required=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="JSON arguments file (trainer options plus TrainingArguments), e.g. sft.json.",
)
@click.option(
    "--launcher",
    type=click.Choice(LAUNCHERS),
    default="auto",
    show_default=True,
    help="auto: deepspeed with GPUs and a DeepSpeed config, torchrun with GPUs, else python.",
)
@click.option("--gpus", type=int, default=None, help="GPUs to use (default: all visible).")
@click.option("--dry-run", is_flag=True, help="Print the command instead of running it.")
@click.argument("extra", nargs=-1, type=click.UNPROCESSED)
def train(
    args_file: Path, launcher: str, gpus: int | None, dry_run: bool, extra: tuple[str, ...]
) -> None:
    """Run the trainer on ARGS_FILE; EXTRA arguments override the file's."""
    count = gpu_count() if gpus is None else gpus
    kind = choose_launcher(
        launcher,
        gpus=count,
        deepspeed_config=wants_deepspeed(args_file, extra),
        has_deepspeed=importlib.util.find_spec("deepspeed") is not None,
    )
    argv = launch_command(kind, count, args_file, extra)
    if dry_run:
        click.echo(shlex.join(argv))
        return
    click.echo(f"medchat train: {kind} on {count} GPU(s)", err=True)
    raise SystemExit(subprocess.call(argv))
