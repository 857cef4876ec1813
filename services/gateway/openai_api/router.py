"""OpenAI-compatible API for integrators: the official SDK works against it unchanged.
The flow is openai_api/service.py's, on the generation flow shared with the patient chat."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Response

from services.gateway.auth.dependencies import CurrentPrincipal
from services.gateway.deps import Runtime, Usage
from services.gateway.error_schemas import error_responses
from services.gateway.notices import AI_GENERATED_HEADER
from services.gateway.ratelimit import KeyChatLimited
from services.gateway.sse import AnswerStream

from .dependencies import OpenAIFlow
from .schemas import CHAT_COMPLETION_STREAM, ChatCompletion, ChatCompletionRequest, ModelList
from .service import Completion, model_list

router = APIRouter(prefix="/v1", tags=["openai"])


@router.get(
    "/models",
    response_model=ModelList,
    response_model_exclude_unset=True,  # `parent` and `kind` only where they apply
    responses=error_responses(401, 403),
)
async def list_models(_: CurrentPrincipal, runtime: Runtime) -> dict[str, Any]:
    """The engine's own model first, then the fine-tunes published to the registry;
    `serving` marks the one that answers (the admin's choice)."""
    return await model_list(runtime)


@router.post(
    "/chat/completions",
    response_model=ChatCompletion,
    responses={
        200: CHAT_COMPLETION_STREAM,
        **error_responses(400, 401, 403, 422, 429, 502, 503, 504),
    },
)
async def chat_completions(
    body: ChatCompletionRequest,
    principal: KeyChatLimited,
    flow: OpenAIFlow,
    usage: Usage,
    response: Response,
) -> Any:
    completion = await Completion.start(flow, body, usage, principal)
    if body.stream:
        include_usage = bool(body.stream_options and body.stream_options.include_usage)
        stream = AnswerStream(completion.chunks(include_usage), completion.answer.cancel)
        stream.headers[AI_GENERATED_HEADER] = "true"
        return stream
    response.headers[AI_GENERATED_HEADER] = "true"
    return await completion.whole()
