"""OpenAI-compatible completions: POST /v1/completions with the raw prompt (vLLM, SGLang, TGI,
`transformers serve`), and vLLM's runtime LoRA adapters (list, load)."""

from __future__ import annotations

import logging
from typing import Any

from .base import (
    EngineClient,
    EngineInfo,
    Finish,
    Generation,
    GenerationParams,
    Token,
    json_event,
)
from .errors import (
    EngineError,
    EngineGenerationFailed,
    EngineProtocolError,
    EngineRejected,
)

log = logging.getLogger(__name__)


class OpenAICompletionsClient(EngineClient):
    health_path = "/v1/models"  # the one route every OpenAI-compatible server has

    def __init__(self, base_url: str, *, model: str, sampling_extras: bool = True, **kw: Any):
        super().__init__(base_url, **kw)
        self.model = model
        # top_k and repetition_penalty are vLLM/SGLang/TGI extensions; `transformers serve`
        # refuses fields outside OpenAI's schema (and takes them from generation_config).
        self.sampling_extras = sampling_extras

    async def info(self) -> EngineInfo:
        body = await self._json("GET", "/v1/models")
        models = body.get("data") if isinstance(body, dict) else None
        if not models:
            raise EngineProtocolError("/v1/models lists no model")
        entry = next((m for m in models if m.get("id") == self.model), None)
        if entry is None:
            served = ", ".join(str(m.get("id")) for m in models)
            raise EngineProtocolError(
                f"the engine serves {served}, not {self.model!r}: set MEDCHAT_ENGINE_MODEL"
            )
        # vLLM reports max_model_len; other servers do not say: the settings decide then.
        max_len = entry.get("max_model_len")
        return EngineInfo(str(entry.get("id")), int(max_len) if max_len else 0, None)

    async def served_models(self) -> list[str]:
        body = await self._json("GET", "/v1/models")
        models = body.get("data") if isinstance(body, dict) else None
        return [str(m.get("id")) for m in models or [] if isinstance(m, dict)]

    async def load_adapter(self, name: str, path: str) -> None:
        """vLLM's runtime LoRA loading (VLLM_ALLOW_RUNTIME_LORA_UPDATING=True)."""
        try:
            response = await self._request(
                "POST", "/v1/load_lora_adapter", {"lora_name": name, "lora_path": path}
            )
        except EngineError as exc:
            if isinstance(exc, EngineRejected) and "already been loaded" in exc.detail:
                return
            # Callers say str(exc), the plain sentence: the engine's reason is logged here.
            log.warning("the engine did not load adapter %s: %s", name, exc.detail)
            raise
        response.close()

    async def prompt_tokens(self, text: str, model: str | None = None) -> int | None:
        body = await self._json(
            "POST",
            "/v1/completions",
            {"model": model or self.model, "prompt": text, "max_tokens": 1},
        )
        usage = body.get("usage") if isinstance(body, dict) else None
        count = usage.get("prompt_tokens") if isinstance(usage, dict) else None
        return int(count) if count is not None else None

    def generate(self, prompt: str, params: GenerationParams) -> Generation:
        body: dict[str, Any] = {
            "model": params.model or self.model,
            "prompt": prompt,
            "max_tokens": params.max_new_tokens,
            "stream": True,
            "stream_options": {"include_usage": True},
        }
        if params.temperature is not None:
            body["temperature"] = params.temperature if params.do_sample else 0.0
        names = ("top_p", "seed") + (
            ("top_k", "repetition_penalty") if self.sampling_extras else ()
        )
        for name in names:
            if (value := getattr(params, name)) is not None:
                body[name] = value
        if params.stop:
            body["stop"] = params.stop
        return Generation(lambda g: self._stream("/v1/completions", body, g, _CompletionEvents()))


class _CompletionEvents:
    """An OpenAI completions stream: text chunks, one with the finish_reason, the usage chunk
    (stream_options.include_usage), then `[DONE]`."""

    __slots__ = ("completion", "prompt_tokens", "reason")

    def __init__(self) -> None:
        self.reason: str | None = None
        self.completion: int | None = None
        self.prompt_tokens: int | None = None

    def feed(self, payload: bytes) -> tuple[Token | Finish, ...]:
        if payload == b"[DONE]":
            if self.reason is None:
                raise EngineGenerationFailed("the stream ended before a finish_reason")
            return (self.end(),)
        event = json_event(payload, "the engine")
        if "error" in event:
            # vLLM: {"error": {"message", "type", "code"}}, then [DONE].
            # transformers serve: {"error": "<text>"}, then the stream ends (no finish chunk,
            # no [DONE]); e.g. "Invalid prefix encountered while decoding stream ..." when
            # generated byte-fallback pieces are not valid UTF-8. The tokens before it were
            # yielded already: the caller keeps the partial answer.
            error = event["error"]
            message = error.get("message", error) if isinstance(error, dict) else error
            raise EngineGenerationFailed(f"the engine failed mid-stream: {str(message)[:300]}")
        usage = event.get("usage")
        if usage:
            self.completion = usage.get("completion_tokens")
            self.prompt_tokens = usage.get("prompt_tokens")
        tokens: tuple[Token, ...] = ()
        for choice in event.get("choices") or []:
            if choice.get("text"):
                tokens += (Token(str(choice["text"])),)
            if choice.get("finish_reason"):
                self.reason = "length" if choice["finish_reason"] == "length" else "stop"
        return tokens

    def end(self) -> Finish:
        # transformers serve closes the stream after the finish chunk, without [DONE]
        if self.reason is None:
            raise EngineGenerationFailed("the engine's stream ended without a finish_reason")
        return Finish(self.reason, self.completion or 0, self.prompt_tokens)
