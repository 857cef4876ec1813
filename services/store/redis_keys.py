"""Redis keys that more than one service writes or deletes: the gateway caches a session's
context under it, retention (worker) deletes it with the session."""

from __future__ import annotations

import uuid


def context_key(session_id: uuid.UUID) -> str:
    return f"medchat:ctx:{session_id}"
