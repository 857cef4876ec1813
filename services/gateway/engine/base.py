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
from typing import Any, Protocol, TypeVar

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


@dataclass(slots=True)
class Token:
    # Not frozen: a frozen dataclass sets its fields through object.__setattr__, and one
    # Token is made per generated token.
    text: str


@dataclass(frozen=True, slots=True)
class Finish:
    reason: str  # "stop" | "length"
    completion_tokens: int
    prompt_tokens: int | None = None


class Generation:
    """A running generation: iterate it for Tokens then one Finish; `cancel()` closes the
    upstream request (the engine frees the slot when the connection drops)."""

    __slots__ = ("_events", "_peeked", "_response", "cancelled")

    def __init__(self, events: Callable[[Generation], AsyncIterator[Token | Finish]]):
        self._response: aiohttp.ClientResponse | None = None
        self.cancelled = False
        self._peeked: Token | Finish | None = None
        self._events = events(self)

    def __aiter__(self) -> Generation:
        return self

    def __anext__(self) -> Awaitable[Token | Finish]:
        # The protocol's own generator, not a generator around it: this runs once per token,
        # and every async generator in the chain costs its resumption per token.
        if self._peeked is None:
            return self._events.__anext__()
        peeked, self._peeked = self._peeked, None
        return _ready(peeked)

    def cancel(self) -> None:
        self.cancelled = True
        if self._response is not None:
            self._response.close()

    async def first_event_while(self, work: Callable[[], T]) -> T:
        """Wait for the engine's first event (kept: iterating yields it first; engine errors
        before it are raised here) and return the result of `work`, done while the engine
        prepares that event: CPU work of ours (the emergency rules) then adds nothing to the
        time to first token."""
        pending = asyncio.ensure_future(anext(self._events, None))
        try:
            await asyncio.sleep(0)  # the request leaves before `work` holds the loop
            result = work()
            self._peeked = await pending
            return result
        finally:
            pending.cancel()  # a no-op once done; else the caller was cancelled or `work` failed


async def _ready(event: Token | Finish) -> Token | Finish:
    return event


# What reading an engine's body can raise: the watchdog's timeout, a broken connection, a
# malformed chunked body.
_READ_FAILURES = (
    TimeoutError,
    aiohttp.ClientError,
    ConnectionError,
    HttpProcessingError,
    ValueError,
)


class _Expired(TimeoutError):
    """A deadline of the stream passed (set on the response body by `_SSE`'s watchdog)."""


# The longest line of an event stream (aiohttp's readline limit, which this replaces, is
# twice its 256 KiB read buffer): no engine sends such an event.
MAX_SSE_LINE = 2 * 2**18
# A finished stream whose last bytes (the chunked body's end) are still on the way keeps
# its connection this long, so that it goes back to the pool instead of being closed.
DRAIN_GRACE_S = 1.0


class EventParser(Protocol):
    """One protocol's reading of its stream: `feed` turns one `data:` payload into the events
    it holds (a Finish last, which ends the stream), `end` is what a body that ended without
    a Finish means (a Finish where the protocol allows that, else it raises)."""

    def feed(self, payload: bytes) -> tuple[Token | Finish, ...]: ...

    def end(self) -> Finish: ...


