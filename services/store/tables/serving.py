"""The model that answers patients: one row, set by an admin (no row: the engine's default)."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import CheckConstraint, DateTime, ForeignKey, SmallInteger, String
from sqlalchemy.orm import Mapped, mapped_column

from services.core.db import Base, utcnow


class ServingChoice(Base):
    __tablename__ = "serving_choice"
    __table_args__ = (CheckConstraint("id = 1", name="serving_choice_one_row"),)

    id: Mapped[int] = mapped_column(SmallInteger, primary_key=True, default=1)
    model: Mapped[str] = mapped_column(String(300))  # the registry name, as /v1/models lists it
    engine_ref: Mapped[str | None] = mapped_column(String(1000))  # None: the engine's default
    chosen_by: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    chosen_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
