"""Encoded message contents remembered across requests.

Integrators send the whole dialogue with every OpenAI-API request, and a patient's history
is rendered again at each turn: without a cache every earlier message (and the system text)
is tokenized again per request, which was an eighth of the gateway's CPU per streamed
answer. Encoding is a pure function of the text for one tokenizer, and `Content` is frozen,
so cached values are shared safely.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Sequence

from services.core.chatformat import ChatFormat
from services.core.chatformat.neutralize import Content

MAX_ENTRIES = 8192
MAX_CHARS = 16_384  # longer texts are encoded every time: they would crowd the cache out
MAX_TOTAL_CHARS = 4_000_000  # what the cache may hold: ~8-16 MB of text, plus the ids


class EncodingCache:
    """An LRU over `ChatFormat.encode_contents`, text by text; misses are encoded in one
    batch call, as before."""

    def __init__(
        self,
        encode: Callable[[Sequence[str]], list[Content]],
        max_entries: int = MAX_ENTRIES,
    ):
        self._encode = encode
        self._max = max_entries
        self._entries: OrderedDict[str, Content] = OrderedDict()
        self._chars = 0

    def __call__(self, texts: Sequence[str]) -> list[Content]:
        entries = self._entries
        found: list[Content | None] = []
        missing: list[str] = []
        for text in texts:
            content = entries.get(text)
            if content is None:
                missing.append(text)
            else:
                entries.move_to_end(text)
            found.append(content)
        if not missing:
            return found  # type: ignore[return-value]  # no None left
        fresh = iter(self._encode(missing))
        out: list[Content] = []
        for text, content in zip(texts, found, strict=True):
            if content is None:
                content = next(fresh)
                if len(text) <= MAX_CHARS and text not in entries:
                    entries[text] = content
                    self._chars += len(text)
            out.append(content)
        while len(entries) > self._max or self._chars > MAX_TOTAL_CHARS:
            old, _ = entries.popitem(last=False)
            self._chars -= len(old)
        return out


def cache_encodings(chat_format: ChatFormat, max_entries: int = MAX_ENTRIES) -> ChatFormat:
    """`chat_format` with its contents' encodings remembered (the instance's
    `encode_contents`, which its renderers call, is replaced by the cache)."""
    if not isinstance(chat_format.encode_contents, EncodingCache):
        cache = EncodingCache(chat_format.encode_contents, max_entries)
        chat_format.encode_contents = cache  # type: ignore[method-assign]
    return chat_format
