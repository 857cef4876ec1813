"""Messages between gateway replicas on Redis pub/sub: a stop for an answer another replica
streams, a revoked API key that every replica must forget at once. Best effort by nature
(pub/sub keeps nothing for a subscriber that is away), so each listener says what to do
when it (re)connects and may have missed messages."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from redis.asyncio import Redis
from redis.exceptions import RedisError

log = logging.getLogger(__name__)


async def publish(redis: Redis, channel: str, payload: str) -> bool:
    """False when Redis is unreachable (the caller says what that means)."""
    try:
        await redis.publish(channel, payload)
    except (RedisError, OSError) as exc:
        log.warning("redis unavailable, %s not published: %s", channel, type(exc).__name__)
        return False
    return True


class Listener:
    """Calls `on_message(payload)` for each message on `channel`; `on_connect()` each time
    the subscription (re)starts. Survives Redis restarts: resubscribes after a pause."""

    def __init__(
        self,
        redis: Redis,
        channel: str,
        on_message: Callable[[str], object],
        on_connect: Callable[[], object] = lambda: None,
    ):
        self.redis, self.channel = redis, channel
        self.on_message, self.on_connect = on_message, on_connect
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._listen(), name=f"listen:{self.channel}")

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    async def _listen(self) -> None:
        while True:
            try:
                async with self.redis.pubsub() as pubsub:
                    await pubsub.subscribe(self.channel)
                    self.on_connect()
                    async for message in pubsub.listen():
                        if message.get("type") == "message":
                            self.on_message(message["data"].decode())
            except (RedisError, OSError, ValueError) as exc:
                log.warning("%s interrupted (%s); retrying", self.channel, type(exc).__name__)
                await asyncio.sleep(1.0)
