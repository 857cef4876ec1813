"""Stop requests across gateway replicas: the replica that streams an answer may not be the
one that receives the stop, so stops are published on a Redis channel."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable

from redis.asyncio import Redis

from services.gateway.bus import Listener, publish

log = logging.getLogger(__name__)
CHANNEL = "medchat:stop"


class StopBus(Listener):
    def __init__(self, redis: Redis, on_stop: Callable[[uuid.UUID], bool]):
        super().__init__(redis, CHANNEL, lambda payload: on_stop(uuid.UUID(payload)))

    async def publish(self, session_id: uuid.UUID) -> None:
        if not await publish(self.redis, CHANNEL, str(session_id)):
            log.warning("the stop reaches this replica only")
