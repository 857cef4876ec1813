"""Who is calling, once identified (auth/dependencies.py says how)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Literal


@dataclass(frozen=True, slots=True)
class Principal:
    user_id: uuid.UUID
    role: str
    via: Literal["api_key", "cookie"]
    api_key_id: uuid.UUID | None = None
    is_guest: bool = False

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"
