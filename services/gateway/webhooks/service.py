from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from services.store.tables.cases import Case
from services.store.tasks import TaskQueue


async def case_opened(*, db: AsyncSession, queue: TaskQueue, case: Case) -> None:
    """Queue a `case.opened` delivery to every active webhook (to be built)."""
