"""Typed dependencies: what the lifespan builds once per process, handed to routes as
`Annotated` parameters (like `Db`), so no route reads `request.app.state` itself."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, Request
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.store.files import FileStore
from services.store.tasks import TaskQueue

from .auth.key_cache import KeyCache
from .chat.runtime import ChatRuntime
from .chat.stop_bus import StopBus
from .config import GatewaySettings
from .context_cache import ContextCache
from .limiter import RateLimiter
from .observability import Metrics
from .openai_api.usage import UsageRecorder


def _state(name: str) -> Any:
    # `async def`: FastAPI runs a plain `def` dependency in its thread pool, a thread hop
    # per dependency per request (a fifth of the gateway's CPU on the chat hot path).
    async def get(request: Request) -> Any:
        return getattr(request.app.state, name)

    get.__name__ = f"get_{name}"
    return get


def settings_of(request: Request) -> GatewaySettings:
    """The dependencies every API request runs (credentials, rate limit) read what they need
    with these instead of declaring sub-dependencies: each of those is one more dependency
    resolution per request (~10 µs each in a microbenchmark of FastAPI 0.165)."""
    return request.app.state.settings  # type: ignore[no-any-return]


def sessions_of(request: Request) -> async_sessionmaker[AsyncSession]:
    return request.app.state.sessionmaker  # type: ignore[no-any-return]


def keys_of(request: Request) -> KeyCache:
    return request.app.state.key_cache  # type: ignore[no-any-return]


def limiter_of(request: Request) -> RateLimiter:
    return request.app.state.ratelimiter  # type: ignore[no-any-return]


Settings = Annotated[GatewaySettings, Depends(_state("settings"))]
Sessions = Annotated[async_sessionmaker[AsyncSession], Depends(_state("sessionmaker"))]
RedisClient = Annotated[Redis, Depends(_state("redis"))]
Runtime = Annotated[ChatRuntime, Depends(_state("chat"))]
MetricsDep = Annotated[Metrics, Depends(_state("metrics"))]
Usage = Annotated[UsageRecorder, Depends(_state("usage"))]
Context = Annotated[ContextCache, Depends(_state("context"))]
Limiter = Annotated[RateLimiter, Depends(_state("ratelimiter"))]
Keys = Annotated[KeyCache, Depends(_state("key_cache"))]
Stops = Annotated[StopBus, Depends(_state("stops"))]
Files = Annotated[FileStore, Depends(_state("files"))]
Queue = Annotated[TaskQueue, Depends(_state("queue"))]
