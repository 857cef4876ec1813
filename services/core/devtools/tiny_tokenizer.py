"""A tiny Baichuan-shaped SentencePiece tokenizer, trained locally in about a second.

Development and tests cannot download Baichuan-13B's tokenizer, so this builds one with the
properties the format depends on: ids 0/1/2 = <unk>/<s>/</s>, user-defined pieces filling
ids 3..199 so that <reserved_102> = 195 and <reserved_103> = 196 (<reserved_106>/107 are
not reached: Baichuan2's markers are absent on purpose), identity normalization, no dummy
prefix, no whitespace folding, byte fallback — like Baichuan-13B's tokenizer.model.
"""

from __future__ import annotations

import io
from collections.abc import Iterable
from pathlib import Path

import orjson

RESERVED_OFFSET = 93  # <reserved_N> has id N + 93 in Baichuan-13B
MARKER_PIECES = [
    f"<reserved_{i - RESERVED_OFFSET}>" if i >= RESERVED_OFFSET else f"<special_{i}>"
    for i in range(3, 200)
]


def build_tiny_tokenizer(
    out_dir: Path,
    texts: Iterable[str],
    *,
    vocab_size: int = 3000,
    add_dummy_prefix: bool = False,
    byte_fallback: bool = True,
) -> Path:
    """Train on `texts` and write `out_dir/tokenizer.model`. `add_dummy_prefix=True` gives
    the Llama-style variant (dummy prefix, whitespace folding) for contrast in tests."""
    import sentencepiece as spm

    out_dir.mkdir(parents=True, exist_ok=True)
    model = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(texts),
        model_writer=model,
        vocab_size=vocab_size,
        model_type="bpe",
        unk_id=0,
        bos_id=1,
        eos_id=2,
        pad_id=-1,
        user_defined_symbols=MARKER_PIECES,
        byte_fallback=byte_fallback,
        split_digits=True,
        character_coverage=0.9995,
        normalization_rule_name="identity",
        add_dummy_prefix=add_dummy_prefix,
        remove_extra_whitespaces=add_dummy_prefix,
        minloglevel=2,
    )
    (out_dir / "tokenizer.model").write_bytes(model.getvalue())
    return out_dir


def jsonl_texts(path: Path) -> Iterable[str]:
    """Every message text of a DISC-MedLLM / OpenAI / Firefly JSONL file."""
    with path.open("rb") as f:
        for line in f:
            row = orjson.loads(line)
            for message in row.get("conversation") or row.get("messages") or []:
                for key in ("content", "human", "assistant"):
                    if isinstance(message.get(key), str):
                        yield message[key]


def build_tiny_bpe_tokenizer(
    out_dir: Path, texts: Iterable[str], *, vocab_size: int = 3000
) -> Path:
    """The same ids as `build_tiny_tokenizer` (<unk>/<s>/</s> = 0/1/2, <reserved_102>/103 =
    195/196) in a byte-level BPE saved as tokenizer.json, which every engine loads as it is
    (`transformers serve`, vLLM): the demo model's and the serving tests' tokenizer."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=["<unk>", "<s>", "</s>", *MARKER_PIECES],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(texts, trainer)
    return save_fast(tok, out_dir)


def save_fast(tok: object, out_dir: Path) -> Path:
    """A `tokenizers` tokenizer with Baichuan's special tokens as a Hugging Face directory."""
    from transformers import PreTrainedTokenizerFast

    fast = PreTrainedTokenizerFast(  # type: ignore[no-untyped-call]
        tokenizer_object=tok,
        bos_token="<s>",
        eos_token="</s>",
        unk_token="<unk>",
        pad_token="<unk>",
    )
    fast.save_pretrained(str(out_dir))
    return out_dir
