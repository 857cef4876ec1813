"""Tokenizer loading: a Hugging Face tokenizer directory, or a bare SentencePiece model.

Baichuan-13B (so DISC-MedLLM) ships only `tokenizer.model` plus remote code that breaks on
transformers >= 4.34; we read the SentencePiece model directly and never run remote code.

Two ways to encode, kept apart on purpose:
- `encode_batch` encodes *content* (patient or data-file text): special-token strings are
  never parsed, no BOS is added. Renderers neutralize the text first (see neutralize.py).
- `encode_text_form` tokenizes a whole prompt string the way an inference engine's router
  does (special-token strings become their ids), to prove the text form we send equals the
  id form we trained on.
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from collections.abc import Sequence
from functools import cached_property
from pathlib import Path
from typing import Any

from .sentencepiece_model import PieceType, piece_types


class TokenizerLoadError(ValueError):
    pass


class Tokenizer(ABC):
    """What the format module needs from a tokenizer."""

    name: str
    vocab_size: int
    bos_id: int | None
    eos_id: int | None
    unk_id: int | None
    # Every id plain content must never produce: control, unknown, unused, user-defined,
    # added tokens. Markers like <reserved_102> are among them.
    special_ids: frozenset[int]
    # Strings a user could type that a tokenizer would turn into one of special_ids.
    special_strings: tuple[str, ...]
    chat_template: str | None = None

    @abstractmethod
    def token_to_id(self, token: str) -> int | None: ...

    @abstractmethod
    def id_to_token(self, token_id: int) -> str: ...

    @abstractmethod
    def encode_batch(self, texts: Sequence[str]) -> list[list[int]]:
        """Content ids: no special-token parsing, no BOS."""

    def encode(self, text: str) -> list[int]:
        return self.encode_batch([text])[0]

    @abstractmethod
    def encode_text_form(self, text: str) -> list[int]:
        """Ids of a full prompt string, special-token strings parsed as an engine does."""

    @abstractmethod
    def decode(self, ids: Sequence[int]) -> str: ...

    def single_threaded(self) -> None:  # noqa: B027 (optional hook, nothing to do by default)
        """Encode on the calling thread only (when processes already fill the cores)."""


class SentencePieceTokenizer(Tokenizer):
    """A bare `tokenizer.model`, read with the sentencepiece library."""

    def __init__(self, model_path: Path):
        import sentencepiece as spm

        proto = model_path.read_bytes()
        try:
            self._sp = spm.SentencePieceProcessor(model_proto=proto)
            types = piece_types(proto)
        except (RuntimeError, ValueError, IndexError) as exc:
            raise TokenizerLoadError(f"{model_path} is not a SentencePiece model: {exc}") from exc
        self.name = str(model_path)
        self._threads = -1  # sentencepiece: all cores
        self.vocab_size = self._sp.get_piece_size()
        self.bos_id = _nonneg(self._sp.bos_id())
        self.eos_id = _nonneg(self._sp.eos_id())
        unk = _nonneg(self._sp.unk_id())
        self._has_byte_fallback = PieceType.BYTE in types
        # With byte fallback every character encodes to real pieces: unk never appears.
        self.unk_id = None if self._has_byte_fallback else unk
        special = {i for i, t in enumerate(types) if t not in (PieceType.NORMAL, PieceType.BYTE)}
        self.special_ids = frozenset(special)
        self.special_strings = tuple(self._sp.id_to_piece(i) for i in sorted(special))
        # The engine's (transformers slow) tokenizer splits the text on its declared special
        # tokens (control pieces such as <s>, </s>) before SentencePiece sees it;
        # SentencePiece itself matches user-defined pieces such as <reserved_102>.
        control = [
            self._sp.id_to_piece(i)
            for i, t in enumerate(types)
            if t in (PieceType.CONTROL, PieceType.UNKNOWN)
        ]
        self._control_split = re.compile(
            "(" + "|".join(re.escape(s) for s in sorted(control, key=len, reverse=True)) + ")"
        )
        self._control_ids = {s: self._sp.piece_to_id(s) for s in control}

    def token_to_id(self, token: str) -> int | None:
        token_id = int(self._sp.piece_to_id(token))
        # piece_to_id answers unk for unknown pieces; only trust it when it round-trips.
        return token_id if self._sp.id_to_piece(token_id) == token else None

    def id_to_token(self, token_id: int) -> str:
        return str(self._sp.id_to_piece(token_id))

    def encode_batch(self, texts: Sequence[str]) -> list[list[int]]:
        if self._threads == 1:  # measured: a plain loop beats the 1-thread batch call
            return [self._sp.encode(t) for t in texts]
        # One C++ call for the whole batch, spread over all cores, GIL released.
        return self._sp.encode(list(texts), num_threads=self._threads)  # type: ignore[no-any-return]

    def single_threaded(self) -> None:
        self._threads = 1

    def encode_text_form(self, text: str) -> list[int]:
        ids: list[int] = []
        for part in self._control_split.split(text):
            if not part:
                continue
            control_id = self._control_ids.get(part)
            ids.extend([control_id] if control_id is not None else self._sp.encode(part))
        return ids

    def decode(self, ids: Sequence[int]) -> str:
        return str(self._sp.decode(list(ids)))


class HFTokenizer(Tokenizer):
    """A Hugging Face tokenizer directory (tokenizer.json or a slow tokenizer), no remote code."""

    def __init__(self, path: Path):
        from transformers import AutoTokenizer

        try:
            self._tok: Any = AutoTokenizer.from_pretrained(str(path), trust_remote_code=False)
        except Exception as exc:  # transformers raises many types here; all mean "cannot load"
            raise TokenizerLoadError(
                f"cannot load a Hugging Face tokenizer from {path}: {exc}"
            ) from exc
        tok = self._tok
        self.name = str(path)
        self.vocab_size = len(tok)
        self.bos_id = tok.bos_token_id
        self.eos_id = tok.eos_token_id
        self.unk_id = tok.unk_token_id
        added = dict(tok.added_tokens_decoder)  # every added token is parsed out of raw text
        special = set(tok.all_special_ids) | set(added)
        self.special_ids = frozenset(i for i in special if i is not None)
        self.special_strings = tuple(
            sorted({str(t) for t in tok.all_special_tokens} | {t.content for t in added.values()})
        )
        self.chat_template = tok.chat_template

    @property
    def backend(self) -> Any:
        """The transformers tokenizer, for chat templates and offsets."""
        return self._tok

    def token_to_id(self, token: str) -> int | None:
        token_id = self._tok.convert_tokens_to_ids(token)
        if token_id is None or (token_id == self.unk_id and token != self._tok.unk_token):
            return None
        return int(token_id)

    def id_to_token(self, token_id: int) -> str:
        return str(self._tok.convert_ids_to_tokens(token_id))

    def encode_batch(self, texts: Sequence[str]) -> list[list[int]]:
        if not texts:
            return []
        out = self._tok(
            list(texts),
            add_special_tokens=False,
            split_special_tokens=True,  # content never turns into special tokens
            return_attention_mask=False,
        )
        return [list(ids) for ids in out["input_ids"]]

    def encode_text_form(self, text: str) -> list[int]:
        return list(self._tok(text, add_special_tokens=False)["input_ids"])

    def decode(self, ids: Sequence[int]) -> str:
        return str(self._tok.decode(list(ids)))

    @cached_property
    def is_fast(self) -> bool:
        return bool(getattr(self._tok, "is_fast", False))


def _nonneg(value: int) -> int | None:
    return value if value >= 0 else None


def load_tokenizer(path: str | Path) -> Tokenizer:
    """Load from a directory (or a .model file).

    `tokenizer.json` present → Hugging Face fast tokenizer. Otherwise a `tokenizer.model` is
    read directly with SentencePiece (Baichuan-13B / DISC-MedLLM, whose remote tokenizer code
    breaks on current transformers). Otherwise any slow tokenizer transformers can load.
    """
    p = Path(path)
    if p.is_file() and p.suffix == ".model":
        return SentencePieceTokenizer(p)
    if not p.is_dir():
        raise TokenizerLoadError(f"tokenizer path {p} does not exist or is not a directory")
    if (p / "tokenizer.json").is_file():
        return HFTokenizer(p)
    if (p / "tokenizer.model").is_file():
        return SentencePieceTokenizer(p / "tokenizer.model")
    if (p / "tokenizer_config.json").is_file():
        return HFTokenizer(p)
    raise TokenizerLoadError(
        f"{p} holds no tokenizer.json, tokenizer.model or tokenizer_config.json"
    )
