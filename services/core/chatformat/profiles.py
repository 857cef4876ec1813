"""Model profiles: how a model family marks turns, its limits and generation defaults."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal


@dataclass(frozen=True)
class GenerationDefaults:
    do_sample: bool = True
    temperature: float = 0.3
    top_k: int | None = 5
    top_p: float | None = 0.85
    repetition_penalty: float | None = 1.1
    max_new_tokens: int = 2048


@dataclass(frozen=True, eq=False)  # hashed by identity: profiles are singletons
class ModelProfile:
    """`markers`: Baichuan-style `[bos] ([user] u [assistant] a [eos])*` with marker tokens.
    `chat_template`: the tokenizer's own Jinja chat template (any other model)."""

    name: str
    kind: Literal["markers", "chat_template"]
    description: str
    user_token: str | None = None
    assistant_token: str | None = None
    # Ids the profile's model is known to use; binding a tokenizer that disagrees fails loudly.
    expected_ids: dict[str, int] = field(default_factory=dict)
    max_length: int = 4096
    generation: GenerationDefaults = field(default_factory=GenerationDefaults)


# Flmc/DISC-MedLLM generation_config.json; Baichuan-13B-Chat's markers and special ids.
DISC_MEDLLM = ModelProfile(
    name="disc-medllm",
    kind="markers",
    description="DISC-MedLLM / Baichuan-13B: <reserved_102> user, <reserved_103> assistant",
    user_token="<reserved_102>",
    assistant_token="<reserved_103>",
    expected_ids={"bos": 1, "eos": 2, "pad": 0, "user": 195, "assistant": 196},
    max_length=4096,
)

BAICHUAN2 = ModelProfile(
    name="baichuan2",
    kind="markers",
    description="Baichuan2 chat models: <reserved_106> user, <reserved_107> assistant",
    user_token="<reserved_106>",
    assistant_token="<reserved_107>",
    expected_ids={"bos": 1, "eos": 2, "pad": 0},
    max_length=4096,
    generation=GenerationDefaults(
        temperature=0.3, top_k=5, top_p=0.85, repetition_penalty=1.05, max_new_tokens=2048
    ),
)

GENERIC = ModelProfile(
    name="generic",
    kind="chat_template",
    description="any model whose tokenizer carries a chat template",
    generation=GenerationDefaults(
        temperature=0.7, top_k=None, top_p=0.9, repetition_penalty=None, max_new_tokens=1024
    ),
)

PROFILES: dict[str, ModelProfile] = {p.name: p for p in (DISC_MEDLLM, BAICHUAN2, GENERIC)} | {
    "baichuan-13b": DISC_MEDLLM
}


def get_profile(name: str) -> ModelProfile:
    try:
        return PROFILES[name]
    except KeyError:
        known = ", ".join(sorted(PROFILES))
        raise ValueError(f"unknown model profile {name!r}; known profiles: {known}") from None
