from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import BaseModel, Field


class LegalHoldIn(BaseModel):
    # Why the session must be kept (a matter, a request from an authority): written for the
    # audit and the admins, never shown to the patient.
    reason: str = Field(min_length=1, max_length=500)


class LegalHoldOut(BaseModel):
    """A session's hold, without anything the session says (holding needs no read)."""

    session_id: uuid.UUID
    patient_id: uuid.UUID
    held: bool
    reason: str | None
    held_at: datetime | None
