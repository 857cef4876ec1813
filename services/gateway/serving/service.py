"""Which model answers patients: the admin's choice, kept in Postgres and read by every
gateway process at most every `serving_refresh_s`; and the checks that the engine really
answers for a model before the choice takes effect."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.core.chatformat import ChatFormat
from services.core.db import utcnow
from services.core.registry import RegisteredModel, list_models
from services.gateway.config import GatewaySettings
from services.gateway.engine import EngineClient, OpenAICompletionsClient
from services.gateway.engine.canary import check_tokenization
from services.gateway.engine.errors import EngineError
from services.gateway.errors import ApiError
from services.store.tables.serving import ServingChoice

log = logging.getLogger(__name__)
CHECKED_S = 60.0  # how long a model an API call named is taken as servable without asking


@dataclass(frozen=True)
class Served:
    name: str  # as /v1/models lists it and answers record it
    engine_ref: str | None  # what the engine is asked for; None: its default model


def default_served(settings: GatewaySettings) -> Served:
    return Served(settings.served_model_name, None)


class ServingState:
    """The current choice, per process: one small read per `refresh_s`, not per request."""

    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        default: Served,
        refresh_s: float,
    ):
        self._sessionmaker = sessionmaker
        self._default = default
        self._refresh_s = refresh_s
        self._value: Served | None = None
        self._expires = 0.0
        self._lock = asyncio.Lock()
        self._checked: dict[str, tuple[Served, float]] = {}  # models API calls asked for

    async def current(self) -> Served:
        if self._value is not None and time.monotonic() < self._expires:
            return self._value
        async with self._lock:
            if self._value is not None and time.monotonic() < self._expires:
                return self._value
            try:
                async with self._sessionmaker() as db:
                    row = await db.get(ServingChoice, 1)
            except (SQLAlchemyError, OSError) as exc:
                # Chat cannot store anything without Postgres either; keep what was known.
                log.warning("could not read the serving choice: %s", type(exc).__name__)
                return self._value or self._default
            self.remember(Served(row.model, row.engine_ref) if row else self._default)
            assert self._value is not None
            return self._value

    def remember(self, served: Served) -> None:
        self._value, self._expires = served, time.monotonic() + self._refresh_s

    async def for_request(
        self,
        requested: str,
        settings: GatewaySettings,
        engine: EngineClient,
        chat_format: ChatFormat,
    ) -> Served:
        """The model an API call names, when it names another listed model than the one
        serving patients (a fine-tune under evaluation): checked with the engine as a switch
        is, then remembered for a minute. Any other name gets the serving model, which the
        reply names."""
        current = await self.current()
        if requested == current.name:
            return current
        if requested == self._default.name:
            return self._default
        checked = self._checked.get(requested)
        if checked is not None and time.monotonic() < checked[1]:
            return checked[0]
        model = registered(settings, requested)
        if model is None:
            return current
        served = await make_servable(settings, engine, chat_format, model)
        self._checked[requested] = (served, time.monotonic() + CHECKED_S)
        return served


async def save_choice(db: AsyncSession, served: Served, chosen_by: uuid.UUID) -> None:
    values = {"model": served.name, "engine_ref": served.engine_ref, "chosen_by": chosen_by}
    await db.execute(
        insert(ServingChoice)
        .values(id=1, chosen_at=utcnow(), **values)
        .on_conflict_do_update(index_elements=["id"], set_={**values, "chosen_at": utcnow()})
    )


def _not_served(message: str) -> ApiError:
    return ApiError(409, "model_not_served", message, "model")


def registered(settings: GatewaySettings, name: str) -> RegisteredModel | None:
    return next((m for m in list_models(settings.models_dir) if m.name == name), None)


def find_model(settings: GatewaySettings, name: str) -> RegisteredModel:
    found = registered(settings, name)
    if found is None:
        raise ApiError(
            400,
            "model_not_found",
            f"no model {name!r} in the registry: choose one that GET /v1/models lists",
            "model",
        )
    return found


def engine_ref(settings: GatewaySettings, model: RegisteredModel) -> str | None:
    """The engine's name for a registered model (None: the model it serves by default)."""
    if model.name == settings.served_model_name:
        return None
    if settings.engine_model_ref == "path":
        ref = str(Path(model.path).resolve())
        default = settings.engine_model
        return None if Path(default).exists() and str(Path(default).resolve()) == ref else ref
    return None if model.name == settings.engine_model else model.name


