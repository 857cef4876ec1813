"""Whether the engine can answer for a registered model, before a choice takes effect: the
profile it was trained with, how the engine names it, adapters loaded at runtime (vLLM) or
declared (TGI), and the tokenization canary. A refusal says what to change."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from services.core.chatformat import ChatFormat
from services.core.registry import RegisteredModel, list_models
from services.gateway.config import GatewaySettings
from services.gateway.engine import EngineClient, OpenAICompletionsClient
from services.gateway.engine.canary import check_tokenization
from services.gateway.engine.errors import EngineError
from services.gateway.errors import ApiError


@dataclass(frozen=True)
class Served:
    name: str  # as /v1/models lists it and answers record it
    engine_ref: str | None  # what the engine is asked for; None: its default model


def default_served(settings: GatewaySettings) -> Served:
    return Served(settings.served_model_name, None)


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
