"""A tiny Baichuan checkpoint in the original layout (W_pack, Baichuan's config keys), and the
same weights rewritten as a Llama (q/k/v split out of W_pack, rotary positions): the engine
probe's subject and its negative control.

Random weights are drawn wide (std 0.15, norms around 1) so that attention patterns, and so
the position scheme, change the logprobs visibly; at the usual 0.02 every position predicts
nearly the uniform distribution and a wrong position scheme would hide in it."""

from __future__ import annotations

import json
import shutil
from pathlib import Path


def _copy_tokenizer(tokenizer_dir: Path, out_dir: Path) -> None:
    for f in tokenizer_dir.iterdir():
        if f.is_file():
            shutil.copy2(f, out_dir / f.name)


def build_tiny_baichuan(
    out_dir: Path,
    tokenizer_dir: Path,
    *,
    position_embedding: str = "alibi",
    hidden_size: int = 128,
    heads: int = 4,  # head size 32: vLLM's CPU attention wants at least that
    layers: int = 2,
    seed: int = 0,
) -> Path:
    """Save a Baichuan-13B-shaped (ALiBi) or -7B-shaped (RoPE) model with the tokenizer of
    `tokenizer_dir`; config.json as the originals write it (model_max_length for the 13B,
    max_position_embeddings for the 7B). Returns `out_dir`."""
    import torch
    from transformers import AutoTokenizer, GenerationConfig

    from trainer.baichuan import BaichuanConfig, BaichuanForCausalLM

    out_dir.mkdir(parents=True, exist_ok=True)
    _copy_tokenizer(tokenizer_dir, out_dir)
    alibi = position_embedding == "alibi"
    config = BaichuanConfig(
        vocab_size=len(AutoTokenizer.from_pretrained(str(tokenizer_dir))),
        hidden_size=hidden_size,
        intermediate_size=2 * hidden_size,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        position_embedding=position_embedding,
        architectures=["BaichuanForCausalLM"],
        model_max_length=4096 if alibi else None,
        max_position_embeddings=None if alibi else 4096,
    )
    torch.manual_seed(seed)
    model = BaichuanForCausalLM(config)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("norm.weight"):
                p.copy_(1 + 0.2 * torch.randn_like(p))
            else:
                p.normal_(0.0, 0.15)
    model.save_pretrained(str(out_dir))
    GenerationConfig(bos_token_id=1, eos_token_id=2, pad_token_id=0).save_pretrained(str(out_dir))
    return out_dir


def baichuan_as_llama(src: Path, out_dir: Path) -> Path:
    """The same weights as a LlamaForCausalLM: W_pack's rows are [q; k; v] (each hidden_size
    wide), every other tensor keeps its name. Llama applies rotary positions (theta 10000,
    rotate-half, as Baichuan-7B), so this equals a Baichuan-7B checkpoint and differs from a
    Baichuan-13B one, which uses ALiBi."""
    from safetensors.torch import load_file, save_file
    from transformers import LlamaConfig

    source = json.loads((src / "config.json").read_text())
    state = load_file(str(src / "model.safetensors"))
    converted = {}
    for name, tensor in state.items():
        if name.endswith("self_attn.W_pack.weight"):
            prefix = name.removesuffix("W_pack.weight")
            q, k, v = tensor.chunk(3, dim=0)
            converted.update(
                {
                    f"{prefix}q_proj.weight": q.contiguous(),
                    f"{prefix}k_proj.weight": k.contiguous(),
                    f"{prefix}v_proj.weight": v.contiguous(),
                }
            )
        else:
            converted[name] = tensor
    out_dir.mkdir(parents=True, exist_ok=True)
    _copy_tokenizer(src, out_dir)
    for leftover in ("config.json", "model.safetensors"):
        (out_dir / leftover).unlink(missing_ok=True)
    LlamaConfig(
        vocab_size=source["vocab_size"],
        hidden_size=source["hidden_size"],
        intermediate_size=source["intermediate_size"],
        num_hidden_layers=source["num_hidden_layers"],
        num_attention_heads=source["num_attention_heads"],
        num_key_value_heads=source["num_attention_heads"],
        max_position_embeddings=4096,
        rms_norm_eps=source.get("rms_norm_eps", 1e-6),
        rope_parameters={"rope_type": "default", "rope_theta": source.get("rope_theta", 1e4)},
        hidden_act="silu",
        bos_token_id=1,
        eos_token_id=2,
        pad_token_id=0,
        tie_word_embeddings=False,
        architectures=["LlamaForCausalLM"],
    ).save_pretrained(str(out_dir))
    save_file(converted, str(out_dir / "model.safetensors"), metadata={"format": "pt"})
    return out_dir
