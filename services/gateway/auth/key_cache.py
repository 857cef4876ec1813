"""API-key lookups remembered for a few seconds, so the OpenAI-compatible hot path makes no
database round trip per request (at hundreds of concurrent streams the per-request SELECT
exhausted the connection pool). A revocation is immediate on the replica that revokes and
reaches the others within `ttl_s`."""

from __future__ import annotations

import time
import uuid
from collections import OrderedDict
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .dependencies import Principal

MAX_KEYS = 10_000  # only valid keys are remembered, so this bounds memory, not attackers


class KeyCache:
    def __init__(self, ttl_s: float):
        self.ttl_s = ttl_s
        self._entries: OrderedDict[str, tuple[float, Principal]] = OrderedDict()

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

    def forget(self, key_id: uuid.UUID) -> None:
        for key_hash, (_, principal) in list(self._entries.items()):
            if principal.api_key_id == key_id:
                del self._entries[key_hash]
