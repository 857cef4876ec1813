"""A session's dialogue as the chat works with it: typed entries, cached in Redis (as JSON
objects with the same four fields) and read from Postgres when the cache is not current."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from services.core.chatformat import Turn

# "clinician": a person's reply in a hand-off; the model reads it as the doctor's side.
Role = Literal["user", "assistant", "clinician"]
# "failed": a question the model never saw, or an answer that broke off.
EntryStatus = Literal["complete", "stopped", "failed"]
CONTEXT_STATUSES = ("complete", "stopped")  # a failed answer is not part of the dialogue


@dataclass(slots=True)
class HistoryEntry:
    seq: int
    role: Role
    content: str
    status: EntryStatus


History = list[HistoryEntry]


def context_of(history: Sequence[HistoryEntry]) -> list[Turn]:
    """The turns the model sees: every question it could read, and the answers that were
    given (complete, or stopped with some text)."""
    return [
        Turn(role="user" if h.role == "user" else "assistant", content=h.content)
        for h in history
        if (h.role == "user" and h.status != "failed")
        or (h.status in CONTEXT_STATUSES and h.content)
    ]
