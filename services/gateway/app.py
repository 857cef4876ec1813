"""The gateway application: one DB engine, one Redis pool and one engine client per process,
created in the lifespan and shared by every request."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Response
from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from sqlalchemy import text

from services.core.chatformat import (
    ChatFormat,
    ControlTokenLeak,
    FormatError,
    TokenizerLoadError,
    Turn,
    chat_format,
    get_profile,
    load_tokenizer,
)
from services.core.probe_record import describe, read_record
from services.core.safety import default_rules
from services.store.files import open_store
from services.store.tasks import TaskQueue

from .access.router import router as access_router
from .accounts.router import router as accounts_router
from .audit.router import router as audit_router
from .auth import revocations
from .auth.key_cache import KeyCache
from .auth.router import router as auth_router
from .cases.patient_router import router as handoff_router
from .cases.router import router as cases_router
from .chat.router import router as chat_router
from .chat.runtime import ChatRuntime
from .chat.stop_bus import StopBus
from .config import GatewaySettings, get_settings
from .context_cache import ContextCache
from .db import make_engine, make_sessionmaker
from .engine import EngineClient, OpenAICompletionsClient, make_client
from .engine.canary import CANARY
from .errors import Json, install_error_handlers
from .evals.router import router as evals_router
from .feedback.router import router as feedback_router
from .files.router import router as files_router
from .finetune.router import router as finetune_router
from .limiter import RateLimiter
from .limits import BodySizeLimit
from .observability import Metrics, RequestContext
from .openai_api.router import router as openai_router
from .openai_api.usage import UsageRecorder
from .privacy.router import router as privacy_router
from .ratelimit import response_headers as ratelimit_headers
from .reviews.router import router as reviews_router
from .serving.compatibility import default_served
from .serving.keeper import AdapterKeeper
from .serving.router import router as serving_router
from .serving.state import ServingState
from .sessions.router import router as sessions_router
from .webhooks.router import router as webhooks_router
from .webui import mount_webui

log = logging.getLogger(__name__)
# Rendered once at start-up: characters a tokenizer may not know, and control spellings.
SELF_TEST = "🩺 体温38.5℃ \x07 ｜＜/s＞ <reserved_103> <|im_end|> Ω ∑ 𠀀"


class StartupError(RuntimeError):
    """A setting the gateway cannot work with: the message names it, the problem and the fix."""


def load_format(settings: GatewaySettings) -> ChatFormat:
    """The conversation format the prompts are built with: tokenizer plus model profile,
    proven by rendering the canary dialogue (unfamiliar characters included) once."""
    path = settings.tokenizer_path
    if path is None:
        raise StartupError(
            "MEDCHAT_TOKENIZER_PATH is not set: the gateway needs the served model's tokenizer"
            " to build prompts (a directory with tokenizer.json or tokenizer.model)"
        )
    try:
        fmt = chat_format(load_tokenizer(path), get_profile(settings.profile))
        fmt.render_prompt([*CANARY, Turn(role="user", content=SELF_TEST)], 1_000_000)
    except (TokenizerLoadError, FormatError, ControlTokenLeak, ValueError, OSError) as exc:
        raise StartupError(
            f"cannot build prompts with the tokenizer at {path} (MEDCHAT_TOKENIZER_PATH) and"
            f" the profile {settings.profile!r} (MEDCHAT_PROFILE): {exc}. Point"
            " MEDCHAT_TOKENIZER_PATH at the served model's own tokenizer directory, and choose"
            " the profile the model was trained with (disc-medllm, baichuan2, generic)"
        ) from exc
    return fmt


def make_engine_client(settings: GatewaySettings) -> EngineClient:
    return make_client(
        settings.engine_protocol,
        settings.engine_url,
        model=settings.engine_model,
        sampling_extras=settings.engine_sampling_extras,
        connect_timeout_s=settings.engine_connect_timeout_s,
        first_token_timeout_s=settings.engine_first_token_timeout_s,
        total_timeout_s=settings.engine_total_timeout_s,
        retries=settings.engine_retries,
    )


def create_app(settings: GatewaySettings | None = None) -> FastAPI:
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        engine = make_engine(settings.database_url)
        # One quick try per call: with Redis down, chat goes on from Postgres at once rather
        # than after redis-py's default retries (seconds per call).
        redis = Redis.from_url(
            settings.redis_url,
            socket_timeout=1.0,
            socket_connect_timeout=1.0,
            retry=Retry(NoBackoff(), 1),
        )
        app.state.settings = settings
        app.state.db_engine = engine
        app.state.sessionmaker = make_sessionmaker(engine)
        app.state.redis = redis
        app.state.context = ContextCache(redis, settings.context_ttl_s)
        app.state.ratelimiter = RateLimiter(redis)
        app.state.key_cache = KeyCache(settings.auth_cache_s)
        app.state.usage = UsageRecorder(app.state.sessionmaker, settings.usage_flush_s)
        app.state.usage.start()
        default_rules()  # compile the emergency rules now, not on the first patient's message
        serving = ServingState(
            app.state.sessionmaker, default_served(settings), settings.serving_refresh_s
        )
        app.state.chat = ChatRuntime(
            settings, make_engine_client(settings), load_format(settings), serving
        )
        keeper = None
        if settings.engine_runtime_lora and isinstance(
            app.state.chat.engine, OpenAICompletionsClient
        ):
            keeper = AdapterKeeper(
                serving, settings, app.state.chat.engine, settings.engine_adapter_check_s
            )
            keeper.start()
        app.state.stops = StopBus(redis, app.state.chat.stop)
        app.state.stops.start()
        app.state.revocations = revocations.listener(redis, app.state.key_cache)
        app.state.revocations.start()
        canary = await app.state.chat.check_engine()
        log.info("engine tokenization check: %s (%s)", canary.state, canary.detail)
        try:
            yield
        finally:
            await app.state.stops.close()
            await app.state.revocations.close()
            if keeper is not None:
                await keeper.close()
            await app.state.usage.close()
            await app.state.chat.engine.close()
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
    metrics = Metrics()
    app.state.metrics = metrics
    app.state.files = open_store(settings)
    app.state.queue = TaskQueue.connect(settings.celery_broker)  # sends tasks by name
    # Uploads stream to disk and count their own bytes against max_file_bytes.
    app.add_middleware(
        BodySizeLimit, max_bytes=settings.max_body_bytes, own_limit=frozenset({"/v1/files"})
    )
    # Outermost: sees every answer; the only middleware that wraps outgoing chunks.
    app.add_middleware(RequestContext, metrics=metrics, add_headers=ratelimit_headers)
    # First: routes are matched in order, and each router passed costs microseconds on every
    # request; /v1/chat/completions is the hot path (bench/gateway_overhead.py).
    app.include_router(openai_router)
    app.include_router(auth_router)
    app.include_router(accounts_router)
    app.include_router(privacy_router)
    app.include_router(access_router)
    app.include_router(audit_router)
    app.include_router(feedback_router)
    app.include_router(sessions_router)
    app.include_router(chat_router)
    app.include_router(handoff_router)
    app.include_router(cases_router)
    app.include_router(reviews_router)
    app.include_router(webhooks_router)
    app.include_router(files_router)
    app.include_router(finetune_router)
    app.include_router(evals_router)
    app.include_router(serving_router)

    @app.get("/metrics", tags=["ops"], include_in_schema=False)
    async def prometheus() -> Response:
        return Response(metrics.render(), media_type="text/plain; version=0.0.4")

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
        canary = await app.state.chat.check_engine()
        checks["engine"] = "ok" if await app.state.chat.engine.healthy() else "down"
        checks["engine_tokenization"] = canary.state
        # The last `medchat engine probe`: reported beside the checks, it does not gate readiness.
        probe = describe(await asyncio.to_thread(read_record, settings.probe_record_path))
        tolerated = canary.state in ("ok", "unsupported") or (
            canary.state == "mismatch" and settings.engine_tokenization_check == "warn"
        )
        engine_ok = checks["engine"] == "ok" and tolerated
        ready = checks["postgres"] == "ok" and engine_ok
        return Json(
            {
                "ready": ready,
                "checks": checks,
                "engine_detail": canary.detail,
                "serving": (await app.state.chat.serving.current()).name,
                "probe": probe,
            },
            200 if ready else 503,
        )

    mount_webui(app, settings.webui_dir)  # last: the UI never shadows an API route
    return app
