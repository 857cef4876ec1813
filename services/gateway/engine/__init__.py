"""The inference engine, behind one small interface (`EngineClient`) over its two protocols:
TGI's native API (tgi.py) and OpenAI-compatible completions (openai.py), both over one pooled
aiohttp session per process (base.py). aiohttp rather than httpx (which the maintained clients,
huggingface_hub and openai, build on): in ../shared/bench/gateway an httpx relay added +198 ms
p99 at 32 streams and collapsed at 128, aiohttp held (DESIGN.md)."""

from __future__ import annotations

from typing import Any

from .base import EngineClient, EngineInfo, Finish, Generation, GenerationParams, Token
from .openai import OpenAICompletionsClient
from .tgi import TGIClient


def make_client(
    protocol: str, base_url: str, *, model: str, sampling_extras: bool = True, **kw: Any
) -> EngineClient:
    if protocol == "tgi":
        return TGIClient(base_url, **kw)
    return OpenAICompletionsClient(base_url, model=model, sampling_extras=sampling_extras, **kw)


__all__ = [
    "EngineClient",
    "EngineInfo",
    "Finish",
    "Generation",
    "GenerationParams",
    "OpenAICompletionsClient",
    "TGIClient",
    "Token",
    "make_client",
]
