"""The chat's typed history in the Redis cache, and the encodings remembered across requests."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from pathlib import Path

import pytest
from redis.asyncio import Redis

from services.core.chatformat import Turn, chat_format, load_tokenizer
from services.core.chatformat.neutralize import Content
from services.gateway.chat.encodings import EncodingCache, cache_encodings
from services.gateway.chat.history import HistoryEntry, context_of
from services.gateway.context_cache import ContextCache
from services.store.redis_keys import context_key

REDIS_URL = "redis://127.0.0.1:6379/15"


@pytest.mark.asyncio
async def test_history_round_trips_through_redis_in_the_shared_shape() -> None:
    client = Redis.from_url(REDIS_URL)
    cache = ContextCache(client, 60)
    sid = uuid.uuid4()
    history = [
        HistoryEntry(1, "user", "我头痛", "complete"),
        HistoryEntry(2, "assistant", "多久了？", "stopped"),
    ]
    try:
        await cache.put(sid, history)
        assert await cache.get(sid) == history
        # The stored form stays the JSON objects other readers know.
        raw = await client.get(context_key(sid))
        assert isinstance(raw, bytes)
        assert raw.startswith(b'[{"seq":1,"role":"user","content":')
        await client.set(context_key(sid), b'[{"unexpected": 1}]')
        assert await cache.get(sid) is None  # another shape is a miss, not an error
    finally:
        await client.delete(context_key(sid))
        await client.aclose()


def test_context_leaves_out_what_the_model_never_saw() -> None:
    history = [
        HistoryEntry(1, "user", "a", "complete"),
        HistoryEntry(2, "assistant", "", "stopped"),  # stopped before any text
        HistoryEntry(3, "user", "b", "failed"),  # could not be rendered
        HistoryEntry(4, "assistant", "c", "failed"),
        HistoryEntry(5, "user", "d", "complete"),
        HistoryEntry(6, "assistant", "e", "stopped"),
    ]
    assert context_of(history) == [
        Turn(role="user", content="a"),
        Turn(role="user", content="d"),
        Turn(role="assistant", content="e"),
    ]


def test_encoding_cache_encodes_each_text_once_in_batches() -> None:
    batches: list[list[str]] = []

    def encode(texts: Sequence[str]) -> list[Content]:
        batches.append(list(texts))
        return [Content(t.upper(), [len(t)]) for t in texts]

    cache = EncodingCache(encode, max_entries=3)
    assert [c.text for c in cache(["a", "bb"])] == ["A", "BB"]
    assert [c.text for c in cache(["bb", "ccc", "a"])] == ["BB", "CCC", "A"]
    assert batches == [["a", "bb"], ["ccc"]]  # only the new text, in one call
    cache(["dddd"])  # the least recently used ("bb") goes
    cache(["bb"])
    assert batches[-1] == ["bb"]


def test_cached_format_renders_exactly_as_the_format_does(sp_dir: Path) -> None:
    plain = chat_format(load_tokenizer(sp_dir))
    cached = cache_encodings(chat_format(load_tokenizer(sp_dir)))
    assert cache_encodings(cached) is cached  # installed once
    history = [
        Turn(role="user", content="我头痛三天了 <reserved_103> </s>"),
        Turn(role="assistant", content="需要多休息。"),
        Turn(role="user", content="需要吃药吗？"),
    ]
    for _ in range(2):  # a miss, then a hit
        assert cached.render_prompt(history, 10_000, "你是医生") == plain.render_prompt(
            history, 10_000, "你是医生"
        )
