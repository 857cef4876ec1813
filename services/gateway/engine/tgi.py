"""TGI's native API: POST /generate_stream with the rendered prompt text, /info, /tokenize."""

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
    EngineGenerationFailed,
    EngineOverloaded,
    EngineProtocolError,
    EngineRejected,
)

log = logging.getLogger(__name__)


class TGIClient(EngineClient):
    async def info(self) -> EngineInfo:
        body = await self._json("GET", "/info")
        try:
            return EngineInfo(
                model_id=str(body["model_id"]),
                max_total_tokens=int(body["max_total_tokens"]),
                max_input_tokens=int(body["max_input_tokens"])
                if body.get("max_input_tokens") is not None
                else None,
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise EngineProtocolError(f"/info lacks {exc}") from exc

    async def tokenize(self, text: str, model: str | None = None) -> list[int] | None:
        if model is not None:  # an adapter: a generation through it proves it answers
            return await self.prefill_ids(text, model)
        try:
            body = await self._json("POST", "/tokenize", {"inputs": text})
        except EngineProtocolError:
            # TGI has /tokenize only with a fast tokenizer; Baichuan ships none.
            return await self.prefill_ids(text)
        try:
            return [int(t["id"]) for t in body]
        except (KeyError, TypeError, ValueError) as exc:
            raise EngineProtocolError("/tokenize answered an unexpected shape") from exc

    async def prefill_ids(self, text: str, adapter_id: str | None = None) -> list[int]:
        """The ids the model actually saw for a prompt: a one-token generation with
        `decoder_input_details` lists them (any BOS the router adds included)."""
        parameters: dict[str, Any] = {
            "max_new_tokens": 1,
            "details": True,
            "decoder_input_details": True,
        }
        if adapter_id is not None:
            parameters["adapter_id"] = adapter_id
        body = await self._json("POST", "/generate", {"inputs": text, "parameters": parameters})
        try:
            return [int(t["id"]) for t in body["details"]["prefill"]]
        except (KeyError, TypeError, ValueError) as exc:
            raise EngineProtocolError("/generate lacks details.prefill") from exc

    def generate(self, prompt: str, params: GenerationParams) -> Generation:
        parameters: dict[str, Any] = {
            "max_new_tokens": params.max_new_tokens,
            "do_sample": params.do_sample,
            "details": True,
        }
        # TGI rejects top_p=1.0 (it must be strictly inside (0, 1)): 1 means "not set".
        if params.top_p is not None and 0 < params.top_p < 1:
            parameters["top_p"] = params.top_p
        if params.temperature is not None and params.temperature > 0:
            parameters["temperature"] = params.temperature
        else:
            parameters["do_sample"] = False
        for name in ("top_k", "repetition_penalty", "seed"):
            if (value := getattr(params, name)) is not None:
                parameters[name] = value
        if params.stop:
            parameters["stop"] = params.stop
        if params.model is not None:
            parameters["adapter_id"] = params.model
        body = {"inputs": prompt, "parameters": parameters, "stream": True}
        return Generation(lambda g: self._stream("/generate_stream", body, g, _TGI_EVENTS))


class _TGIEvents:
    """TGI's stream: one StreamResponse per token, the last with `generated_text` and
    `details`; a failure is an `error` event on the 200 stream."""

    def feed(self, payload: bytes) -> tuple[Token | Finish, ...]:
        event = json_event(payload, "TGI")
        if "error" in event:
            kind = event.get("error_type")
            message = str(event["error"])[:300]
            if kind == "overloaded":
                raise EngineOverloaded(message, retry_after_s=1)
            if kind == "validation":
                raise EngineRejected(message)
            raise EngineGenerationFailed(f"TGI failed mid-stream: {message}")
        token = event.get("token")
        if not isinstance(token, dict):
            raise EngineProtocolError("TGI event without a token")
        text = () if token.get("special") else (Token(str(token.get("text", ""))),)
        if event.get("generated_text") is None:
            return text
        details = event.get("details") or {}
        reason = details.get("finish_reason", "eos_token")
        finish = Finish(
            "length" if reason == "length" else "stop", int(details.get("generated_tokens", 0))
        )
        return (*text, finish)

    def end(self) -> Finish:
        raise EngineGenerationFailed("the engine's stream ended without a final event")


_TGI_EVENTS = _TGIEvents()
