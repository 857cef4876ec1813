"""How a job becomes a trainer command line: its arguments file and the launcher."""

from __future__ import annotations

import importlib.util
import json
import math
import shutil
import sys
from pathlib import Path
from typing import Any

from services.store.tables.finetune import FineTuneJob

from .config import WorkerSettings

# "auto" hyperparameters, chosen as DISC-MedLLM's sft.json does for small data.
AUTO_EPOCHS = 3
AUTO_BATCH = 8
BASE_LEARNING_RATE = 2e-5


def resolve_hyperparameters(hp: dict[str, Any]) -> dict[str, Any]:
    def pick(name: str, auto: Any) -> Any:
        value = hp.get(name, "auto")
        return auto if value == "auto" else value

    return {
        "n_epochs": pick("n_epochs", AUTO_EPOCHS),
        "batch_size": pick("batch_size", AUTO_BATCH),
        "learning_rate_multiplier": pick("learning_rate_multiplier", 1.0),
    }


def trainer_arguments(
    job: FineTuneJob,
    *,
    model_dir: Path,
    train_file: Path,
    eval_file: Path | None,
    output_dir: Path,
    profile: str,
    deepspeed_config: Path | None,
    progress_file: Path,
    rows: int,
) -> dict[str, Any]:
    """The trainer's JSON arguments file (its dataclass plus TrainingArguments)."""
    hp = resolve_hyperparameters(job.hyperparameters)
    # About four checkpoints per job (two kept): /checkpoints has something to show and a
    # resumed job little to redo, without a save every few steps on small data.
    steps = math.ceil(rows / hp["batch_size"]) * hp["n_epochs"]
    args: dict[str, Any] = {
        "model_name_or_path": str(model_dir),
        "train_file": str(train_file),
        "profile": profile,
        "output_dir": str(output_dir),
        "num_train_epochs": hp["n_epochs"],
        "per_device_train_batch_size": hp["batch_size"],
        "learning_rate": BASE_LEARNING_RATE * hp["learning_rate_multiplier"],
        "seed": job.seed,
        "logging_steps": 1,
        "save_strategy": "steps",
        "save_steps": max(1, steps // 4),
        "save_total_limit": 2,
        "report_to": [],
        "progress_file": str(progress_file),
    }
    if eval_file is not None:
        args["eval_file"] = str(eval_file)
    if job.max_seq_length:
        args["max_seq_length"] = job.max_seq_length
    if job.lora:
        args.update(
            lora=True,
            lora_r=job.lora["r"],
            lora_alpha=job.lora["alpha"],
            lora_dropout=job.lora["dropout"],
            save_merged=job.lora.get("save") == "merged",
        )
    if deepspeed_config is not None:
        args["deepspeed"] = str(deepspeed_config)
        args["bf16"] = True
    return args


def gpu_count() -> int:
    try:
        import torch
    except ImportError:
        return 0
    return int(torch.cuda.device_count())


def launcher(settings: WorkerSettings) -> str:
    """deepspeed with GPUs and DeepSpeed installed, torchrun with GPUs only, else python."""
    if settings.trainer_launcher != "auto":
        return settings.trainer_launcher
    if gpu_count() == 0:
        return "python"
    if importlib.util.find_spec("deepspeed") is not None and shutil.which("deepspeed"):
        return "deepspeed"
    return "torchrun"


def command(
    kind: str, args_file: Path, *, python: str = sys.executable, gpus: int | None = None
) -> list[str]:
    """The trainer's command line; `python` and `gpus` differ in a training pod."""
    module = ["-m", "trainer.train", "--train_args_file", str(args_file)]
    n = gpu_count() if gpus is None else gpus
    if kind == "deepspeed":
        return ["deepspeed", f"--num_gpus={n}", "--module", *module[1:]]
    if kind == "torchrun":
        return ["torchrun", f"--nproc_per_node={n}", *module]
    return [python, *module]


def pod_launcher(settings: WorkerSettings) -> str:
    """The launcher inside a training pod: the setting, else by what the pod is given."""
    if settings.trainer_launcher != "auto":
        return settings.trainer_launcher
    if settings.k8s_gpus_per_node == 0:
        return "python"
    return "torchrun" if settings.trainer_backend == "pytorchjob" else "deepspeed"


def write_arguments(job_dir: Path, args: dict[str, Any]) -> Path:
    path = job_dir / "train_args.json"
    path.write_text(json.dumps(args, indent=2))
    return path
