from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import BaseModel, Field


class ServingOut(BaseModel):
    model: str = Field(description="The model that answers patients and API calls.")
    default_model: str = Field(description="The engine's own model (MEDCHAT_ENGINE_MODEL).")
    chosen_by: uuid.UUID | None = None
    chosen_at: datetime | None = None


class ServingChange(BaseModel):
    model: str = Field(min_length=1, max_length=300, description="A model GET /v1/models lists.")
