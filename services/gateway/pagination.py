"""Cursor pages as the OpenAI API lists things: `{"object": "list", "data": [...], "has_more"}`.
Services are asked for `limit + 1` rows; the extra row only says that there is more."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Generic, Literal, Self, TypeVar

from pydantic import BaseModel

T = TypeVar("T")
Row = TypeVar("Row")


class Page(BaseModel, Generic[T]):
    object: Literal["list"] = "list"
    data: list[T]
    has_more: bool

    @classmethod
    def of(cls, rows: Sequence[Row], limit: int, convert: Callable[[Row], T]) -> Self:
        return cls(data=[convert(r) for r in rows[:limit]], has_more=len(rows) > limit)
