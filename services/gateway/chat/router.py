"""POST a question, get the answer streamed (SSE) or whole; regenerate; stop."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from typing import Any

import anyio
import orjson
from fastapi import APIRouter, Request
from fastapi.responses import StreamingResponse
from sqlalchemy.ext.asyncio import AsyncSession

from services.core.safety import detect_emergency, disclaimer
from services.gateway.db import Db
from services.gateway.engine.client import Finish, Token
from services.gateway.engine.errors import EngineError
from services.gateway.errors import ApiError
from services.gateway.sessions.dependencies import OwnedSession
from services.gateway.sessions.models import ChatSession
from services.gateway.sessions.schemas import MessageOut

from .schemas import ChatAnswer, MessageCreate, RegenerateRequest, Usage
from .service import ChatRuntime, Turnaround, begin_turn, events_of, finish_turn

router = APIRouter(prefix="/api/sessions", tags=["chat"])
log = logging.getLogger(__name__)


def _sse(event: str, data: Any) -> bytes:
    return b"event: " + event.encode() + b"\ndata: " + orjson.dumps(data) + b"\n\n"


def _notice(text: str, lang: str) -> dict[str, Any] | None:
    notice = detect_emergency(text)
    return notice.model_dump() if notice else None


async def _answer(
    request: Request,
    db: AsyncSession,
    session: ChatSession,
    content: str | None,
    stream: bool,
    max_new_tokens: int | None,
    lang: str,
) -> Any:
    runtime: ChatRuntime = request.app.state.chat
    cache = request.app.state.context
    turn = await begin_turn(
        runtime=runtime,
        db=db,
        cache=cache,
        session=session,
        content=content,
        max_new_tokens=max_new_tokens,
    )
    question = turn.history[-1]["content"]
    # Rules on the patient's words, whatever the model answers.
    emergency = _notice(question, lang)
    extras = {"disclaimer": disclaimer(lang), "emergency": emergency}
    sessionmaker = request.app.state.sessionmaker
    if not stream:
        return await _whole(runtime, sessionmaker, cache, turn, extras)
    return StreamingResponse(
        _stream(runtime, sessionmaker, cache, turn, extras),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


async def _whole(
    runtime: ChatRuntime, sessionmaker: Any, cache: Any, turn: Turnaround, extras: dict[str, Any]
) -> ChatAnswer:
    status, error, completion = "stopped", None, None
    try:
        async for event in events_of(turn):
            if isinstance(event, Token):
                turn.parts.append(event.text)
            else:
                status, completion = "complete", event.completion_tokens
    except EngineError as exc:
        status, error = "failed", str(exc)
    finally:
        with anyio.CancelScope(shield=True):  # a client that leaves still gets its turn saved
            async with sessionmaker() as db:
                message = await finish_turn(
                    runtime=runtime,
                    db=db,
                    cache=cache,
                    turn=turn,
                    status=status,
                    error=error,
                    completion_tokens=completion,
                )
    if error is not None:
        raise ApiError(502, "engine_generation_failed", error)
    return _answer_body(turn, message, extras)


def _answer_body(turn: Turnaround, message: Any, extras: dict[str, Any]) -> ChatAnswer:
    out = MessageOut.model_validate(message, from_attributes=True)
    return ChatAnswer(
        message=out,
        user_message_id=turn.user_message_id,
        turns_used=turn.prompt.turns_kept,
        usage=Usage(
            prompt_tokens=len(turn.prompt.input_ids),
            completion_tokens=message.completion_tokens or len(turn.parts),
        ),
        **extras,
    )


async def _stream(
    runtime: ChatRuntime, sessionmaker: Any, cache: Any, turn: Turnaround, extras: dict[str, Any]
) -> AsyncIterator[bytes]:
    status, error, completion = "stopped", None, None
    yield _sse(
        "meta",
        {
            "session_id": str(turn.session_id),
            "user_message_id": turn.user_message_id,
            "turns_used": turn.prompt.turns_kept,
            "prompt_tokens": len(turn.prompt.input_ids),
            "emergency": extras["emergency"],
        },
    )
    try:
        async for event in events_of(turn):
            if isinstance(event, Token):
                turn.parts.append(event.text)
                yield _sse("delta", {"text": event.text})
            elif isinstance(event, Finish):
                status, completion = "complete", event.completion_tokens
    except EngineError as exc:
        status, error = "failed", str(exc)
    finally:
        # Runs on completion, on engine failure, on an explicit stop and when the client
        # disconnects (then this generator is cancelled: the save is shielded).
        turn.generation.cancel()
        with anyio.CancelScope(shield=True):
            async with sessionmaker() as db:
                message = await finish_turn(
                    runtime=runtime,
                    db=db,
                    cache=cache,
                    turn=turn,
                    status=status,
                    error=error,
                    completion_tokens=completion,
                )
    if error is not None:
        yield _sse(
            "error",
            {
                "error": {"code": "engine_generation_failed", "message": error},
                "message": MessageOut.model_validate(message, from_attributes=True).model_dump(
                    mode="json"
                ),
            },
        )
        return
    yield _sse("done", _answer_body(turn, message, extras).model_dump(mode="json"))


@router.post("/{session_id}/messages", responses={200: {"description": "JSON, or SSE"}})
async def post_message(body: MessageCreate, session: OwnedSession, request: Request, db: Db) -> Any:
    """Ask a question. With `stream` (default) the answer arrives as server-sent events:
    `meta`, then `delta` events, then `done` (or `error`)."""
    if len(body.content) > request.app.state.settings.max_message_chars:
        raise ApiError(413, "message_too_long", "the message is too long", "content")
    return await _answer(
        request, db, session, body.content, body.stream, body.max_new_tokens, body.lang
    )


@router.post("/{session_id}/regenerate")
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
