"""POST a question, get the answer streamed (SSE) or whole; regenerate; stop. The flow is
the chat service's (chat/service.py, through the generation flow shared with the OpenAI API)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Response

from services.gateway.db import Db
from services.gateway.deps import Runtime, Settings, Stops
from services.gateway.error_schemas import error_responses
from services.gateway.errors import ApiError, Json
from services.gateway.notices import AI_GENERATED_HEADER
from services.gateway.ratelimit import chat_limit, guest_chat_limit, rate_limited
from services.gateway.sessions.dependencies import OwnedSession
from services.gateway.sse import AnswerStream, sse_response

from .dependencies import Chat
from .events import CHAT_STREAM
from .schemas import ChatAnswer, HeldForClinician, MessageCreate, RegenerateRequest, Stopping
from .service import Answering, Waiting

router = APIRouter(prefix="/api/sessions", tags=["chat"])
_ERRORS = error_responses(401, 403, 404, 409, 413, 422, 429, 502, 503, 504)


async def _respond(answering: Answering | Waiting, stream: bool) -> Any:
    if isinstance(answering, Waiting):  # no model answers: no AI label
        return sse_response(answering.events()) if stream else await answering.whole()
    response: Response = (
        AnswerStream(answering.events(), answering.turn.answer.cancel)
        if stream
        else Json((await answering.whole()).model_dump(mode="json"))
    )
    response.headers[AI_GENERATED_HEADER] = "true"
    return response


@router.post(
    "/{session_id}/messages",
    response_model=ChatAnswer,
    responses={200: CHAT_STREAM, 202: {"model": HeldForClinician}, **_ERRORS},
    dependencies=[Depends(rate_limited(chat_limit)), Depends(guest_chat_limit)],
)
async def post_message(
    body: MessageCreate, session: OwnedSession, db: Db, chat: Chat, settings: Settings
) -> Any:
    """Ask a question. With `stream` (default) the answer arrives as server-sent events:
    `meta`, then `delta` events, then `done` (or `error`). While a clinician has paused the
    model the question is stored for them: 202 (`meta`, then `held`, when streamed)."""
    if len(body.content) > settings.max_message_chars:
        raise ApiError(413, "message_too_long", "the message is too long", "content")
    answering = await chat.start(
        db=db,
        session=session,
        content=body.content,
        max_new_tokens=body.max_new_tokens,
        lang=body.lang,
    )
    return await _respond(answering, body.stream)


@router.post(
    "/{session_id}/regenerate",
    response_model=ChatAnswer,
    responses={200: CHAT_STREAM, **_ERRORS},
    dependencies=[Depends(rate_limited(chat_limit)), Depends(guest_chat_limit)],
)
async def regenerate(body: RegenerateRequest, session: OwnedSession, db: Db, chat: Chat) -> Any:
    """Answer the last question again (the previous answer is replaced)."""
    answering = await chat.start(
        db=db, session=session, content=None, max_new_tokens=body.max_new_tokens, lang=body.lang
    )
    return await _respond(answering, body.stream)


@router.post(
    "/{session_id}/stop",
    status_code=202,
    response_model=Stopping,
    responses=error_responses(401, 403, 404),
)
async def stop(session: OwnedSession, runtime: Runtime, stops: Stops) -> dict[str, bool]:
    """Stop the answer being generated; its partial text is kept, marked `stopped`."""
    if not runtime.stop(session.id):
        await stops.publish(session.id)  # the replica streaming it may be another
    return {"stopping": True}
