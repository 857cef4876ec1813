from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import Depends

from services.gateway.auth.dependencies import CurrentPrincipal
from services.gateway.auth.principal import Principal
from services.gateway.db import Db
from services.gateway.deps import Queue, RedisClient, Settings
from services.gateway.errors import ApiError
from services.store.tables.cases import Case

from . import service
from .escalation import Escalation


async def clinician_principal(principal: CurrentPrincipal) -> Principal:
    if not service.is_clinician(principal):
        raise ApiError(403, "forbidden", "clinicians and admins only")
    return principal


ClinicianPrincipal = Annotated[Principal, Depends(clinician_principal)]


async def visible_case(case_id: uuid.UUID, principal: ClinicianPrincipal, db: Db) -> Case:
    """A case the caller may see: another clinician's claimed case answers 404."""
    return await service.visible_case(db=db, principal=principal, case_id=case_id)


VisibleCase = Annotated[Case, Depends(visible_case)]


async def escalation(settings: Settings, redis: RedisClient, queue: Queue) -> Escalation:
    return Escalation(settings, redis, queue)


Escalate = Annotated[Escalation, Depends(escalation)]
