"""One small interface over the two engine protocols.

- TGI native: POST /generate_stream with the rendered prompt text, /info, /tokenize.
- OpenAI-compatible: POST /v1/completions with the same raw prompt (vLLM, SGLang, TGI,
  `transformers serve`).

Both are spoken over one pooled aiohttp session per process. aiohttp rather than httpx
(which the maintained clients, huggingface_hub and openai, build on): in
../shared/bench/gateway an httpx relay added +198 ms p99 at 32 streams and collapsed at 128,
aiohttp held (DESIGN.md); the gateway's targets sit just above aiohttp's floor.
"""

from __future__ import annotations

import asyncio
import logging
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import aiohttp
import orjson
from aiohttp.http_exceptions import HttpProcessingError

from .errors import (
    EngineError,
    EngineGenerationFailed,
    EngineOverloaded,
    EngineProtocolError,
    EngineRejected,
    EngineTimeout,
    EngineUnavailable,
)

log = logging.getLogger(__name__)
T = TypeVar("T")


@dataclass(frozen=True)
class EngineInfo:
    model_id: str
    max_total_tokens: int
    max_input_tokens: int | None


@dataclass(frozen=True)
class GenerationParams:
    max_new_tokens: int
    temperature: float | None = None
    top_k: int | None = None
    top_p: float | None = None
    repetition_penalty: float | None = None
    do_sample: bool = True
    stop: list[str] = field(default_factory=list)
    seed: int | None = None
    # The engine's name for the model to answer with (an OpenAI `model`, a TGI adapter id);
    # None: the engine's own default model.
    model: str | None = None


@dataclass(frozen=True, slots=True)
class Token:
    text: str


@dataclass(frozen=True, slots=True)
class Finish:
    reason: str  # "stop" | "length"
    completion_tokens: int
    prompt_tokens: int | None = None


class Generation:
    """A running generation: iterate it for Tokens then one Finish; `cancel()` closes the
    upstream request (the engine frees the slot when the connection drops)."""

    def __init__(self, events: Callable[[Generation], AsyncIterator[Token | Finish]]):
        self._response: aiohttp.ClientResponse | None = None
        self.cancelled = False
        self._events = events(self)

    def __aiter__(self) -> AsyncIterator[Token | Finish]:
        return self._events

    def cancel(self) -> None:
        self.cancelled = True
        if self._response is not None:
            self._response.close()

    async def first_event_while(self, work: Callable[[], T]) -> tuple[Token | Finish | None, T]:
        """The first event (None: the stream ended at once) and the result of `work`, done
        while the engine prepares that event: CPU work of ours (the emergency rules) then
        adds nothing to the time to first token."""
        pending = asyncio.ensure_future(anext(self._events, None))
        try:
            await asyncio.sleep(0)  # the request leaves before `work` holds the loop
            result = work()
            return await pending, result
        finally:
            pending.cancel()  # a no-op once done; else the caller was cancelled or `work` failed


