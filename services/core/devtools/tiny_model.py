"""A small Llama with random weights and Baichuan's special ids (bos 1, eos 2, pad 0), saved
as a model directory: the demo trains one, the serving tests answer with one."""

from __future__ import annotations

from pathlib import Path


def save_random_llama(
    out_dir: Path,
    *,
    vocab_size: int,
    hidden_size: int = 64,
    intermediate_size: int = 128,
    layers: int = 2,
    tie_word_embeddings: bool = False,
    seed: int = 0,
) -> None:
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(
        vocab_size=vocab_size,
        hidden_size=hidden_size,
        intermediate_size=intermediate_size,
        num_hidden_layers=layers,
        num_attention_heads=4,
        num_key_value_heads=4,
        max_position_embeddings=4096,  # DISC-MedLLM's model_max_length
        bos_token_id=1,
        eos_token_id=2,
        pad_token_id=0,
        tie_word_embeddings=tie_word_embeddings,
    )
    torch.manual_seed(seed)
    LlamaForCausalLM(config).save_pretrained(str(out_dir))
