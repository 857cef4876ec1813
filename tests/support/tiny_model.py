"""A tiny random-weight causal LM that speaks the marker tokenizer's ids, for tests that need
a real inference server (`transformers serve`) without downloading a model."""

from __future__ import annotations

import shutil
from pathlib import Path


def build_tiny_marker_model(out_dir: Path, tokenizer_dir: Path, *, seed: int = 0) -> Path:
    """Save a 2-layer Llama with random weights (fixed seed), the tokenizer of `tokenizer_dir`
    and a generation config into `out_dir`; returns `out_dir`. Takes about a second.

    Its output is noise: it exists to test the serving plumbing, not answers."""
    from transformers import AutoTokenizer, GenerationConfig

    from services.core.devtools.tiny_model import save_random_llama

    out_dir.mkdir(parents=True, exist_ok=True)
    for f in tokenizer_dir.iterdir():
        if f.is_file():
            shutil.copy2(f, out_dir / f.name)
    vocab = len(AutoTokenizer.from_pretrained(str(tokenizer_dir)))
    save_random_llama(out_dir, vocab_size=vocab, seed=seed)
    GenerationConfig(bos_token_id=1, eos_token_id=2, pad_token_id=0).save_pretrained(str(out_dir))
    return out_dir
