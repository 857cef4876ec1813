"""The serving state's memory of names that are no model: one registry scan per few seconds,
not one per request, and a model published meanwhile is found once that passes."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from services.gateway.serving import state as state_module
from services.gateway.serving.compatibility import Served
from services.gateway.serving.state import ServingState


def test_an_unknown_name_is_looked_up_once_per_interval(monkeypatch: pytest.MonkeyPatch) -> None:
    lookups: list[str] = []

    def registered(settings: Any, name: str) -> None:
        lookups.append(name)

    monkeypatch.setattr(state_module, "registered", registered)
    serving = ServingState(None, Served("base", None), refresh_s=60)  # type: ignore[arg-type]
    serving.remember(Served("base", None))

    async def ask() -> Served:
        return await serving.for_request("gpt-4", None, None, None)  # type: ignore[arg-type]

    assert asyncio.run(ask()) == Served("base", None)
    assert asyncio.run(ask()) == Served("base", None)
    assert lookups == ["gpt-4"]
    monkeypatch.setattr(state_module, "UNREGISTERED_S", 0.0)
    serving._unregistered.clear()
    asyncio.run(ask())
    asyncio.run(ask())
    assert lookups == ["gpt-4"] * 3  # without the memory, every request scans
