"""API-key lookups remembered for a few seconds, so the OpenAI-compatible hot path makes no
database round trip per request (at hundreds of concurrent streams the per-request SELECT
exhausted the connection pool). A revocation reaches every replica at once over Redis
(revocations.py); `ttl_s` bounds how long a replica cut off from Redis may miss one."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import OrderedDict
from collections.abc import Awaitable, Callable

from .principal import Principal

MAX_KEYS = 10_000  # only valid keys are remembered, so this bounds memory, not attackers


class KeyCache:
    def __init__(self, ttl_s: float):
        self.ttl_s = ttl_s
        self._entries: OrderedDict[str, tuple[float, Principal]] = OrderedDict()
        self._in_flight: dict[str, asyncio.Future[Principal | None]] = {}

    async def lookup_once(
        self, key_hash: str, lookup: Callable[[], Awaitable[Principal | None]]
    ) -> Principal | None:
        """Run `lookup` for a key not in memory; concurrent requests with the same key wait
        for that one lookup instead of each taking a database connection (a burst of new
        streams would otherwise queue on the pool)."""
        if (pending := self._in_flight.get(key_hash)) is not None:
            return await asyncio.shield(pending)
        future: asyncio.Future[Principal | None] = asyncio.get_running_loop().create_future()
        self._in_flight[key_hash] = future
        try:
            principal = await lookup()
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # consumed here if nobody else was waiting
            raise
        finally:
            del self._in_flight[key_hash]
        future.set_result(principal)
        if principal is not None:
            self.put(key_hash, principal)
        return principal

    def get(self, key_hash: str) -> Principal | None:
        entry = self._entries.get(key_hash)
        if entry is None or entry[0] < time.monotonic():
            return None
        self._entries.move_to_end(key_hash)
        return entry[1]

    def put(self, key_hash: str, principal: Principal) -> None:
        if self.ttl_s <= 0:
            return
        self._entries[key_hash] = (time.monotonic() + self.ttl_s, principal)
        self._entries.move_to_end(key_hash)
        while len(self._entries) > MAX_KEYS:
            self._entries.popitem(last=False)

    def clear(self) -> None:
        self._entries.clear()

    def forget(self, key_id: uuid.UUID) -> None:
        for key_hash, (_, principal) in list(self._entries.items()):
            if principal.api_key_id == key_id:
                del self._entries[key_hash]
