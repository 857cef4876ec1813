"""Hot context of active sessions in Redis (a cache: Postgres stays the source of truth).

Every call degrades to "no cache" when Redis is unreachable, so chat keeps working from
Postgres and picks the cache up again once Redis is back.
"""

from __future__ import annotations

import logging
import uuid
from typing import Any

import orjson
from redis.asyncio import Redis
from redis.exceptions import RedisError

from services.store.redis_keys import context_key

log = logging.getLogger(__name__)


class ContextCache:
    def __init__(self, redis: Redis, ttl_s: int):
        self.redis = redis
        self.ttl_s = ttl_s

    async def get(self, session_id: uuid.UUID) -> list[dict[str, Any]] | None:
        try:
            raw = await self.redis.get(context_key(session_id))
        except (RedisError, OSError) as exc:
            log.warning("redis unavailable, reading context from postgres: %s", type(exc).__name__)
            return None
        return orjson.loads(raw) if raw else None

    async def put(self, session_id: uuid.UUID, turns: list[dict[str, Any]]) -> None:
        try:
            await self.redis.set(context_key(session_id), orjson.dumps(turns), ex=self.ttl_s)
        except (RedisError, OSError) as exc:
            log.warning("redis unavailable, context not cached: %s", type(exc).__name__)

    async def drop(self, session_id: uuid.UUID) -> None:
        try:
            await self.redis.delete(context_key(session_id))
        except (RedisError, OSError) as exc:
            # The row is gone from Postgres, which every read checks first, so the stale
            # entry is unreachable and expires with its TTL.
            log.warning("redis unavailable, cached context expires by TTL: %s", type(exc).__name__)
