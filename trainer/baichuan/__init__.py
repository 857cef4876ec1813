"""Native Baichuan (7B: RoPE, 13B: ALiBi) for transformers 5, no `trust_remote_code`.

Importing this package registers model_type "baichuan" with AutoConfig and
AutoModelForCausalLM (once; importing again, or a second registration elsewhere of these
same classes, is harmless)."""

from __future__ import annotations

from transformers import AutoConfig, AutoModelForCausalLM

from .configuration import BaichuanConfig
from .modeling import BaichuanForCausalLM, BaichuanModel, BaichuanPreTrainedModel, alibi_slopes

__all__ = [
    "BaichuanConfig",
    "BaichuanForCausalLM",
    "BaichuanModel",
    "BaichuanPreTrainedModel",
    "alibi_slopes",
    "register",
]


def register() -> None:
    """Register the classes with the Auto factories; a no-op when already registered."""
    AutoConfig.register("baichuan", BaichuanConfig, exist_ok=True)
    AutoModelForCausalLM.register(BaichuanConfig, BaichuanForCausalLM, exist_ok=True)


register()
