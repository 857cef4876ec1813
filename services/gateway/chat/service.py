"""The patient chat: answer a question (or the last one again) through the shared generation
flow, whole or as server-sent events (chat/events.py), and store the answer however it ends:
complete, failed mid-stream, stopped, or cut because the client left."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import anyio
import orjson
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.core.safety import disclaimer
from services.gateway.context_cache import ContextCache
from services.gateway.errors import ApiError
from services.gateway.notices import Emergency
from services.gateway.observability import Metrics
from services.gateway.sessions.schemas import MessageOut
from services.store.tables.sessions import ChatSession, Message

from .generation import GenerationFlow
from .runtime import ChatRuntime
from .schemas import ChatAnswer, Usage
from .turns import Turnaround, begin_turn, finish_turn


def _sse(event: str, data: Any) -> bytes:
    return b"event: " + event.encode() + b"\ndata: " + orjson.dumps(data) + b"\n\n"


@dataclass
class Answering:
    """One answer in flight and what finishing it needs."""

    flow: GenerationFlow
    sessionmaker: async_sessionmaker[AsyncSession]
    cache: ContextCache
    turn: Turnaround
    lang: str

    async def save(self) -> Message:
        """Store the answer however it ended: completion, engine failure, explicit stop, or
        a client that left (then the caller is being cancelled: the save is shielded)."""
        answer = self.turn.answer
        answer.cancel()
        with anyio.CancelScope(shield=True):
            async with self.sessionmaker() as db:
                message = await finish_turn(
                    runtime=self.flow.runtime, db=db, cache=self.cache, turn=self.turn
                )
        answer.finished()
        return message

    def body(self, message: Message) -> ChatAnswer:
        a = self.turn.answer
        return ChatAnswer(
            message=MessageOut.model_validate(message, from_attributes=True),
            user_message_id=self.turn.user_message_id,
            turns_used=a.prompt.turns_kept,
            usage=Usage(
                prompt_tokens=a.prompt_tokens,
                completion_tokens=message.completion_tokens or len(a.parts),
            ),
            disclaimer=disclaimer(self.lang),
            emergency=Emergency.model_validate(a.notice.model_dump()) if a.notice else None,
        )

    async def whole(self) -> ChatAnswer:
        try:
            async for _ in self.turn.answer.texts():
                pass
        finally:
            message = await self.save()
        if self.turn.answer.error is not None:
            raise ApiError(502, "engine_generation_failed", self.turn.answer.error)
        return self.body(message)

    async def events(self) -> AsyncIterator[bytes]:
        """`meta`, `delta`…, then `done` or `error` (chat/events.py)."""
        metrics = self.flow.metrics
        metrics.active_streams.inc()
        try:
            turn, a = self.turn, self.turn.answer
            yield _sse(
                "meta",
                {
                    "session_id": str(turn.session_id),
                    "user_message_id": turn.user_message_id,
                    "turns_used": a.prompt.turns_kept,
                    "prompt_tokens": a.prompt_tokens,
                    "emergency": a.notice.model_dump() if a.notice else None,
                },
            )
            try:
                async for text in a.texts():
                    yield b'event: delta\ndata: {"text":' + orjson.dumps(text) + b"}\n\n"
            finally:
                message = await self.save()
            if a.error is None:
                yield _sse("done", self.body(message).model_dump(mode="json"))
            else:
                out = MessageOut.model_validate(message, from_attributes=True)
                yield _sse(
                    "error",
                    {
                        "error": {"code": "engine_generation_failed", "message": a.error},
                        "message": out.model_dump(mode="json"),
                    },
                )
        finally:
            metrics.active_streams.dec()


@dataclass(frozen=True)
class PatientChat:
    """What a chat turn needs beyond the request's own database session."""

    runtime: ChatRuntime
    metrics: Metrics
    sessionmaker: async_sessionmaker[AsyncSession]
    cache: ContextCache

    async def start(
        self,
        *,
        db: AsyncSession,
        session: ChatSession,
        content: str | None,
        max_new_tokens: int | None,
        lang: str,
    ) -> Answering:
        """Store the question (content None: answer the last one again) and start the
        answer; errors before the first token are raised as ApiError, the question kept."""
        flow = GenerationFlow(self.runtime, self.metrics, "chat")
        turn = await begin_turn(
            flow=flow,
            db=db,
            cache=self.cache,
            session=session,
            content=content,
            max_new_tokens=max_new_tokens,
        )
        return Answering(flow, self.sessionmaker, self.cache, turn, lang)
