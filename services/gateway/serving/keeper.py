"""Keeps the chosen adapter loaded in a vLLM that restarted (runtime LoRA is not persistent)."""

from __future__ import annotations

import asyncio
import contextlib
import logging

from services.gateway.config import GatewaySettings
from services.gateway.engine import OpenAICompletionsClient
from services.gateway.engine.errors import EngineError

from .compatibility import registered
from .state import ServingState

log = logging.getLogger(__name__)


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
