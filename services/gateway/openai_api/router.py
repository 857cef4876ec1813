"""OpenAI-compatible API for integrators: the official SDK works against it unchanged.

Messages are rendered with the same format module as the patient chat; every answer carries
the not-a-diagnosis disclaimer and, when the user's words suggest one, an emergency notice
(extra top-level fields `disclaimer` and `emergency`, which OpenAI clients pass through).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import anyio
import orjson
from fastapi import APIRouter, Request
from fastapi.responses import StreamingResponse

from services.core.chatformat import ControlTokenLeak, PromptTooLong, Turn
from services.core.registry import list_models as list_models_in
from services.core.safety import detect_emergency, disclaimer
from services.gateway.auth.dependencies import CurrentPrincipal, Principal
from services.gateway.chat.service import ChatRuntime
from services.gateway.engine.client import Finish, Generation, Token
from services.gateway.engine.errors import EngineError, user_message
from services.gateway.errors import ApiError
from services.gateway.observability import Metrics
from services.gateway.ratelimit import KeyChatLimited

from .schemas import ChatCompletionRequest

router = APIRouter(prefix="/v1", tags=["openai"])


def _retry_headers(exc: EngineError) -> dict[str, str]:
    return {"Retry-After": str(exc.retry_after_s or 5)} if exc.status == 503 else {}


@router.get("/models")
async def list_models(request: Request, _: CurrentPrincipal) -> dict[str, Any]:
    """The engine's own model first, then the fine-tunes published to the registry;
    `serving` marks the one that answers (the admin's choice)."""
    runtime: ChatRuntime = request.app.state.chat
    default = runtime.settings.served_model_name
    serving = (await runtime.serving.current()).name
    data: list[dict[str, Any]] = [
        {
            "id": default,
            "object": "model",
            "created": 0,
            "owned_by": "disc-medchat",
            "serving": serving == default,
        }
    ]
    for m in list_models_in(runtime.settings.models_dir):
        if m.name != default and (m.kind != "base" or m.name == serving):
            data.append(
                {
                    "id": m.name,
                    "object": "model",
                    "created": m.created_at,
                    "owned_by": "disc-medchat",
                    "parent": m.base,
                    "kind": m.kind,
                    "serving": m.name == serving,
                }
            )
    return {"object": "list", "data": data}


async def _record_usage(
    request: Request, principal: Principal, prompt: int, completion: int
) -> None:
    request.app.state.metrics.tokens.labels("openai").inc(completion)
    if principal.api_key_id is not None:
        with anyio.CancelScope(shield=True):
            await request.app.state.usage.add(principal.api_key_id, prompt, completion)


@router.post("/chat/completions")
async def chat_completions(
    body: ChatCompletionRequest, request: Request, principal: KeyChatLimited
) -> Any:
    runtime: ChatRuntime = request.app.state.chat
    await runtime.guard()
    system = "\n".join(m.content for m in body.messages if m.role == "system") or None
    turns = [Turn(role=m.role, content=m.content) for m in body.messages if m.role != "system"]
    if not turns or turns[-1].role != "user":
        raise ApiError(400, "invalid_request", "the last message must be from the user", "messages")
    s = runtime.settings
    max_new = min(
        body.max_completion_tokens or body.max_tokens or s.max_new_tokens, s.max_new_tokens
    )
    try:
        budget = await runtime.budget(max_new)
        prompt = runtime.format.render_prompt(turns, budget, system)
    except PromptTooLong as exc:
        raise ApiError(400, "context_length_exceeded", str(exc), "messages") from exc
    except ControlTokenLeak as exc:
        raise ApiError(
            422,
            "message_unrenderable",
            "the messages cannot be sent to the model as written: they contain characters its"
            " tokenizer cannot represent safely",
            "messages",
        ) from exc
    served = await runtime.serving.for_request(
        body.model, runtime.settings, runtime.engine, runtime.format
    )
    params = runtime.params(
        max_new,
        temperature=body.temperature,
        top_p=body.top_p,
        stop=body.stop_list,
        seed=body.seed,
        model=served.engine_ref,
    )
    metrics: Metrics = request.app.state.metrics
    started = time.perf_counter()
    generation = runtime.engine.generate(prompt.text, params)
    events = aiter(generation)
    try:
        first, notice = await generation.first_event_while(
            lambda: detect_emergency(turns[-1].content)
        )
    except EngineError as exc:
        metrics.engine_errors.labels(exc.code).inc()
        raise ApiError(
            exc.status, exc.code, user_message(exc), headers=_retry_headers(exc)
        ) from exc
    metrics.ttft.labels("openai").observe(time.perf_counter() - started)
    meta = {
        "id": f"chatcmpl-{uuid.uuid4().hex}",
        "created": int(time.time()),
        "model": served.name,  # the model that answered, as OpenAI reports it
        "disclaimer": disclaimer("zh"),
        "emergency": notice.model_dump() if notice else None,
        "turns_used": prompt.turns_kept,
    }
    prompt_tokens = len(prompt.input_ids)
    if body.stream:
        include_usage = bool(body.stream_options and body.stream_options.include_usage)
        return StreamingResponse(
            _chunks(
                request, principal, generation, first, events, meta, prompt_tokens, include_usage
            ),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )
    parts: list[str] = []
    finish: Finish | None = None
    try:
        async for event in _chain(first, events):
            if isinstance(event, Token):
                parts.append(event.text)
            else:
                finish = event
    except EngineError as exc:
        raise ApiError(502, exc.code, user_message(exc)) from exc
    completion = finish.completion_tokens if finish else len(parts)
    await _record_usage(request, principal, prompt_tokens, completion)
    return {
        **meta,
        "object": "chat.completion",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": "".join(parts)},
                "finish_reason": finish.reason if finish else "stop",
            }
        ],
        "usage": {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion,
            "total_tokens": prompt_tokens + completion,
        },
    }


