"""Tiny tokenizers trained on DISC-MedLLM text, with Baichuan's special ids where they matter."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

from services.core.devtools.tiny_tokenizer import build_tiny_bpe_tokenizer, build_tiny_tokenizer

SHARED = Path(__file__).resolve().parents[3] / "shared"
SFT_EXAMPLES = SHARED / "data" / "disc-medllm" / "sft_examples.jsonl"


def corpus() -> Iterator[str]:
    with SFT_EXAMPLES.open(encoding="utf-8") as f:
        for line in f:
            for message in json.loads(line)["conversation"]:
                yield message["content"]
    # Some English and markup so the tiny vocabulary is not Chinese-only.
    yield "The patient reports chest pain and shortness of breath since this morning."
    yield "Headache, fever 38.5 °C, <b>cough</b> for 3 days; no allergies [none]."


def build_baichuan_like_sentencepiece(out_dir: Path, *, add_dummy_prefix: bool = False) -> Path:
    return build_tiny_tokenizer(out_dir, corpus(), add_dummy_prefix=add_dummy_prefix)


def _train_bpe(specials: list[str], vocab_size: int) -> object:
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=specials,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(corpus(), trainer)
    return tok


def build_marker_hf_tokenizer(out_dir: Path) -> Path:
    return build_tiny_bpe_tokenizer(out_dir, corpus())


CHATML_TEMPLATE = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n"
    "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


def build_chatml_hf_tokenizer(out_dir: Path) -> Path:
    from transformers import PreTrainedTokenizerFast

    tok = _train_bpe(["<|endoftext|>", "<|im_start|>", "<|im_end|>"], 2000)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok, eos_token="<|im_end|>", pad_token="<|endoftext|>"
    )
    fast.chat_template = CHATML_TEMPLATE
    fast.save_pretrained(str(out_dir))
    return out_dir
