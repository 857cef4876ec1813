"""Token usage per API key, written in batches: one UPDATE per key every `flush_s` rather
than one per request (the per-request write was a hot-path database round trip)."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections import defaultdict
from typing import Any

from sqlalchemy import update

from services.store.tables.auth import ApiKey

log = logging.getLogger(__name__)


class UsageRecorder:
    def __init__(self, sessionmaker: Any, flush_s: float):
        self.sessionmaker = sessionmaker
        self.flush_s = flush_s
        self._pending: defaultdict[uuid.UUID, list[int]] = defaultdict(lambda: [0, 0, 0])
        self._task: asyncio.Task[None] | None = None

    def add(self, key_id: uuid.UUID, prompt_tokens: int, completion_tokens: int) -> bool:
        """Count one request; True when the caller must `flush()` now (write-through: a
        `flush_s` of 0, which tests use to read the counters right away)."""
        counts = self._pending[key_id]
        counts[0] += 1
        counts[1] += prompt_tokens
        counts[2] += completion_tokens
        return self.flush_s <= 0

    def start(self) -> None:
        if self.flush_s > 0:
            self._task = asyncio.create_task(self._loop(), name="usage-flush")

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        await self.flush()

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(self.flush_s)
            try:
                await self.flush()
            except Exception as exc:  # keep counting; the next flush retries the totals
                log.warning("usage flush failed: %s", type(exc).__name__)

    async def flush(self) -> None:
        pending, self._pending = self._pending, defaultdict(lambda: [0, 0, 0])
        if not pending:
            return
        try:
            async with self.sessionmaker() as db:
                for key_id, (requests, prompt, completion) in pending.items():
                    await db.execute(
                        update(ApiKey)
                        .where(ApiKey.id == key_id)
                        .values(
                            requests=ApiKey.requests + requests,
                            prompt_tokens=ApiKey.prompt_tokens + prompt,
                            completion_tokens=ApiKey.completion_tokens + completion,
                        )
                    )
                await db.commit()
        except BaseException:
            for key_id, counts in pending.items():  # nothing counted is lost
                mine = self._pending[key_id]
                for i in range(3):
                    mine[i] += counts[i]
            raise
