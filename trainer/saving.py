"""The final save: a directory an inference engine loads as is (weights or adapter, the
tokenizer files, a generation config with the profile's defaults)."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Any

from services.core.chatformat import ModelProfile, Tokenizer

from .args import ScriptArguments

# Files of a tokenizer (and Baichuan's remote tokenizer code) copied from the base model.
TOKENIZER_FILES = (
    "tokenizer.json",
    "tokenizer.model",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "added_tokens.json",
    "chat_template.jinja",
    "vocab.json",
    "merges.txt",
)
REMOTE_CODE_GLOB = "tokenization_*.py"
ADAPTER_FILES = ("adapter_config.json", "adapter_model.safetensors", "adapter_model.bin")


def saved_kind(script: ScriptArguments) -> str:
    if not (script.lora or script.qlora):
        return "full"
    return "merged" if script.save_merged else "adapter"


def save_final(trainer: Any, script: ScriptArguments, output_dir: str) -> str:
    """Every rank calls this (ZeRO-3 gathers the weights collectively); rank 0 writes."""
    kind = saved_kind(script)
    model = trainer.accelerator.unwrap_model(trainer.model)
    model.config.use_cache = True  # what is saved is for generation
    if kind != "merged":
        trainer.save_model(output_dir)
        return kind
    if not (trainer.is_deepspeed_enabled or script.qlora):
        if trainer.is_world_process_zero():
            # Weights are whole in this process: merge in place.
            model.merge_and_unload().save_pretrained(output_dir)
        return kind
    # ZeRO-3 partitions the weights and QLoRA's are 4-bit: save the adapter, then merge it
    # into a fresh full-precision copy of the base on rank 0.
    with tempfile.TemporaryDirectory(dir=Path(output_dir).parent) as tmp:
        trainer.save_model(tmp)
        if trainer.is_world_process_zero():
            merge_adapter(script, tmp, output_dir)
        trainer.accelerator.wait_for_everyone()
    return kind


def merge_adapter(script: ScriptArguments, adapter_dir: str, output_dir: str) -> None:
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    base = AutoModelForCausalLM.from_pretrained(
        script.model_name_or_path,
        dtype=torch.bfloat16,  # the released dtype of DISC-MedLLM and most bases
        trust_remote_code=script.trust_remote_code,
    )
    merged = PeftModel.from_pretrained(base, adapter_dir).merge_and_unload()
    merged.config.use_cache = True
    merged.save_pretrained(output_dir)


def write_inference_files(
    script: ScriptArguments,
    output_dir: str,
    tokenizer: Tokenizer,
    profile: ModelProfile,
    pad_id: int,
) -> None:
    """Tokenizer files and generation config next to the weights (rank 0)."""
    from transformers import GenerationConfig

    source, target = Path(script.model_name_or_path), Path(output_dir)
    target.mkdir(parents=True, exist_ok=True)
    names = [n for n in TOKENIZER_FILES if (source / n).is_file()]
    if script.trust_remote_code:
        names += [p.name for p in source.glob(REMOTE_CODE_GLOB)]
    for name in names:
        if source.resolve() != target.resolve():
            shutil.copy2(source / name, target / name)
    g = profile.generation
    extra: dict[str, Any] = {}
    if profile.user_token and profile.assistant_token:
        # Baichuan's generation_config.json names its turn markers the same way.
        extra["user_token_id"] = tokenizer.token_to_id(profile.user_token)
        extra["assistant_token_id"] = tokenizer.token_to_id(profile.assistant_token)
    GenerationConfig(  # type: ignore[no-untyped-call]
        do_sample=g.do_sample,
        temperature=g.temperature,
        top_k=g.top_k,
        top_p=g.top_p,
        repetition_penalty=g.repetition_penalty,
        max_new_tokens=g.max_new_tokens,
        bos_token_id=tokenizer.bos_id,
        eos_token_id=tokenizer.eos_id,
        pad_token_id=pad_id,
        **extra,
    ).save_pretrained(str(target))
