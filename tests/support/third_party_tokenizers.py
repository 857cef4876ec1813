"""Tokenizers the project did not write, trained in the test from the DISC-MedLLM examples
(seconds, no downloads), all with Baichuan's ids where the disc-medllm profile needs them:
<unk>=0, <s>=1, </s>=2, <reserved_102>=195, <reserved_103>=196 (MARKER_PIECES fill 3..199).

- `sp_byte_fallback`: SentencePiece BPE with byte fallback (the project's tiny tokenizer);
- `sp_no_byte_fallback`: the same training, byte fallback off (rare characters are <unk>);
- `bpe_no_ascii`: a plain `tokenizers` BPE, no byte fallback, Whitespace pre-tokenizer,
  trained on the dialogue text with every ASCII character removed (`?`, letters, digits
  are all <unk>): the tokenizer that crashed `medchat up` with ControlTokenLeak;
- `byte_level`: a GPT-2 / Qwen style byte-level BPE (NFC, Qwen's split regex, ByteLevel).
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

from services.core.devtools.tiny_tokenizer import MARKER_PIECES, build_tiny_tokenizer, save_fast
from tests.support.tokenizers import corpus

SPECIALS = ["<unk>", "<s>", "</s>", *MARKER_PIECES]
# Qwen2's pre-tokenization regex (contractions, letters, single digits, punctuation, spaces).
QWEN_PATTERN = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}"
    r"| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
)


def chinese_only_corpus() -> Iterator[str]:
    """The dialogue text with every ASCII character removed (what is left is non-empty)."""
    for text in corpus():
        stripped = "".join(c for c in text if not c.isascii())
        if stripped:
            yield stripped


def build_sp_byte_fallback(out_dir: Path) -> Path:
    return build_tiny_tokenizer(out_dir, corpus())


def build_sp_no_byte_fallback(out_dir: Path) -> Path:
    """As `build_tiny_tokenizer` (Baichuan-shaped), but without byte fallback."""
    return build_tiny_tokenizer(out_dir, corpus(), byte_fallback=False)


def build_bpe_no_ascii(out_dir: Path) -> Path:
    """BPE without byte fallback, `<unk>` for anything unseen, trained on Chinese only."""
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    trainer = trainers.BpeTrainer(vocab_size=3000, special_tokens=SPECIALS, show_progress=False)
    tok.train_from_iterator(chinese_only_corpus(), trainer)
    return save_fast(tok, out_dir)


def build_byte_level_bpe(out_dir: Path) -> Path:
    """GPT-2 / Qwen style: NFC, Qwen's split regex, byte-level alphabet and decoder."""
    from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE())
    tok.normalizer = normalizers.NFC()
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(QWEN_PATTERN), behavior="isolated"),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ]
    )
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=3000,
        special_tokens=SPECIALS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(corpus(), trainer)
    return save_fast(tok, out_dir)


def build_bpe_without_stand_ins(out_dir: Path) -> Path:
    """A BPE that knows none of the stand-ins ContentEncoder tries (`?`, `？`, U+FFFD, `*`,
    `_`, `-`, space): no pre-tokenizer (so a space is a character like any other), trained on
    the Chinese text without ASCII, full-width question marks or U+FFFD."""
    from tokenizers import Tokenizer, models, trainers

    from services.core.chatformat.neutralize import UNKNOWN_REPLACEMENTS

    banned = set(UNKNOWN_REPLACEMENTS)
    texts = ("".join(c for c in t if c not in banned) for t in chinese_only_corpus())
    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    trainer = trainers.BpeTrainer(vocab_size=3000, special_tokens=SPECIALS, show_progress=False)
    tok.train_from_iterator((t for t in texts if t), trainer)
    return save_fast(tok, out_dir)


BUILDERS: dict[str, Callable[[Path], Path]] = {
    "sp_byte_fallback": build_sp_byte_fallback,
    "sp_no_byte_fallback": build_sp_no_byte_fallback,
    "bpe_no_ascii": build_bpe_no_ascii,
    "byte_level": build_byte_level_bpe,
}
SENTENCEPIECE_KINDS = frozenset({"sp_byte_fallback", "sp_no_byte_fallback"})


def build_tiny_model(out_dir: Path, tokenizer_dir: Path, *, seed: int = 0) -> Path:
    """`tests.support.tiny_model.build_tiny_marker_model` for any of these tokenizers: the
    vocabulary size is read with the format module's loader (a bare tokenizer.model is not
    something AutoTokenizer is asked to load here)."""
    import torch
    from transformers import GenerationConfig, LlamaConfig, LlamaForCausalLM

    from services.core.chatformat import load_tokenizer

    out_dir.mkdir(parents=True, exist_ok=True)
    for f in tokenizer_dir.iterdir():
        if f.is_file():
            shutil.copy2(f, out_dir / f.name)
    config = LlamaConfig(
        vocab_size=load_tokenizer(tokenizer_dir).vocab_size,
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=4,
        max_position_embeddings=4096,
        bos_token_id=1,
        eos_token_id=2,
        pad_token_id=0,
        tie_word_embeddings=False,
    )
    torch.manual_seed(seed)
    LlamaForCausalLM(config).save_pretrained(str(out_dir))
    GenerationConfig(bos_token_id=1, eos_token_id=2, pad_token_id=0).save_pretrained(str(out_dir))
    return out_dir
