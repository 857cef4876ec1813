"""Hot context of active sessions in Redis (a cache: Postgres stays the source of truth).

Every call degrades to "no cache" when Redis is unreachable, so chat keeps working from
Postgres and picks the cache up again once Redis is back. An entry is a JSON list of
`{"seq", "role", "content", "status"}` objects; one that does not read as that is a miss.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence

import orjson
from redis.asyncio import Redis
from redis.exceptions import RedisError

from services.gateway.chat.history import History, HistoryEntry
from services.store.redis_keys import context_key

log = logging.getLogger(__name__)


class ContextCache:
    def __init__(self, redis: Redis, ttl_s: int):
        self.redis = redis
        self.ttl_s = ttl_s

    async def get(self, session_id: uuid.UUID) -> History | None:
        try:
            raw = await self.redis.get(context_key(session_id))
        except (RedisError, OSError) as exc:
            log.warning("redis unavailable, reading context from postgres: %s", type(exc).__name__)
            return None
        if not raw:
            return None
        try:
            return [HistoryEntry(**entry) for entry in orjson.loads(raw)]
        except (orjson.JSONDecodeError, TypeError):  # another shape: read Postgres instead
            return None

    async def put(self, session_id: uuid.UUID, history: Sequence[HistoryEntry]) -> None:
        try:
            # orjson writes each slotted dataclass as the JSON object of its fields.
            await self.redis.set(context_key(session_id), orjson.dumps(history), ex=self.ttl_s)
        except (RedisError, OSError) as exc:
            log.warning("redis unavailable, context not cached: %s", type(exc).__name__)

    async def drop(self, session_id: uuid.UUID) -> None:
        try:
            await self.redis.delete(context_key(session_id))
        except (RedisError, OSError) as exc:
            # The row is gone from Postgres, which every read checks first, so the stale
            # entry is unreachable and expires with its TTL.
            log.warning("redis unavailable, cached context expires by TTL: %s", type(exc).__name__)
