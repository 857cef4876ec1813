"""A small async client for OpenAI-compatible `/chat/completions`: the gateway (the model
under test), the patient simulator and the judge. Retries what a retry can fix (transport
errors, 408, 409, 429, 5xx) with backoff; anything else is an EndpointError at once."""

from __future__ import annotations

import asyncio
import random
from dataclasses import dataclass
from typing import Any

import httpx

RETRYABLE = frozenset({408, 409, 429, 500, 502, 503, 504})


class EndpointError(RuntimeError):
    """A request that failed for good (after the retries, or one not worth retrying)."""


@dataclass(frozen=True)
class Endpoint:
    base_url: str  # up to and including the API version, e.g. http://host:8000/v1
    model: str
    api_key: str | None = None

    @property
    def spec(self) -> str:
        return f"{self.base_url}/{self.model}"


def parse_endpoint(spec: str, api_key: str | None = None) -> Endpoint:
    """`URL/MODEL`: the base URL ends at `/v1` when the spec has one (so a model may hold
    slashes, as in `http://h/v1/Qwen/Qwen2-7B`), else at the last slash."""
    spec = spec.strip()
    if not spec.startswith(("http://", "https://")):
        raise ValueError(f"{spec!r}: expected URL/MODEL, e.g. http://127.0.0.1:8001/v1/gpt-4")
    head, sep, model = spec.partition("/v1/")
    if sep:
        base = head + "/v1"
    else:
        base, _, model = spec.rpartition("/")
        if base.endswith(":/") or base.endswith("://"):
            base, model = spec, ""
    if not model or not base:
        raise ValueError(f"{spec!r}: expected URL/MODEL, e.g. http://127.0.0.1:8001/v1/gpt-4")
    return Endpoint(base.rstrip("/"), model, api_key)


class ChatClient:
    def __init__(
        self,
        endpoint: Endpoint,
        *,
        timeout_s: float = 300.0,
        retries: int = 3,
        backoff_s: float = 0.5,
    ):
        self.endpoint = endpoint
        self.retries = retries
        self.backoff_s = backoff_s
        headers = {"Authorization": f"Bearer {endpoint.api_key}"} if endpoint.api_key else {}
        self.http = httpx.AsyncClient(
            base_url=endpoint.base_url,
            headers=headers,
            timeout=httpx.Timeout(timeout_s, connect=min(timeout_s, 10.0)),
        )
        self.requests = 0  # sent, retries included

    async def close(self) -> None:
        await self.http.aclose()

    async def __aenter__(self) -> ChatClient:
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.close()

    async def complete(
        self,
        messages: list[dict[str, str]],
        *,
        temperature: float | None = None,
        max_tokens: int | None = None,
    ) -> str:
        """The assistant's text for `messages` (non-streamed)."""
        body: dict[str, Any] = {"model": self.endpoint.model, "messages": messages}
        if temperature is not None:
            body["temperature"] = temperature
        if max_tokens is not None:
            body["max_tokens"] = max_tokens
        for attempt in range(self.retries + 1):
            last = attempt == self.retries
            self.requests += 1
            try:
                r = await self.http.post("/chat/completions", json=body)
            except httpx.TransportError as exc:
                if last:
                    raise EndpointError(
                        f"{self.endpoint.spec}: {type(exc).__name__}: {exc}"
                    ) from exc
                await asyncio.sleep(self._delay(attempt, None))
                continue
            if r.status_code in RETRYABLE and not last:
                await asyncio.sleep(self._delay(attempt, r.headers.get("retry-after")))
                continue
            if r.status_code >= 400:
                raise EndpointError(f"{self.endpoint.spec}: HTTP {r.status_code}: {r.text[:300]}")
            return _content(r, self.endpoint.spec)
        raise AssertionError("unreachable")

    def _delay(self, attempt: int, retry_after: str | None) -> float:
        if retry_after is not None:
            try:
                return min(float(retry_after), 30.0)
            except ValueError:
                pass
        return float(self.backoff_s * (2.0**attempt) * (0.5 + random.random()))


def _content(r: httpx.Response, where: str) -> str:
    try:
        content = r.json()["choices"][0]["message"]["content"]
    except (ValueError, KeyError, IndexError, TypeError):
        raise EndpointError(f"{where}: not a chat completion: {r.text[:300]}") from None
    if not isinstance(content, str):
        raise EndpointError(f"{where}: the reply has no text content")
    return content
