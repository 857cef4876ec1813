"""The OpenAI hot path's memory: API-key lookups remembered briefly, usage written in
batches, and nothing counted lost when a batch cannot be written."""

from __future__ import annotations

import asyncio
import time
import uuid

import pytest
from sqlalchemy import select

from services.gateway.auth.dependencies import Principal
from services.gateway.auth.key_cache import KeyCache
from services.gateway.db import make_engine, make_sessionmaker
from services.gateway.openai_api.usage import UsageRecorder
from services.store import apikeys
from services.store.tables.auth import ApiKey


def test_key_cache_expires_and_forgets() -> None:
    cache = KeyCache(ttl_s=0.2)
    key_id = uuid.uuid4()
    principal = Principal(uuid.uuid4(), "integrator", "api_key", key_id)
    cache.put("h1", principal)
    assert cache.get("h1") == principal and cache.get("other") is None
    cache.forget(key_id)
    assert cache.get("h1") is None
    cache.put("h1", principal)
    time.sleep(0.25)
    assert cache.get("h1") is None
    off = KeyCache(ttl_s=0)
    off.put("h1", principal)
    assert off.get("h1") is None


@pytest.mark.asyncio
async def test_usage_is_batched_and_never_lost(database_url: str) -> None:
    engine = make_engine(database_url)
    sessionmaker = make_sessionmaker(engine)
    async with sessionmaker() as db:
        row, _ = await apikeys.create_api_key(db=db, name="batch", role="integrator")
        await db.commit()
    recorder = UsageRecorder(sessionmaker, flush_s=3600)  # flushed by hand below
    for _ in range(5):
        assert recorder.add(row.id, 10, 3) is False  # counted; no write needed now

    async def counters() -> tuple[int, int, int]:
        async with sessionmaker() as db:
            k = (await db.execute(select(ApiKey).where(ApiKey.id == row.id))).scalar_one()
            return k.requests, k.prompt_tokens, k.completion_tokens

    assert await counters() == (0, 0, 0)  # not written per request
    await recorder.flush()
    assert await counters() == (5, 50, 15)  # one write for the batch

    # A flush that cannot reach the database keeps the counts for the next one.
    recorder.add(row.id, 1, 1)
    broken = make_engine("postgresql+asyncpg://postgres@127.0.0.1:1/nothing")
    recorder.sessionmaker = make_sessionmaker(broken)
    with pytest.raises(OSError):
        await recorder.flush()
    recorder.sessionmaker = sessionmaker
    await recorder.close()
    assert await counters() == (6, 51, 16)
    await broken.dispose()
    await engine.dispose()


def test_no_event_loop_leak() -> None:
    # UsageRecorder.start() needs a running loop; with flush_s=0 it starts nothing.
    recorder = UsageRecorder(None, flush_s=0)
    recorder.start()
    assert recorder._task is None
    assert recorder.add(uuid.uuid4(), 1, 1) is True  # write-through: the caller flushes now
    recorder._pending.clear()
    asyncio.run(recorder.close())


@pytest.mark.asyncio
async def test_concurrent_misses_share_one_lookup() -> None:
    cache = KeyCache(ttl_s=60)
    principal = Principal(uuid.uuid4(), "integrator", "api_key", uuid.uuid4())
    calls = 0

    async def lookup() -> Principal | None:
        nonlocal calls
        calls += 1
        await asyncio.sleep(0.05)
        return principal

    results = await asyncio.gather(*(cache.lookup_once("h", lookup) for _ in range(20)))
    assert calls == 1 and all(r == principal for r in results)
    assert cache.get("h") == principal

    async def failing() -> Principal | None:
        await asyncio.sleep(0.01)
        raise OSError("database down")

    outcomes = await asyncio.gather(
        *(cache.lookup_once("x", failing) for _ in range(5)), return_exceptions=True
    )
    assert all(isinstance(o, OSError) for o in outcomes)
    assert cache.get("x") is None