class EngineClient(ABC):
    def __init__(
        self,
        base_url: str,
        *,
        connect_timeout_s: float = 5.0,
        first_token_timeout_s: float = 60.0,
        total_timeout_s: float = 600.0,
        retries: int = 2,
    ):
        self.base_url = base_url.rstrip("/")
        self.first_token_timeout_s = first_token_timeout_s
        self.retries = retries
        self._session = aiohttp.ClientSession(
            timeout=aiohttp.ClientTimeout(
                total=total_timeout_s,
                sock_connect=connect_timeout_s,
                sock_read=first_token_timeout_s,
            ),
            connector=aiohttp.TCPConnector(limit=0, keepalive_timeout=30),
            json_serialize=lambda o: orjson.dumps(o).decode(),
        )

    async def close(self) -> None:
        await self._session.close()

    @abstractmethod
    async def info(self) -> EngineInfo: ...

    async def tokenize(self, text: str, model: str | None = None) -> list[int] | None:
        """The engine's own tokenization of a prompt string (as `model` would see it);
        None when it has no such API."""
        return None

    async def prompt_tokens(self, text: str, model: str | None = None) -> int | None:
        """How many tokens the engine makes of a prompt, where it can only tell the count."""
        return None

    async def healthy(self) -> bool:
        try:
            response = await self._request("GET", self.health_path)
        except EngineError:
            return False
        response.close()
        return True

    health_path = "/health"

    @abstractmethod
    def generate(self, prompt: str, params: GenerationParams) -> Generation: ...

    # --- shared plumbing --------------------------------------------------------------

    async def _with_retries(self, attempt: Callable[[], Awaitable[T]]) -> T:
        """Retry only failures that happen before any output (connect, 5xx, overloaded)."""
        for n in range(self.retries + 1):
            try:
                return await attempt()
            except EngineError as exc:
                if not exc.retryable or n == self.retries:
                    raise
                await asyncio.sleep(0.2 * 2**n)
        raise AssertionError("unreachable")

    async def _request(self, method: str, path: str, body: Any = None) -> aiohttp.ClientResponse:
        try:
            response = await self._session.request(method, self.base_url + path, json=body)
        except TimeoutError as exc:
            raise EngineTimeout(
                f"the engine at {self.base_url} did not answer {path} in time"
            ) from exc
        except aiohttp.ClientError as exc:
            # The address and the exception are for the log (EngineError.detail), never for
            # the patient (see errors.py).
            raise EngineUnavailable(
                f"cannot reach the engine at {self.base_url}{path}: {type(exc).__name__}: {exc}"
            ) from exc
        if response.status >= 400:
            raise await _error_from(response)
        return response

    async def _json(self, method: str, path: str, body: Any = None) -> Any:
        async def attempt() -> Any:
            response = await self._request(method, path, body)
            async with response:
                try:
                    raw = await response.read()
                except TimeoutError as exc:
                    raise EngineTimeout(f"{self.base_url}{path} stopped answering") from exc
                except aiohttp.ClientError as exc:  # e.g. the connection dropped mid-body
                    raise EngineUnavailable(
                        f"the answer of {self.base_url}{path} broke off:"
                        f" {type(exc).__name__}: {exc}"
                    ) from exc
            try:
                return orjson.loads(raw)
            except orjson.JSONDecodeError as exc:
                raise EngineProtocolError(f"{path} answered non-JSON") from exc

        return await self._with_retries(attempt)

    async def _sse(self, path: str, body: Any, generation: Generation) -> AsyncIterator[bytes]:
        """`data:` payloads of an SSE response, one at a time."""
        response = await self._with_retries(lambda: self._request("POST", path, body))
        generation._response = response
        try:
            async for line in response.content:
                if line.startswith(b"data:"):
                    yield line[5:].strip()
        except TimeoutError as exc:
            raise EngineTimeout(f"the engine at {self.base_url} stopped sending tokens") from exc
        except (aiohttp.ClientError, ConnectionError) as exc:
            if generation.cancelled:
                return
            raise EngineGenerationFailed(
                f"the stream of {self.base_url}{path} broke: {type(exc).__name__}: {exc}"
            ) from exc
        except (HttpProcessingError, ValueError) as exc:  # LineTooLong: one line past the
            # read buffer's limit (512 KiB with aiohttp 3.14): no engine sends such an event
            raise EngineProtocolError(f"{path} sent an unreadable stream: {exc}") from exc
        finally:
            response.close()


async def _error_from(response: aiohttp.ClientResponse) -> EngineError:
    """Map an HTTP error answer to a typed error (TGI: 422, 424, 429; others: 5xx)."""
    try:
        async with response:
            raw = await response.read()
    except (aiohttp.ClientError, TimeoutError):  # the status says enough
        raw = b""
    try:
        body = orjson.loads(raw)
        message = str(body.get("error") or body.get("message") or body.get("detail") or body)
    except (orjson.JSONDecodeError, AttributeError):
        message = raw.decode(errors="replace")
    message = message[:300]  # for the log only (EngineError.detail): never shown to callers
    retry_after = response.headers.get("Retry-After")
    retry_s = int(retry_after) if retry_after and retry_after.isdigit() else None
    if response.status == 429:
        return EngineOverloaded(f"engine overloaded: {message}", retry_after_s=retry_s or 1)
    if response.status in (400, 422):
        return EngineRejected(f"engine rejected the request: {message}")
    if response.status == 424:
        return EngineGenerationFailed(f"generation failed: {message}")
    if response.status == 404:
        return EngineProtocolError(f"the engine answered 404 to {response.url.path}: {message}")
    return EngineUnavailable(f"engine answered {response.status}: {message}", retry_after_s=retry_s)


