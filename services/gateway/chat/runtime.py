"""Per-process chat machinery shared by the patient chat and the OpenAI-compatible API: the
engine client, the bound conversation format, the serving choice and the live generations."""

from __future__ import annotations

import contextlib
import logging
import uuid

from services.core.chatformat import ChatFormat, FormatError, prompt_budget
from services.gateway.config import GatewaySettings
from services.gateway.engine import (
    EngineClient,
    EngineInfo,
    Generation,
    GenerationParams,
)
from services.gateway.engine.canary import CanaryResult, check_tokenization
from services.gateway.engine.errors import EngineError
from services.gateway.errors import ApiError
from services.gateway.observability import request_id
from services.gateway.serving.state import ServingState

from .encodings import cache_encodings

log = logging.getLogger(__name__)


class ChatRuntime:
    """Per-process chat machinery: engine client, bound format, live generations."""

    def __init__(
        self,
        settings: GatewaySettings,
        engine: EngineClient,
        chat_format: ChatFormat,
        serving: ServingState,
    ):
        self.settings = settings
        self.engine = engine
        self.format = cache_encodings(chat_format)
        self.serving = serving  # which model answers (the admin's choice)
        self.live: dict[uuid.UUID, Generation] = {}
        self._info: EngineInfo | None = None
        self.canary: CanaryResult | None = None

    async def check_engine(self) -> CanaryResult:
        """Compare the engine's tokenization of a canary prompt with ours (again, until it
        could be asked)."""
        if self.canary is None or self.canary.state == "unreachable":
            self.canary = await check_tokenization(self.engine, self.format)
        return self.canary

    async def guard(self) -> None:
        """Refuse to serve through an engine that would see different tokens than we built."""
        canary = await self.check_engine()
        if canary.blocks_serving and self.settings.engine_tokenization_check == "enforce":
            # What to change is for operators (the log, /readyz), not for patients.
            log.error("chat refused, engine tokenization mismatch: %s", canary.detail)
            rid = request_id.get()
            raise ApiError(
                503,
                "engine_mismatch",
                "the model service is misconfigured; answers are paused until an operator"
                f" fixes it (request id: {rid})",
                headers={"Retry-After": "60"},
            )

    async def budget(self, max_new_tokens: int) -> int:
        """Prompt tokens allowed: the engine's own limits, or the settings' while the engine
        cannot be asked (the generation call then reports the engine's state properly)."""
        if self._info is None:
            with contextlib.suppress(EngineError):
                self._info = await self.engine.info()
        s = self.settings
        max_total = (self._info and self._info.max_total_tokens) or s.engine_max_total_tokens
        max_input = (self._info and self._info.max_input_tokens) or s.engine_max_input_tokens
        try:
            return prompt_budget(max_total, max_new_tokens, max_input)
        except FormatError as exc:  # a client's max_tokens, or MEDCHAT_MAX_NEW_TOKENS, too big
            raise ApiError(
                400,
                "max_new_tokens_too_large",
                f"{exc}: ask for fewer new tokens (max_tokens), or set MEDCHAT_MAX_NEW_TOKENS"
                f" below the engine's context of {max_total} tokens",
                "max_new_tokens",
            ) from exc

    def params(
        self,
        max_new_tokens: int,
        *,
        temperature: float | None = None,
        top_p: float | None = None,
        stop: list[str] | None = None,
        seed: int | None = None,
        model: str | None = None,
    ) -> GenerationParams:
        """The profile's generation defaults (DISC-MedLLM's generation_config), with what an
        integrator asked for on top. top_p=1 means "no nucleus cut", i.e. not set."""
        g = self.format.profile.generation
        return GenerationParams(
            max_new_tokens=max_new_tokens,
            temperature=g.temperature if temperature is None else temperature,
            top_k=g.top_k,
            top_p=g.top_p if top_p is None else (None if top_p >= 1 else top_p),
            repetition_penalty=g.repetition_penalty,
            do_sample=g.do_sample if temperature is None else temperature > 0,
            stop=stop or [],
            seed=seed,
            model=model,
        )

    def stop(self, session_id: uuid.UUID) -> bool:
        generation = self.live.get(session_id)
        if generation is None:
            return False
        generation.cancel()
        return True
