"""The serving choice in Postgres (one row): written when an admin switches models."""

from __future__ import annotations

import uuid

from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from services.core.db import utcnow
from services.store.tables.serving import ServingChoice

from .compatibility import Served


async def save_choice(db: AsyncSession, served: Served, chosen_by: uuid.UUID) -> None:
    values = {"model": served.name, "engine_ref": served.engine_ref, "chosen_by": chosen_by}
    await db.execute(
        insert(ServingChoice)
        .values(id=1, chosen_at=utcnow(), **values)
        .on_conflict_do_update(index_elements=["id"], set_={**values, "chosen_at": utcnow()})
    )
