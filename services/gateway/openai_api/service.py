"""The OpenAI-compatible chat completion: the shared generation flow (chat/generation.py)
with OpenAI's request fields, errors and answer shapes, whole or streamed as chunks.

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

from services.core.chatformat import ControlTokenLeak, PromptTooLong, Turn
from services.core.registry import list_models as list_models_in
from services.core.safety import detect_prescription, disclaimer
from services.gateway.auth.principal import Principal
from services.gateway.chat.generation import Answer, GenerationFlow, Sampling
from services.gateway.chat.runtime import ChatRuntime
from services.gateway.engine import Token
from services.gateway.engine.errors import EngineError
from services.gateway.errors import ApiError

from .schemas import ChatCompletionRequest
from .usage import UsageRecorder


async def model_list(runtime: ChatRuntime) -> dict[str, Any]:
    """The engine's own model first, then the fine-tunes published to the registry;
    `serving` marks the one that answers (the admin's choice)."""
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


def _split(body: ChatCompletionRequest) -> tuple[str | None, list[Turn]]:
    system = "\n".join(m.content for m in body.messages if m.role == "system") or None
    turns = [Turn(role=m.role, content=m.content) for m in body.messages if m.role != "system"]
    if not turns or turns[-1].role != "user":
        raise ApiError(400, "invalid_request", "the last message must be from the user", "messages")
    return system, turns


class Completion:
    """One chat completion: started by `start`, then `whole()` or `chunks()`."""

    def __init__(self, answer: Answer, usage: UsageRecorder, principal: Principal):
        self.answer = answer
        self.usage = usage
        self.principal = principal
        notice = answer.notice
        self.meta = {
            "id": f"chatcmpl-{uuid.uuid4().hex}",
            "created": int(time.time()),
            "model": answer.model,  # the model that answered, as OpenAI reports it
            "ai_generated": True,
        }
        # On the whole answer, and in a stream on the first chunk and the closing ones, not in
        # every token's chunk: they made it 394 bytes instead of 223, and chunk size shows in
        # the gateway's CPU (bench/gateway_overhead.py: ~0.3 ms per 64-token answer between
        # 394- and ~130-byte chunks).
        self.notices: dict[str, Any] = {
            "disclaimer": disclaimer("zh"),
            "emergency": notice.model_dump() if notice else None,
            "turns_used": answer.prompt.turns_kept,
        }

    @classmethod
    async def start(
        cls,
        flow: GenerationFlow,
        body: ChatCompletionRequest,
        usage: UsageRecorder,
        principal: Principal,
    ) -> Completion:
        await flow.guard()
        system, turns = _split(body)
        s = flow.runtime.settings
        max_new = min(
            body.max_completion_tokens or body.max_tokens or s.max_new_tokens, s.max_new_tokens
        )
        try:
            prompt = await flow.render(turns, max_new, system)
        except PromptTooLong as exc:
            raise ApiError(400, "context_length_exceeded", str(exc), "messages") from exc
        except ControlTokenLeak as exc:
            raise ApiError(
                422,
                "message_unrenderable",
                "the messages cannot be sent to the model as written: they contain characters"
                " its tokenizer cannot represent safely",
                "messages",
            ) from exc
        sampling = Sampling(
            temperature=body.temperature, top_p=body.top_p, stop=body.stop_list, seed=body.seed
        )
        answer = await flow.start(
            prompt,
            max_new,
            emergency_text=turns[-1].content,
            model=body.model,
            sampling=sampling,
        )
        return cls(answer, usage, principal)

    def _usage(self) -> dict[str, int]:
        a = self.answer
        return {
            "prompt_tokens": a.prompt_tokens,
            "completion_tokens": a.completion,
            "total_tokens": a.prompt_tokens + a.completion,
        }

    async def _record(self) -> None:
        self.answer.finished()
        if (key := self.principal.api_key_id) is not None:
            a = self.answer
            if self.usage.add(key, a.prompt_tokens, a.completion):
                with anyio.CancelScope(shield=True):  # a client that left still pays
                    await self.usage.flush()

    async def whole(self) -> dict[str, Any]:
        a = self.answer
        try:
            async for _ in a.texts():
                pass
        finally:
            a.cancel()
        if a.error is not None:
            raise ApiError(502, a.error_code or "engine_error", a.error)
        await self._record()
        return {
            **self.meta,
            **self.notices,
            "prescription": self._prescription(),
            "object": "chat.completion",
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": "".join(a.parts)},
                    "finish_reason": a.finish_reason or "stop",
                }
            ],
            "usage": self._usage(),
        }

    def _prescription(self) -> dict[str, Any] | None:
        notice = detect_prescription("".join(self.answer.parts))
        return notice.model_dump() if notice else None

    def _chunk(self, delta: dict[str, Any], finish: str | None = None, **extra: Any) -> bytes:
        body = {
            **self.meta,
            **extra,
            "object": "chat.completion.chunk",
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
        }
        return b"data: " + orjson.dumps(body) + b"\n\n"

    async def chunks(self, include_usage: bool) -> AsyncIterator[bytes]:
        a = self.answer
        yield self._chunk({"role": "assistant", "content": ""}, **self.notices)
        # Per token only the text is serialized; the rest of the chunk is fixed bytes (the
        # relay's CPU per token is what limits concurrent streams).
        head, tail = self._chunk({"content": "\x00"}).split(b'"\\u0000"')
        parts, dumps = a.parts, orjson.dumps
        try:
            try:
                # Answer.texts()'s loop, inline: one generator fewer per token.
                async for event in a.generation:
                    if isinstance(event, Token):
                        parts.append(event.text)
                        yield head + dumps(event.text) + tail
                    else:
                        a.complete(event)
            except EngineError as exc:
                a.fail(exc)
            if a.error is not None:
                error = {"message": a.error, "type": a.error_code, "code": a.error_code}
                yield b"data: " + orjson.dumps({"error": {**error, "param": None}}) + b"\n\n"
            else:
                if a.status == "complete":  # the whole answer is known: its notice too
                    yield self._chunk(
                        {}, a.finish_reason, **self.notices, prescription=self._prescription()
                    )
                if include_usage:
                    usage = {
                        **self.meta,
                        **self.notices,
                        "object": "chat.completion.chunk",
                        "choices": [],
                        "usage": self._usage(),
                    }
                    yield b"data: " + orjson.dumps(usage) + b"\n\n"
        finally:
            a.cancel()  # a client that went away frees the engine slot at once
            await self._record()
        yield b"data: [DONE]\n\n"
