"""Startup proof that the engine tokenizes our prompt text exactly as we rendered it.

The text form of a prompt only equals the trained id form if the engine's tokenizer splits it
the same way (DESIGN.md: a dummy-prefix tokenizer, an added BOS, or a different tokenizer
would all shift the ids silently). TGI's /tokenize lets us check before serving anyone.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Literal

from services.core.chatformat import ChatFormat, Turn

from . import EngineClient
from .errors import EngineError, EngineProtocolError

log = logging.getLogger(__name__)

CANARY = [
    Turn(role="user", content="医生您好，我头痛三天了，伴有低烧 37.8°C。"),
    Turn(role="assistant", content="您好！请问是持续性的疼痛吗？有没有恶心、呕吐？"),
    Turn(role="user", content="No vomiting, 但是晚上睡不好。Should I take ibuprofen?"),
]

State = Literal["ok", "mismatch", "unsupported", "unreachable"]


@dataclass(frozen=True)
class CanaryResult:
    state: State
    detail: str

    @property
    def blocks_serving(self) -> bool:
        return self.state == "mismatch"


async def check_tokenization(
    engine: EngineClient, chat_format: ChatFormat, model: str | None = None
) -> CanaryResult:
    """`model`: the engine's name for another model than its default (a fine-tune); asking
    with it also proves the engine answers for that model."""
    prompt = chat_format.render_prompt(CANARY, 1_000_000)
    try:
        if model is None:
            await engine.info()  # e.g. an OpenAI-compatible engine serving another model name
        engine_ids = await engine.tokenize(prompt.text, model)
    except EngineProtocolError as exc:
        log.error("engine configuration: %s", exc.detail)
        # The detail says what to change (MEDCHAT_ENGINE_MODEL, a model the engine lacks):
        # a configuration message for the operator, naming no address.
        return CanaryResult("mismatch", exc.detail)
    except EngineError as exc:
        return _unreachable(exc)
    if engine_ids is None:
        return await _check_count(engine, prompt.text, len(prompt.input_ids), model)
    if engine_ids != prompt.input_ids:
        first = next(
            (
                i
                for i, (a, b) in enumerate(zip(engine_ids, prompt.input_ids, strict=False))
                if a != b
            ),
            min(len(engine_ids), len(prompt.input_ids)),
        )
        detail = (
            f"the engine tokenizes the canary prompt differently from the format module"
            f" (first difference at token {first}: engine {engine_ids[first : first + 5]},"
            f" expected {prompt.input_ids[first : first + 5]}; {len(engine_ids)} vs"
            f" {len(prompt.input_ids)} tokens). Is the engine serving the same tokenizer"
            f" and model profile ({chat_format.profile.name})?"
        )
        log.error(detail)
        return CanaryResult("mismatch", detail)
    return CanaryResult("ok", f"{len(engine_ids)} canary tokens agree")


def _unreachable(exc: EngineError) -> CanaryResult:
    """The detail (the engine's address, the network error) goes to the log; the result's
    text reaches API callers (a model switch, /readyz, an integrator naming a fine-tune)."""
    log.warning("tokenization check: could not ask the engine: %s", exc.detail)
    return CanaryResult("unreachable", f"could not ask the engine: {exc.public}")


async def _check_count(
    engine: EngineClient, text: str, expected: int, model: str | None
) -> CanaryResult:
    """Engines without a tokenize endpoint (OpenAI-compatible ones) still report how many
    prompt tokens they saw: a one-token completion catches an added BOS or another
    tokenizer, though not a same-length difference."""
    try:
        count = await engine.prompt_tokens(text, model)
    except EngineProtocolError as exc:  # e.g. 404: the engine does not know that model
        return CanaryResult("mismatch", exc.detail)
    except EngineError as exc:
        return _unreachable(exc)
    if count is None:
        detail = (
            "the engine reports neither token ids nor prompt token counts: the prompt"
            " text form cannot be checked against the trained id form"
        )
        log.warning(detail)
        return CanaryResult("unsupported", detail)
    if count != expected:
        detail = (
            f"the engine counts {count} prompt tokens in the canary prompt, the format"
            f" module {expected}: the engine's tokenizer does not split the prompt as"
            " trained (an added BOS, another tokenizer or profile?)"
        )
        log.error(detail)
        return CanaryResult("mismatch", detail)
    return CanaryResult("ok", f"{count} canary tokens agree (count only: no token ids)")
