"""POST a question, get the answer streamed (SSE) or whole; regenerate; stop."""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import anyio
import orjson
from fastapi import APIRouter, Depends, Request
from fastapi.responses import StreamingResponse
from sqlalchemy.ext.asyncio import AsyncSession

from services.core.safety import detect_emergency, disclaimer
from services.gateway.db import Db
from services.gateway.engine.client import Finish, Token
from services.gateway.engine.errors import EngineError, user_message
from services.gateway.errors import ApiError
from services.gateway.observability import Metrics
from services.gateway.ratelimit import chat_limit, guest_chat_limit, rate_limited
from services.gateway.sessions.dependencies import OwnedSession
from services.store.tables.sessions import ChatSession
from services.gateway.sessions.schemas import MessageOut

from .schemas import ChatAnswer, MessageCreate, RegenerateRequest, Usage
from .service import Turnaround, begin_turn, events_of, finish_turn

router = APIRouter(prefix="/api/sessions", tags=["chat"])
log = logging.getLogger(__name__)


def _sse(event: str, data: Any) -> bytes:
    return b"event: " + event.encode() + b"\ndata: " + orjson.dumps(data) + b"\n\n"


@dataclass
class Outcome:
    status: str = "stopped"  # until the engine's final event says otherwise
    error: str | None = None
    completion_tokens: int | None = None
    finish_reason: str | None = None


@dataclass
class Answering:
    """One answer in flight and what finishing it needs."""

    request: Request
    turn: Turnaround
    extras: dict[str, Any]
    outcome: Outcome = field(default_factory=Outcome)
    started: float = field(default_factory=time.perf_counter)

    async def texts(self) -> AsyncIterator[str]:
        """The answer's text pieces; the outcome is filled in as the engine reports it."""
        try:
            async for event in events_of(self.turn):
                if isinstance(event, Token):
                    self.turn.parts.append(event.text)
                    yield event.text
                elif isinstance(event, Finish):
                    self.outcome.status = "complete"
                    self.outcome.completion_tokens = event.completion_tokens
                    self.outcome.finish_reason = event.reason
        except EngineError as exc:
            self.outcome.status, self.outcome.error = "failed", user_message(exc)

    async def save(self) -> Any:
        """Store the answer however it ended: completion, engine failure, explicit stop, or
        a client that left (then the caller is being cancelled: the save is shielded)."""
        state = self.request.app.state
        self.turn.generation.cancel()
        with anyio.CancelScope(shield=True):
            async with state.sessionmaker() as db:
                message = await finish_turn(
                    runtime=state.chat,
                    db=db,
                    cache=state.context,
                    turn=self.turn,
                    status=self.outcome.status,
                    error=self.outcome.error,
                    completion_tokens=self.outcome.completion_tokens,
                    finish_reason=self.outcome.finish_reason,
                )
        metrics: Metrics = state.metrics
        tokens = self.outcome.completion_tokens or len(self.turn.parts)
        metrics.tokens.labels("chat").inc(tokens)
        if (seconds := time.perf_counter() - self.started) > 0 and tokens:
            metrics.tokens_per_s.labels("chat").observe(tokens / seconds)
        if self.outcome.error is not None:
            metrics.engine_errors.labels("engine_generation_failed").inc()
        return message

    def body(self, message: Any) -> ChatAnswer:
        return ChatAnswer(
            message=MessageOut.model_validate(message, from_attributes=True),
            user_message_id=self.turn.user_message_id,
            turns_used=self.turn.prompt.turns_kept,
            usage=Usage(
                prompt_tokens=len(self.turn.prompt.input_ids),
                completion_tokens=message.completion_tokens or len(self.turn.parts),
            ),
            **self.extras,
        )


async def _answer(
    request: Request,
    db: AsyncSession,
    session: ChatSession,
    content: str | None,
    stream: bool,
    max_new_tokens: int | None,
    lang: str,
) -> Any:
    state = request.app.state
    metrics: Metrics = state.metrics
    started = time.perf_counter()
    try:
        turn = await begin_turn(
            runtime=state.chat,
            db=db,
            cache=state.context,
            session=session,
            content=content,
            max_new_tokens=max_new_tokens,
        )
    except ApiError as exc:
        if exc.code.startswith("engine"):
            metrics.engine_errors.labels(exc.code).inc()
        raise
    metrics.ttft.labels("chat").observe(time.perf_counter() - started)
    # Rules on the patient's words, whatever the model answers.
    notice = detect_emergency(turn.history[-1]["content"])
    extras = {
        "disclaimer": disclaimer(lang),
        "emergency": notice.model_dump() if notice else None,
    }
    answering = Answering(request, turn, extras)
    if not stream:
        return await _whole(answering)
    return StreamingResponse(
        _stream(answering),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


async def _whole(a: Answering) -> ChatAnswer:
    try:
        async for _ in a.texts():
            pass
    finally:
        message = await a.save()
    if a.outcome.error is not None:
        raise ApiError(502, "engine_generation_failed", a.outcome.error)
    return a.body(message)


async def _stream(a: Answering) -> AsyncIterator[bytes]:
    metrics: Metrics = a.request.app.state.metrics
    metrics.active_streams.inc()
    try:
        turn = a.turn
        yield _sse(
            "meta",
            {
                "session_id": str(turn.session_id),
                "user_message_id": turn.user_message_id,
                "turns_used": turn.prompt.turns_kept,
                "prompt_tokens": len(turn.prompt.input_ids),
                "emergency": a.extras["emergency"],
            },
        )
        try:
            async for text in a.texts():
                yield b'event: delta\ndata: {"text":' + orjson.dumps(text) + b"}\n\n"
        finally:
            message = await a.save()
        if a.outcome.error is None:
            yield _sse("done", a.body(message).model_dump(mode="json"))
        else:
            out = MessageOut.model_validate(message, from_attributes=True)
            yield _sse(
                "error",
                {
                    "error": {"code": "engine_generation_failed", "message": a.outcome.error},
                    "message": out.model_dump(mode="json"),
                },
            )
    finally:
        metrics.active_streams.dec()


@router.post(
    "/{session_id}/messages",
    responses={200: {"description": "JSON, or SSE"}},
    dependencies=[Depends(rate_limited(chat_limit)), Depends(guest_chat_limit)],
)
async def post_message(body: MessageCreate, session: OwnedSession, request: Request, db: Db) -> Any:
    """Ask a question. With `stream` (default) the answer arrives as server-sent events:
    `meta`, then `delta` events, then `done` (or `error`)."""
    if len(body.content) > request.app.state.settings.max_message_chars:
        raise ApiError(413, "message_too_long", "the message is too long", "content")
    return await _answer(
        request, db, session, body.content, body.stream, body.max_new_tokens, body.lang
    )


@router.post(
    "/{session_id}/regenerate",
    dependencies=[Depends(rate_limited(chat_limit)), Depends(guest_chat_limit)],
)
async def regenerate(
    body: RegenerateRequest, session: OwnedSession, request: Request, db: Db
) -> Any:
    """Answer the last question again (the previous answer is replaced)."""
    return await _answer(request, db, session, None, body.stream, body.max_new_tokens, body.lang)


@router.post("/{session_id}/stop", status_code=202)
async def stop(session: OwnedSession, request: Request) -> dict[str, bool]:
    """Stop the answer being generated; its partial text is kept, marked `stopped`."""
    stopped = request.app.state.chat.stop(session.id)
    if not stopped:
        await request.app.state.stops.publish(session.id)
    return {"stopping": True}
