"""A tiny random-weight causal LM that speaks the marker tokenizer's ids, for tests that need
a real inference server (`transformers serve`) without downloading a model."""

from __future__ import annotations

import shutil
from pathlib import Path


def build_tiny_marker_model(out_dir: Path, tokenizer_dir: Path, *, seed: int = 0) -> Path:
    """Save a 2-layer Llama with random weights (fixed seed), the tokenizer of `tokenizer_dir`
    and a generation config into `out_dir`; returns `out_dir`. Takes about a second.

    Its output is noise: it exists to test the serving plumbing, not answers."""
    import torch
    from transformers import AutoTokenizer, GenerationConfig, LlamaConfig, LlamaForCausalLM

    out_dir.mkdir(parents=True, exist_ok=True)
    for f in tokenizer_dir.iterdir():
        if f.is_file():
            shutil.copy2(f, out_dir / f.name)
    vocab = len(AutoTokenizer.from_pretrained(str(tokenizer_dir)))
    config = LlamaConfig(
        vocab_size=vocab,
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=4,
        max_position_embeddings=4096,  # DISC-MedLLM's model_max_length
        bos_token_id=1,
        eos_token_id=2,
        pad_token_id=0,
        tie_word_embeddings=False,
    )
    torch.manual_seed(seed)
    model = LlamaForCausalLM(config)
    model.save_pretrained(str(out_dir))
    GenerationConfig(bos_token_id=1, eos_token_id=2, pad_token_id=0).save_pretrained(str(out_dir))
    return out_dir
