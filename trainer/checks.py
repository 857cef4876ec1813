"""Pre-flight checks: every problem the arguments or the data can have is reported, with a
clear message, before any model weight is loaded (minutes on a 13B model)."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

from .args import ScriptArguments

# config.json fields that bound a model's sequence length, in the order trusted.
LENGTH_FIELDS = ("max_position_embeddings", "model_max_length", "n_positions", "seq_length")


class PreflightError(ValueError):
    """The run cannot start; the message says why and what to change."""


def check_launch(script: ScriptArguments, training: dict[str, Any], *, cuda: bool) -> None:
    """Hardware and installed packages against what the arguments ask for."""
    deepspeed = training.get("deepspeed")
    if deepspeed:
        if not cuda:
            raise PreflightError(
                "DeepSpeed was asked for (deepspeed="
                f"{deepspeed if isinstance(deepspeed, str) else 'a config object'}) but no CUDA"
                " GPU is visible; remove the deepspeed argument to train on the CPU"
            )
        if importlib.util.find_spec("deepspeed") is None:
            raise PreflightError(
                "DeepSpeed is not installed; install it with"
                " `DS_BUILD_OPS=0 pip install --no-build-isolation deepspeed`"
            )
        if isinstance(deepspeed, str) and not Path(deepspeed).is_file():
            raise PreflightError(f"DeepSpeed config {deepspeed} does not exist")
    if script.qlora:
        if not cuda:
            raise PreflightError("QLoRA needs a CUDA GPU (bitsandbytes 4-bit); none is visible")
        if importlib.util.find_spec("bitsandbytes") is None:
            raise PreflightError("QLoRA needs bitsandbytes: pip install bitsandbytes")
    if (script.lora or script.qlora) and importlib.util.find_spec("peft") is None:
        raise PreflightError("LoRA needs peft: pip install peft")
    if script.packing and script.attention == "flex" and not cuda:
        raise PreflightError(
            "attention=flex needs a GPU (FlexAttention has no backward on the CPU);"
            " use attention=mask or auto"
        )
    if (
        script.packing
        and script.attention == "flash"
        and (not cuda or importlib.util.find_spec("flash_attn") is None)
    ):
        raise PreflightError("attention=flash needs a GPU and the flash-attn package")
    if script.max_seq_length < 2:
        raise PreflightError(f"max_seq_length must be at least 2, got {script.max_seq_length}")
    if script.pack_length is not None and script.pack_length < script.max_seq_length:
        raise PreflightError(
            f"pack_length {script.pack_length} is shorter than max_seq_length"
            f" {script.max_seq_length}: a conversation would not fit a row"
        )
    resume = training.get("resume_from_checkpoint")
    named = isinstance(resume, str) and resume.lower() not in ("true", "false", "")
    if named and not Path(str(resume)).is_dir():
        raise PreflightError(f"resume_from_checkpoint: {resume} is not a checkpoint directory")


def check_model(script: ScriptArguments) -> int:
    """The model's config against the arguments; returns its maximum sequence length."""
    from transformers import AutoConfig

    path = Path(script.model_name_or_path)
    if not (path / "config.json").is_file():
        raise PreflightError(f"model {path}: no config.json (not a model directory)")
    from .model import remote_code

    trust = remote_code(script)
    try:
        config = AutoConfig.from_pretrained(str(path), trust_remote_code=trust)
    except Exception as exc:  # transformers raises several types for one cause: unusable
        if not trust and "trust_remote_code" in str(exc):
            raise PreflightError(
                f"model {path} runs its own code; set trust_remote_code true if you trust"
                " that code (Baichuan needs none: this trainer implements it)"
            ) from exc
        raise PreflightError(f"model {path}: cannot read its config: {exc}") from exc
    if script.packing and trust and getattr(config, "auto_map", None):
        raise PreflightError(
            f"packing isolates conversations through transformers' attention interface, and"
            f" model {path} runs its own attention code; train it without packing"
        )
    found = [(name, getattr(config, name, None)) for name in LENGTH_FIELDS]
    limits = [(name, value) for name, value in found if isinstance(value, int) and value > 0]
    if not limits:
        return script.row_length  # nothing declared: trust the arguments
    name, limit = limits[0]
    if script.row_length > limit:
        what = "pack_length" if script.packing and script.pack_length else "max_seq_length"
        raise PreflightError(
            f"{what}={script.row_length} is larger than model {path} supports"
            f" ({name}={limit} in its config.json); lower {what}"
        )
    return limit
