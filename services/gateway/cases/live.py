"""What the patient's open chat hears while a person is involved: the clinician's messages
and the hand-off's state, over Redis pub/sub (the patient's stream may be held by another
gateway replica than the clinician's request). Best effort like every pub/sub message: a
patient who reconnects reads the session again, where everything is stored."""

from __future__ import annotations

import logging
import uuid
from collections.abc import AsyncIterator

import orjson
from pydantic import BaseModel
from redis.asyncio import Redis
from redis.exceptions import RedisError

from services.gateway.bus import publish

log = logging.getLogger(__name__)
HEARTBEAT_S = 15.0


def channel(session_id: uuid.UUID) -> str:
    return f"medchat:session:{session_id}"


async def tell_patient(redis: Redis, session_id: uuid.UUID, event: str, data: BaseModel) -> None:
    await publish(
        redis, channel(session_id), orjson.dumps([event, data.model_dump(mode="json")]).decode()
    )


async def patient_events(redis: Redis, session_id: uuid.UUID) -> AsyncIterator[bytes]:
    """The session's live events as SSE, with a comment every HEARTBEAT_S so that proxies
    keep the connection open. Ends when Redis goes away (the browser reconnects)."""
    yield b": connected\n\n"
    try:
        async with redis.pubsub() as pubsub:
            await pubsub.subscribe(channel(session_id))
            while True:
                message = await pubsub.get_message(
                    ignore_subscribe_messages=True, timeout=HEARTBEAT_S
                )
                if message is None:
                    yield b": ping\n\n"
                    continue
                event, data = orjson.loads(message["data"])
                yield b"event: " + event.encode() + b"\ndata: " + orjson.dumps(data) + b"\n\n"
    except (RedisError, OSError) as exc:
        log.warning("live session events ended: redis unavailable (%s)", type(exc).__name__)