def _unreadable(exc: Exception) -> EngineProtocolError:
    """An event whose fields are not what the protocol says (a list for an object, text for
    a number): the answer fails as unreadable rather than crashing the request."""
    return EngineProtocolError(f"an event the gateway cannot read: {type(exc).__name__}: {exc}")


def _loads(payload: bytes, what: str) -> Any:
    try:
        return orjson.loads(payload)
    except orjson.JSONDecodeError as exc:
        raise EngineProtocolError(f"{what} sent an event that is not JSON") from exc


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
        return Generation(lambda g: self._tgi_events(body, g))

    async def _tgi_events(
        self, body: dict[str, Any], generation: Generation
    ) -> AsyncIterator[Token | Finish]:
        try:
            async for payload in self._sse("/generate_stream", body, generation):
                event = _loads(payload, "TGI")
                if not isinstance(event, dict):
                    raise EngineProtocolError("TGI sent an event that is not an object")
                if "error" in event:  # TGI reports failures as an event on a 200 stream
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
                if not token.get("special"):
                    yield Token(str(token.get("text", "")))
                if event.get("generated_text") is not None:
                    details = event.get("details") or {}
                    reason = details.get("finish_reason", "eos_token")
                    yield Finish(
                        "length" if reason == "length" else "stop",
                        int(details.get("generated_tokens", 0)),
                    )
                    return
        except (AttributeError, KeyError, TypeError, ValueError) as exc:
            raise _unreadable(exc) from exc
        if not generation.cancelled:
            raise EngineGenerationFailed("the engine's stream ended without a final event")


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
        return Generation(lambda g: self._events(body, g))

    async def _events(
        self, body: dict[str, Any], generation: Generation
    ) -> AsyncIterator[Token | Finish]:
        reason: str | None = None
        completion = prompt_tokens = None
        try:
            async for payload in self._sse("/v1/completions", body, generation):
                if payload == b"[DONE]":
                    if reason is None:
                        raise EngineGenerationFailed("the stream ended before a finish_reason")
                    yield Finish(reason, completion or 0, prompt_tokens)
                    return
                event = _loads(payload, "the engine")
                if not isinstance(event, dict):
                    raise EngineProtocolError("an event that is not an object")
                if "error" in event:
                    # vLLM: {"error": {"message", "type", "code"}}, then [DONE]. transformers
                    # serve: {"error": "<text>"}, then the stream ends (no finish chunk, no
                    # [DONE]); e.g. "Invalid prefix encountered while decoding stream ..." when
                    # generated byte-fallback pieces are not valid UTF-8. The tokens before
                    # it were yielded already: the caller keeps the partial answer.
                    error = event["error"]
                    message = error.get("message", error) if isinstance(error, dict) else error
                    raise EngineGenerationFailed(
                        f"the engine failed mid-stream: {str(message)[:300]}"
                    )
                usage = event.get("usage")
                if usage:
                    completion = usage.get("completion_tokens")
                    prompt_tokens = usage.get("prompt_tokens")
                for choice in event.get("choices") or []:
                    if choice.get("text"):
                        yield Token(str(choice["text"]))
                    if choice.get("finish_reason"):
                        reason = "length" if choice["finish_reason"] == "length" else "stop"
        except (AttributeError, KeyError, TypeError, ValueError) as exc:
            raise _unreadable(exc) from exc
        if reason is not None:  # transformers serve closes after the finish chunk, no [DONE]
            yield Finish(reason, completion or 0, prompt_tokens)
        elif not generation.cancelled:
            raise EngineGenerationFailed("the engine's stream ended without a finish_reason")


def make_client(
    protocol: str, base_url: str, *, model: str, sampling_extras: bool = True, **kw: Any
) -> EngineClient:
    if protocol == "tgi":
        return TGIClient(base_url, **kw)
    return OpenAICompletionsClient(base_url, model=model, sampling_extras=sampling_extras, **kw)
