"""The engine interface both protocols implement, and the HTTP/SSE plumbing they share.

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


def unreadable(exc: Exception) -> EngineProtocolError:
    """An event whose fields are not what the protocol says (a list for an object, text for
    a number): the answer fails as unreadable rather than crashing the request."""
    return EngineProtocolError(f"an event the gateway cannot read: {type(exc).__name__}: {exc}")


def loads(payload: bytes, what: str) -> Any:
    try:
        return orjson.loads(payload)
    except orjson.JSONDecodeError as exc:
        raise EngineProtocolError(f"{what} sent an event that is not JSON") from exc