async def make_servable(
    settings: GatewaySettings,
    engine: EngineClient,
    chat_format: ChatFormat,
    model: RegisteredModel,
) -> Served:
    """Check (and where the engine allows, arrange) that the engine answers for `model`
    with the tokenization the gateway renders; a refusal says what to change."""
    profile = chat_format.profile.name
    if model.profile and model.profile != profile:
        raise _not_served(
            f"{model.name} was trained with the profile {model.profile!r}; this gateway renders"
            f" prompts with {profile!r} (MEDCHAT_PROFILE)"
        )
    ref = engine_ref(settings, model)
    if ref is None:
        return Served(model.name, None)
    if settings.engine_protocol == "tgi":
        _check_tgi(settings, model, ref)
    elif settings.engine_model_ref == "path" and model.kind == "adapter":
        raise _not_served(
            f"{model.name} is a LoRA adapter; `transformers serve` loads whole model"
            " directories: serve adapters with vLLM, or fine-tune with merged output"
        )
    elif model.kind == "adapter" and settings.engine_runtime_lora:
        assert isinstance(engine, OpenAICompletionsClient)
        try:
            if ref not in await engine.served_models():
                await engine.load_adapter(ref, model.path)
        except EngineError as exc:
            raise _not_served(f"the engine could not load {model.name}: {exc}") from exc
    canary = await check_tokenization(engine, chat_format, ref)
    if canary.state == "unreachable":
        if await engine.healthy():  # up, yet failing for this model (e.g. unloadable weights)
            raise _not_served(f"the engine failed to answer for {model.name}: {canary.detail}")
        raise ApiError(503, "engine_unavailable", canary.detail, headers={"Retry-After": "5"})
    if canary.state == "mismatch":
        how = _how(settings, model)
        raise _not_served(f"the engine does not answer for {model.name}: {canary.detail}. {how}")
    return Served(model.name, ref)


def _check_tgi(settings: GatewaySettings, model: RegisteredModel, ref: str) -> None:
    if model.kind != "adapter":
        raise _not_served(
            f"TGI serves the one model it was started with; to serve {model.name}, start it"
            f" with --model-id {model.path}"
        )
    # TGI's own syntax: ID[=PATH][@REVISION], comma-separated.
    loaded = [
        re.split("[=@]", a.strip(), maxsplit=1)[0] for a in settings.engine_adapters.split(",")
    ]
    if ref not in loaded:
        # TGI answers an adapter_id it did not load with the base model, not an error: the
        # engine itself cannot tell us, so only the declared adapters are accepted.
        raise _not_served(_how(settings, model))


def _how(settings: GatewaySettings, model: RegisteredModel) -> str:
    if settings.engine_protocol == "tgi":
        return (
            f"Start TGI with LORA_ADAPTERS={model.name}={model.path} (and the gateway with the"
            " same MEDCHAT_ENGINE_ADAPTERS)"
        )
    if settings.engine_model_ref == "path":
        return "Run `transformers serve` without a pinned model, so it loads directories"
    return (
        f"Serve it with vLLM: --enable-lora --lora-modules {model.name}={model.path}, or set"
        " VLLM_ALLOW_RUNTIME_LORA_UPDATING=True and MEDCHAT_ENGINE_RUNTIME_LORA=true"
    )


class AdapterKeeper:
    """vLLM forgets adapters loaded at runtime when it restarts: this puts the chosen one
    back (checked every `interval_s`; loading twice is harmless, so replicas need no
    coordination)."""

    def __init__(
        self,
        state: ServingState,
        settings: GatewaySettings,
        engine: OpenAICompletionsClient,
        interval_s: float,
    ):
        self._state, self._settings, self._engine = state, settings, engine
        self._interval_s = max(interval_s, 0.1)
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run())

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self._interval_s)
            try:
                await self.restore()
            except EngineError as exc:  # the engine is down or restarting: next round
                log.debug("adapter check: %s", exc)

    async def restore(self) -> bool:
        """Load the chosen adapter if the engine lacks it; True when it did."""
        served = await self._state.current()
        if served.engine_ref is None or served.engine_ref in await self._engine.served_models():
            return False
        model = registered(self._settings, served.name)
        if model is None or model.kind != "adapter":
            return False
        await self._engine.load_adapter(served.engine_ref, model.path)
        log.warning("the engine had lost %s: loaded it again", served.name)
        return True