class _SSE:
    """An open SSE response: its `data:` payloads, a network chunk at a time (`payloads`),
    read by `EngineClient._stream`.

    Timeouts are enforced once per stream, not per chunk: aiohttp's `sock_read` re-arms a
    timer on every chunk it receives (and its `total` enters a timer context on every
    read), which at 64 tokens per answer was a visible part of the gateway's CPU per
    request. One watchdog timer per stream instead, re-armed only when it fires: it ends
    the stream when a read has waited `stall_s` for data (the first token included, like
    `sock_read`), or when the stream passes its total deadline."""

    __slots__ = (
        "_deadline",
        "_expired",
        "_finished",
        "_generation",
        "_handle",
        "_loop",
        "_response",
        "_rest",
        "_stall_s",
        "_where",
        "content",
        "first",
        "waiting_since",
    )

    def __init__(
        self,
        response: aiohttp.ClientResponse,
        generation: Generation,
        *,
        where: str,
        stall_s: float,
        deadline: float,
    ):
        self._response = response
        self.content = response.content
        self._generation = generation
        self._where = where
        self._loop = loop = asyncio.get_running_loop()
        self._stall_s = stall_s
        self._deadline = deadline
        self._rest = b""
        self._finished = False
        self._expired = False
        self.first = True  # no payload read yet
        # When the pending read began (set by the reader around each wait); None: not waiting.
        self.waiting_since: float | None = None
        self._handle: asyncio.TimerHandle | None = loop.call_at(
            min(deadline, loop.time() + stall_s), self._watch
        )

    def payloads(self, chunk: bytes) -> list[bytes]:
        """The payloads completed by a chunk of the body (b"": its end, where a last line may
        lack its newline). Raises EngineProtocolError for a line too long to be an event."""
        if not chunk:
            rest, self._rest = self._rest, b""
            return [rest[5:].strip()] if rest.startswith(b"data:") else []
        if self._rest:
            chunk = self._rest + chunk
        lines = chunk.split(b"\n")
        self._rest = rest = lines.pop()
        if len(rest) > MAX_SSE_LINE:
            raise EngineProtocolError(f"{self._where} sent a line longer than {MAX_SSE_LINE} bytes")
        if len(lines) == 2 and not lines[1]:  # the usual chunk: one event, one line
            line = lines[0]
            payloads = [line[5:].strip()] if line.startswith(b"data:") else []
        else:
            payloads = [line[5:].strip() for line in lines if line.startswith(b"data:")]
        if payloads:
            self.first = False
        return payloads

    def failure(self, exc: Exception) -> EngineError | None:
        """What a failed read of the body means; None: the generation was cancelled (its
        connection closed on purpose), the stream just ends."""
        if isinstance(exc, TimeoutError):
            return EngineTimeout(str(exc) or f"{self._where} stopped sending tokens")
        if isinstance(exc, (aiohttp.ClientError, ConnectionError)):
            if self._generation.cancelled:
                return None
            return EngineGenerationFailed(
                f"the stream of {self._where} broke: {type(exc).__name__}: {exc}"
            )
        # HttpProcessingError, ValueError: e.g. a malformed chunked body
        return EngineProtocolError(f"{self._where} sent an unreadable stream: {exc}")

    def finished(self) -> None:
        """The protocol read its final event: the connection may go back to the pool, and
        there is nothing left for `Generation.cancel()` to close."""
        self._finished = True
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None
        if self._generation._response is self._response:
            self._generation._response = None

    def close(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None
        response = self._response
        if self._generation._response is response:
            self._generation._response = None  # over: nothing left for cancel() to close
        if not (self._finished and not self._expired):
            response.close()
        elif not self.content.is_eof():
            # The final event came before the body's end: aiohttp releases the connection
            # to the pool when that end arrives; an engine that never sends it is closed.
            self._loop.call_later(DRAIN_GRACE_S, response.close)

    def _watch(self) -> None:
        now = self._loop.time()
        since = self.waiting_since
        if now >= self._deadline:
            self._expire(f"{self._where} did not finish the answer in time")
        elif since is not None and now - since >= self._stall_s:
            what = "send its first token" if self.first else "send the next token"
            self._expire(f"{self._where} did not {what} within {self._stall_s:g} s")
        else:  # not waiting, or not for long: look again when a stall could be complete
            due = min(self._deadline, (now if since is None else since) + self._stall_s)
            self._handle = self._loop.call_at(due, self._watch)

    def _expire(self, message: str) -> None:
        """Fail the pending (or the next) read and drop the connection at once."""
        self._handle = None
        self._expired = True
        self.content.set_exception(_Expired(message))
        self._response.close()


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
        self.total_timeout_s = total_timeout_s
        self.retries = retries
        # Streams: the connect timeout only; `_SSE` enforces the first-token, stall and total
        # timeouts once per stream (the session's defaults below hold for the other calls).
        self._stream_timeout = aiohttp.ClientTimeout(
            total=None, sock_connect=connect_timeout_s, sock_read=None
        )
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

    async def _request(
        self,
        method: str,
        path: str,
        body: Any = None,
        timeout: aiohttp.ClientTimeout | None = None,
    ) -> aiohttp.ClientResponse:
        try:
            if timeout is None:
                response = await self._session.request(method, self.base_url + path, json=body)
            else:
                response = await self._session.request(
                    method, self.base_url + path, json=body, timeout=timeout
                )
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

    async def _open_sse(self, path: str, body: Any, generation: Generation) -> _SSE | None:
        """POST a streaming request; None when the generation was cancelled meanwhile."""
        loop = asyncio.get_running_loop()
        where = f"the engine at {self.base_url}{path}"
        deadline = 0.0

        async def attempt() -> aiohttp.ClientResponse:
            # Per attempt, like aiohttp's timeouts: the total from its start, and until the
            # answer's head the first-token timeout.
            nonlocal deadline
            deadline = loop.time() + self.total_timeout_s
            try:
                async with asyncio.timeout(min(self.first_token_timeout_s, self.total_timeout_s)):
                    return await self._request("POST", path, body, self._stream_timeout)
            except TimeoutError as exc:
                raise EngineTimeout(f"{where} did not answer in time") from exc

        response = await self._with_retries(attempt)
        if generation.cancelled:
            response.close()
            return None
        generation._response = response
        return _SSE(
            response,
            generation,
            where=where,
            stall_s=self.first_token_timeout_s,
            deadline=deadline,
        )

    async def _stream(
        self, path: str, body: Any, generation: Generation, parser: EventParser
    ) -> AsyncIterator[Token | Finish]:
        """POST a streaming request and yield the parser's events until its Finish: one loop
        for both protocols (reading, timeouts, failures, the connection's end); the protocol's
        part is a plain call per payload, no generator or coroutine of its own per token."""
        sse = await self._open_sse(path, body, generation)
        if sse is None:
            return
        content, loop = sse.content, asyncio.get_running_loop()
        try:
            while True:
                sse.waiting_since = loop.time()
                try:
                    chunk = await content.readany()
                except _READ_FAILURES as exc:
                    if (error := sse.failure(exc)) is None:
                        return
                    raise error from exc
                sse.waiting_since = None
                for payload in sse.payloads(chunk):
                    for event in parser.feed(payload):
                        if type(event) is Finish:
                            sse.finished()
                            yield event
                            return
                        yield event
                if not chunk:
                    break
        except (AttributeError, KeyError, TypeError, ValueError) as exc:
            raise unreadable(exc) from exc
        finally:
            sse.close()
        if not generation.cancelled:
            yield parser.end()


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


def json_event(payload: bytes, sender: str) -> dict[str, Any]:
    """One stream event's JSON object; EngineProtocolError naming `sender` otherwise."""
    try:
        event = orjson.loads(payload)
    except orjson.JSONDecodeError as exc:
        raise EngineProtocolError(f"{sender} sent an event that is not JSON") from exc
    if not isinstance(event, dict):
        raise EngineProtocolError(f"{sender} sent an event that is not an object")
    return event


def unreadable(exc: Exception) -> EngineProtocolError:
    """An event whose fields are not what the protocol says (a list for an object, text for
    a number): the answer fails as unreadable rather than crashing the request."""
    return EngineProtocolError(f"an event the gateway cannot read: {type(exc).__name__}: {exc}")
