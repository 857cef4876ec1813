"""The gateway application: one DB engine, one Redis pool and one engine client per process,
created in the lifespan and shared by every request."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from redis.asyncio import Redis
from sqlalchemy import text

from .auth.router import admin_router
from .auth.router import router as auth_router
from .config import GatewaySettings, get_settings
from .context_cache import ContextCache
from .db import make_engine, make_sessionmaker
from .errors import Json, install_error_handlers
from .limits import BodySizeLimit
from .sessions.router import router as sessions_router

log = logging.getLogger(__name__)


def create_app(settings: GatewaySettings | None = None) -> FastAPI:
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        engine = make_engine(settings.database_url)
        redis = Redis.from_url(settings.redis_url, socket_timeout=1.0, socket_connect_timeout=1.0)
        app.state.settings = settings
        app.state.db_engine = engine
        app.state.sessionmaker = make_sessionmaker(engine)
        app.state.redis = redis
        app.state.context = ContextCache(redis, settings.context_ttl_s)
        try:
            yield
        finally:
            await redis.aclose()
            await engine.dispose()

    app = FastAPI(
        title="DISC-MedChat gateway",
        version="0.1.0",
        lifespan=lifespan,
        description=(
            "Medical consultation with DISC-MedLLM. Answers come from a language model: they"
            " are not a diagnosis."
        ),
    )
    install_error_handlers(app)
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_body_bytes)
    app.include_router(auth_router)
    app.include_router(admin_router)
    app.include_router(sessions_router)

    @app.get("/healthz", tags=["ops"])
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz", tags=["ops"])
    async def readyz() -> Json:
        checks: dict[str, str] = {}
        try:
            async with app.state.db_engine.connect() as conn:
                await conn.execute(text("SELECT 1"))
            checks["postgres"] = "ok"
        except Exception as exc:  # any failure means "not ready"; the type says which
            checks["postgres"] = f"down: {type(exc).__name__}"
        try:
            await app.state.redis.ping()
            checks["redis"] = "ok"
        except Exception as exc:  # Redis is optional for chat, but readiness reports it
            checks["redis"] = f"down: {type(exc).__name__}"
        ready = checks["postgres"] == "ok"
        return Json({"ready": ready, "checks": checks}, 200 if ready else 503)

    return app
