"""A revoked API key is refused by every gateway replica at once, not when its cached lookup
expires (`auth_cache_s`): the revoking process — a replica, or `medchat apikey revoke` —
publishes the key id, and each replica forgets it. A replica that was disconnected from
Redis may have missed revocations, so it forgets every cached key when it reconnects."""

from __future__ import annotations

import uuid

from redis.asyncio import Redis

from services.gateway.bus import Listener, publish

from .key_cache import KeyCache

CHANNEL = "medchat:keys:revoked"


async def announce(redis: Redis, key_id: uuid.UUID) -> bool:
    return await publish(redis, CHANNEL, str(key_id))


def listener(redis: Redis, cache: KeyCache) -> Listener:
    return Listener(redis, CHANNEL, lambda payload: cache.forget(uuid.UUID(payload)), cache.clear)