async def _chain(
    first: Token | Finish | None, events: AsyncIterator[Token | Finish]
) -> AsyncIterator[Token | Finish]:
    if first is not None:
        yield first
    async for event in events:
        yield event


def _chunk(
    meta: dict[str, Any], delta: dict[str, Any], finish: str | None = None, **extra: Any
) -> bytes:
    body = {
        **meta,
        "object": "chat.completion.chunk",
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
        **extra,
    }
    return b"data: " + orjson.dumps(body) + b"\n\n"


async def _chunks(
    request: Request,
    principal: Principal,
    generation: Generation,
    first: Token | Finish | None,
    events: AsyncIterator[Token | Finish],
    meta: dict[str, Any],
    prompt_tokens: int,
    include_usage: bool,
) -> AsyncIterator[bytes]:
    completion = 0
    yield _chunk(meta, {"role": "assistant", "content": ""})
    # Per token only the text is serialized; the rest of the chunk is fixed bytes (the
    # relay's CPU per token is what limits concurrent streams).
    head, tail = _chunk(meta, {"content": "\x00"}).split(b'"\\u0000"')
    try:
        async for event in _chain(first, events):
            if isinstance(event, Token):
                completion += 1
                yield head + orjson.dumps(event.text) + tail
            else:
                completion = event.completion_tokens or completion
                yield _chunk(meta, {}, event.reason)
        if include_usage:
            usage = {
                "prompt_tokens": prompt_tokens,
                "completion_tokens": completion,
                "total_tokens": prompt_tokens + completion,
            }
            yield (
                b"data: "
                + orjson.dumps(
                    {**meta, "object": "chat.completion.chunk", "choices": [], "usage": usage}
                )
                + b"\n\n"
            )
    except EngineError as exc:
        yield (
            b"data: "
            + orjson.dumps(
                {
                    "error": {
                        "message": user_message(exc),
                        "type": exc.code,
                        "code": exc.code,
                        "param": None,
                    }
                }
            )
            + b"\n\n"
        )
    finally:
        generation.cancel()  # a client that went away frees the engine slot at once
        await _record_usage(request, principal, prompt_tokens, completion)
    yield b"data: [DONE]\n\n"
