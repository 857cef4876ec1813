"""Text fields stored in Postgres: its TEXT type cannot hold NUL characters, so they are
refused with a clear 422 instead of failing at insert time."""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator


def _no_nul(value: str) -> str:
    if "\x00" in value:
        raise ValueError("text must not contain NUL (\\u0000) characters")
    return value


StoredText = Annotated[str, AfterValidator(_no_nul)]
