"""Loading the model to train: dtype, attention implementation, LoRA/QLoRA."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from typing import Any

import torch

from .args import ScriptArguments
from .lora import apply_lora, quantization_config

# What each isolation of packed rows needs from transformers' attention interface.
ATTENTION = {"flash": "flash_attention_2", "flex": "flex_attention", "mask": "sdpa"}

DTYPES = {"bfloat16": torch.bfloat16, "float16": torch.float16, "float32": torch.float32}


NATIVE_MODEL_TYPES = ("baichuan",)  # implemented here (trainer/baichuan): no remote code


def config_json(model_path: str) -> dict[str, Any]:
    try:
        value = json.loads((Path(model_path) / "config.json").read_text())
    except (OSError, ValueError):
        return {}
    return value if isinstance(value, dict) else {}


def remote_code(script: ScriptArguments) -> bool:
    """Whether to run the model's own code: only when asked, and never for a model type this
    trainer implements (Baichuan's 2023 remote code breaks on current transformers, and it
    cannot isolate packed conversations)."""
    if config_json(script.model_name_or_path).get("model_type") in NATIVE_MODEL_TYPES:
        from . import baichuan

        baichuan.register()
        return False
    return script.trust_remote_code


def uses_alibi(script: ScriptArguments) -> bool:
    config = config_json(script.model_name_or_path)
    if config.get("model_type") != "baichuan":
        return False
    from .baichuan import BaichuanConfig

    return BaichuanConfig(**config).position_embedding == "alibi"


def resolve_isolation(script: ScriptArguments, *, cuda: bool) -> str | None:
    """None without packing; otherwise flash-attn varlen where it is installed on a GPU
    (not for ALiBi models: transformers' flash path takes no ALiBi bias), FlexAttention on
    other GPUs, the 4D mask on a CPU (FlexAttention has no CPU backward)."""
    if not script.packing:
        return None
    if script.attention != "auto":
        return script.attention
    if cuda and importlib.util.find_spec("flash_attn") is not None and not uses_alibi(script):
        return "flash"
    return "flex" if cuda else "mask"


def model_dtype(script: ScriptArguments, training_args: Any) -> torch.dtype:
    if script.model_dtype != "auto":
        return DTYPES[script.model_dtype]
    half = torch.bfloat16 if training_args.bf16 else torch.float16
    if training_args.deepspeed or script.qlora:
        # DeepSpeed keeps fp32 master weights itself; QLoRA's base is 4-bit anyway.
        return half if (training_args.bf16 or training_args.fp16) else torch.float32
    if script.lora and (training_args.bf16 or training_args.fp16):
        return half  # a frozen base needs no fp32 master copy
    # A full fine-tune without DeepSpeed: fp32 weights for the optimizer, autocast for math.
    return torch.float32


def load_model(script: ScriptArguments, training_args: Any, isolation: str | None) -> Any:
    from transformers import AutoModelForCausalLM

    kwargs: dict[str, Any] = {
        "dtype": model_dtype(script, training_args),
        "trust_remote_code": remote_code(script),
    }
    if isolation is not None:
        kwargs["attn_implementation"] = ATTENTION[isolation]
    if script.qlora:
        kwargs["quantization_config"] = quantization_config()
    model = AutoModelForCausalLM.from_pretrained(script.model_name_or_path, **kwargs)
    model.config.use_cache = False  # the KV cache serves generation; training only pays for it
    if script.lora or script.qlora:
        model = apply_lora(
            model, script, gradient_checkpointing=bool(training_args.gradient_checkpointing)
        )
    return model
