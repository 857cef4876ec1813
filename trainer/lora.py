"""LoRA and QLoRA through peft (imported only when asked for)."""

from __future__ import annotations

from typing import Any

from .args import ScriptArguments


def quantization_config() -> Any:
    """QLoRA's base: 4-bit NF4 with double quantization, bf16 compute (the QLoRA paper's)."""
    import torch
    from transformers import BitsAndBytesConfig

    return BitsAndBytesConfig(  # type: ignore[no-untyped-call]
        load_in_4bit=True,
        bnb_4bit_quant_type="nf4",
        bnb_4bit_use_double_quant=True,
        bnb_4bit_compute_dtype=torch.bfloat16,
    )


def target_modules(spec: str) -> str | list[str]:
    return "all-linear" if spec == "all-linear" else [m.strip() for m in spec.split(",") if m]


def apply_lora(model: Any, script: ScriptArguments, *, gradient_checkpointing: bool) -> Any:
    from peft import LoraConfig, get_peft_model, prepare_model_for_kbit_training

    if script.qlora:
        model = prepare_model_for_kbit_training(  # type: ignore[no-untyped-call]
            model, use_gradient_checkpointing=gradient_checkpointing
        )
    elif gradient_checkpointing:
        # The embeddings are frozen: without this, a checkpointed block's input needs no
        # gradient and the adapters inside it would get none.
        model.enable_input_require_grads()
    config = LoraConfig(
        r=script.lora_r,
        lora_alpha=script.lora_alpha,
        lora_dropout=script.lora_dropout,
        target_modules=target_modules(script.lora_target_modules),
        bias="none",
        task_type="CAUSAL_LM",
    )
    return get_peft_model(model, config)
