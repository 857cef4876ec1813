"""`medchat train`: which launcher, and the command it builds."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from click.testing import CliRunner

from services.cli.main import cli
from services.cli.train import choose_launcher, launch_command, wants_deepspeed


def test_launcher_choice() -> None:
    assert choose_launcher("auto", gpus=0, deepspeed_config=True, has_deepspeed=True) == "python"
    assert choose_launcher("auto", gpus=8, deepspeed_config=True, has_deepspeed=True) == "deepspeed"
    assert choose_launcher("auto", gpus=8, deepspeed_config=False, has_deepspeed=True) == "torchrun"
    assert choose_launcher("auto", gpus=2, deepspeed_config=True, has_deepspeed=False) == "torchrun"
    assert (
        choose_launcher("torchrun", gpus=0, deepspeed_config=False, has_deepspeed=False)
        == "torchrun"
    )


def test_deepspeed_config_from_file_or_override(tmp_path: Path) -> None:
    f = tmp_path / "a.json"
    f.write_text(json.dumps({"deepspeed": "ds.json"}))
    assert wants_deepspeed(f, [])
    assert not wants_deepspeed(f, ["--deepspeed="])
    f.write_text("{}")
    assert not wants_deepspeed(f, [])
    assert wants_deepspeed(f, ["--deepspeed", "ds.json"])


def test_commands(tmp_path: Path) -> None:
    f = tmp_path / "a.json"
    extra = ["--output_dir", "o"]
    tail = ["trainer.train", "--train_args_file", str(f), "--output_dir", "o"]
    assert launch_command("python", 0, f, extra) == [sys.executable, "-m", *tail]
    assert launch_command("deepspeed", 4, f, extra) == [
        sys.executable,
        "-m",
        "deepspeed.launcher.runner",
        "--num_gpus=4",
        "--module",
        *tail,
    ]
    assert launch_command("torchrun", 2, f, extra) == [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node=2",
        "-m",
        *tail,
    ]


def test_registered_and_passes_arguments_through(tmp_path: Path) -> None:
    f = tmp_path / "a.json"
    f.write_text(json.dumps({"deepspeed": "ds.json"}))
    result = CliRunner().invoke(
        cli, ["train", "-f", str(f), "--gpus", "0", "--dry-run", "--max_steps", "3"]
    )
    assert result.exit_code == 0, result.output
    assert result.output.strip().endswith(f"-m trainer.train --train_args_file {f} --max_steps 3")
