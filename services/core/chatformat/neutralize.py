"""Control-token neutralization: content never becomes a control id, in either form.

A patient who types `<reserved_103>` or `</s>` must not close their turn and speak as the
assistant; a data file must not smuggle markers into training. The transformation:

1. Wherever a special-token string (`<s>`, `</s>`, `<unk>`, `<reserved_N>`, `<|im_end|>`...)
   starts in the text, its first character is replaced by a look-alike that no tokenizer
   normalizes back: `<` → `‹` (U+2039), `[` → `⁅`, `{` → `❴`, `|` → `¦`, anything else → `�`.
   Matching is done on the NFKC form of each character, so full-width spellings such as
   `＜/s＞` (which NFKC-normalizing tokenizers would fold to `</s>`) are caught too. Text that
   spells no special token is left byte-for-byte unchanged.
2. For tokenizers without byte fallback, characters that would encode to the unknown id are
   replaced by the first of `UNKNOWN_REPLACEMENTS` that this tokenizer encodes cleanly (probed
   once per tokenizer), or dropped when none does: content never fails for being unfamiliar
   (Baichuan has byte fallback, so this never fires for DISC-MedLLM).
3. Fail closed: if an encoded content still holds a special id, `ControlTokenLeak` is raised
   rather than sending or training on it.

The neutralized text is what both the id form and the text form are built from, so they agree.
Stored messages are never rewritten; this happens only when rendering.
"""

from __future__ import annotations

import re
import sys
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property, lru_cache
from itertools import chain

from .tokenizer import Tokenizer

LOOKALIKES = {"<": "\u2039", "[": "\u2045", "{": "\u2774", "|": "\u00a6"}
FALLBACK = "\ufffd"
# Stand-ins for a character the tokenizer does not know, in order of preference.
UNKNOWN_REPLACEMENTS = ("?", "？", FALLBACK, "*", "_", "-", " ")


class ControlTokenLeak(RuntimeError):
    """Content encoded to a special id despite neutralization: refuse rather than send it."""


@dataclass(frozen=True, slots=True)
class Content:
    text: str  # the neutralized text, as it appears in the prompt's text form
    ids: list[int]


@lru_cache(maxsize=4)
def _trigger_chars(first_chars: frozenset[str]) -> frozenset[str]:
    """Every character whose NFKC form starts with one of `first_chars` (e.g. < ＜ ﹤)."""
    found = set(first_chars)
    for cp in range(sys.maxunicode + 1):
        ch = chr(cp)
        if not ch.isascii() and unicodedata.normalize("NFKC", ch)[:1] in first_chars:
            found.add(ch)
    return frozenset(found)


class Neutralizer:
    def __init__(self, special_strings: Sequence[str]):
        self._specials = tuple(s for s in special_strings if s)
        self._window = max((len(s) for s in self._specials), default=0)
        firsts = frozenset(s[0] for s in self._specials)
        triggers = _trigger_chars(firsts) if firsts else frozenset()
        self._trigger = (
            re.compile("[" + "".join(re.escape(c) for c in sorted(triggers)) + "]")
            if triggers
            else None
        )

    def __call__(self, text: str) -> str:
        if self._trigger is None or self._trigger.search(text) is None:
            return text  # the common case: one C-level scan, no copy
        chars: list[str] | None = None
        for match in self._trigger.finditer(text):
            i = match.start()
            folded = "".join(unicodedata.normalize("NFKC", c) for c in text[i : i + self._window])
            if folded.startswith(self._specials):
                chars = chars or list(text)
                chars[i] = LOOKALIKES.get(folded[0], FALLBACK)
        return text if chars is None else "".join(chars)


class ContentEncoder:
    """Neutralizes and encodes content for one tokenizer (and a format's own marker tokens)."""

    def __init__(self, tokenizer: Tokenizer, extra_special: dict[str, int] | None = None):
        extra = extra_special or {}
        self.tokenizer = tokenizer
        self.forbidden_ids = tokenizer.special_ids | frozenset(extra.values())
        self.neutralize = Neutralizer((*tokenizer.special_strings, *extra))
        # Special ids usually sit at one end of the vocabulary (SentencePiece: the start,
        # added tokens: the end), so one min() or max() over a whole batch clears it.
        self._lo = min(self.forbidden_ids, default=0)
        self._hi = max(self.forbidden_ids, default=-1)
        self._low_end = self._hi < tokenizer.vocab_size // 2

    def encode_ids(self, texts: Sequence[str]) -> tuple[list[str], list[list[int]]]:
        """Neutralized texts and their ids, one batch call to the tokenizer."""
        clean = [self.neutralize(t) for t in texts]
        encoded = self.tokenizer.encode_batch(clean)
        if not self._batch_is_clean(encoded):
            for i, ids in enumerate(encoded):
                if not self.forbidden_ids.isdisjoint(ids):
                    clean[i], encoded[i] = self._repair(clean[i], ids)
        return clean, encoded

    def encode_many(self, texts: Sequence[str]) -> list[Content]:
        clean, encoded = self.encode_ids(texts)
        return [Content(t, ids) for t, ids in zip(clean, encoded, strict=True)]

    def encode(self, text: str) -> Content:
        return self.encode_many([text])[0]

    def _batch_is_clean(self, encoded: list[list[int]]) -> bool:
        """True when no id of the batch can be forbidden (False means: check each text)."""
        if not self.forbidden_ids:
            return True
        ids = chain.from_iterable(encoded)
        if self._low_end:
            return min(ids, default=self._hi + 1) > self._hi
        return max(ids, default=self._lo - 1) < self._lo

    @cached_property
    def unknown_replacement(self) -> str:
        """The first stand-in that encodes to ordinary ids only ("" = drop the character)."""
        encode, forbidden = self.tokenizer.encode, self.forbidden_ids
        clean = (c for c in UNKNOWN_REPLACEMENTS if forbidden.isdisjoint(encode(c)))
        return next(clean, "")

    def _repair(self, text: str, ids: list[int]) -> tuple[str, list[int]]:
        tok = self.tokenizer
        unk = tok.unk_id
        if unk is not None and unk in ids:
            stand_in = self.unknown_replacement
            text = "".join(stand_in if unk in tok.encode(c) else c for c in text)
            ids = tok.encode(text)
        leaked = sorted(self.forbidden_ids.intersection(ids))
        if leaked:
            raise ControlTokenLeak(
                f"content encoded to control ids {leaked[:5]} after neutralization;"
                " refusing to render it (please report this text pattern)"
            )
        return text, ids
