"""Stop requests across gateway replicas: the replica that streams an answer may not be the
one that receives the stop, so stops are published on a Redis channel."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Callable

from redis.asyncio import Redis
from redis.exceptions import RedisError

log = logging.getLogger(__name__)
CHANNEL = "medchat:stop"


class StopBus:
    def __init__(self, redis: Redis, on_stop: Callable[[uuid.UUID], bool]):
        self.redis = redis
        self.on_stop = on_stop
        self._task: asyncio.Task[None] | None = None

    async def publish(self, session_id: uuid.UUID) -> None:
        try:
            await self.redis.publish(CHANNEL, str(session_id))
        except (RedisError, OSError) as exc:
            log.warning("redis unavailable, stop reaches this replica only: %s", type(exc).__name__)

    def start(self) -> None:
        self._task = asyncio.create_task(self._listen(), name="stop-bus")

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    async def _listen(self) -> None:
        while True:  # survive Redis restarts: resubscribe after a pause
            try:
                async with self.redis.pubsub() as pubsub:
                    await pubsub.subscribe(CHANNEL)
                    async for message in pubsub.listen():
                        if message.get("type") == "message":
                            self.on_stop(uuid.UUID(message["data"].decode()))
            except (RedisError, OSError, ValueError) as exc:
                log.warning("stop channel interrupted (%s); retrying", type(exc).__name__)
                await asyncio.sleep(1.0)
