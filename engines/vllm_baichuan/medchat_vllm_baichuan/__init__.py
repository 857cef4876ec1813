"""Baichuan-7B and Baichuan-13B (DISC-MedLLM's base) for current vLLM, out of tree.

vLLM removed both architectures after v0.23.0 (vllm-project/vllm PR #46362). This package
puts them back through vLLM's plugin mechanism: the `vllm.general_plugins` entry point
`baichuan` names `register`, which vLLM calls in the API server, the engine core and every
worker before it reads the model's config.

`register` makes config.json's `model_type: baichuan` readable without remote code and maps
both architecture names to model.py's class (imported lazily, by vLLM, only where a model is
built). transformers 5 prefers an explicitly registered config class to a checkpoint's
`auto_map` even under `--trust-remote-code` (which Baichuan's tokenizer may need), so the
2023 configuration_baichuan.py is never run; model.py would read that config correctly too
(configuration.position_embedding_of).
"""

from __future__ import annotations

ARCHITECTURES = {
    "BaichuanForCausalLM": "medchat_vllm_baichuan.model:BaichuanForCausalLM",  # 13B: ALiBi
    "BaiChuanForCausalLM": "medchat_vllm_baichuan.model:BaiChuanForCausalLM",  # 7B: RoPE
}


def register() -> None:
    """Register the config with transformers and the model with vLLM (idempotent)."""
    from transformers import AutoConfig
    from vllm import ModelRegistry

    from .configuration import BaichuanConfig

    AutoConfig.register("baichuan", BaichuanConfig, exist_ok=True)
    for architecture, target in ARCHITECTURES.items():
        ModelRegistry.register_model(architecture, target)
