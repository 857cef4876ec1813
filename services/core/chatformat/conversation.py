"""The one internal conversation record every reader produces and every renderer consumes."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

Role = Literal["system", "user", "assistant"]
SourceFormat = Literal["disc", "openai", "firefly", "internal"]


class Turn(BaseModel):
    """One message. `weight` only means something on assistant turns: 0 = shown, not trained."""

    model_config = ConfigDict(frozen=True)

    role: Role
    content: str
    weight: Literal[0, 1] = 1


class Conversation(BaseModel):
    """A dialogue: an optional system text, then turns (user first, roles alternating)."""

    model_config = ConfigDict(frozen=True)

    turns: tuple[Turn, ...] = Field(min_length=1)
    system: str | None = None
    source_format: SourceFormat = "internal"

    @property
    def has_trained_turn(self) -> bool:
        return any(t.role == "assistant" and t.weight == 1 for t in self.turns)
