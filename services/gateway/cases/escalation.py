"""When a session goes to a person: the triggers (the emergency rules, a patient asking, an
unhelpful rating, an admin) and what opening a case sets off (the patient is told at once,
integrators' webhooks are queued)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncSession

from services.core.safety import EmergencyNotice
from services.core.safety.handoff import asks_for_human
from services.gateway.config import GatewaySettings
from services.gateway.webhooks.service import case_opened
from services.store.tasks import TaskQueue

from . import live, service
from .schemas import Handoff

# Always urgent, whatever the severity the rules give: a person takes over (the CAC's 2025
# draft on anthropomorphic interaction services asks exactly this for self-harm).
_SELF_HARM = {"suicide", "self_harm"}


@dataclass(frozen=True, slots=True)
class Trigger:
    reason: str
    urgent: bool = False
    category: str | None = None


def trigger_of(notice: EmergencyNotice | None, question: str | None) -> Trigger | None:
    """Why a patient's question opens a case, if it does."""
    if notice is not None:
        urgent = notice.severity == "critical" or bool(_SELF_HARM & set(notice.categories))
        return Trigger("emergency", urgent, notice.categories[0])
    if question is not None and asks_for_human(question):
        return Trigger("patient_request")
    return None


@dataclass(frozen=True, slots=True)
class Escalation:
    """What opening a case needs beyond the request's database session."""

    settings: GatewaySettings
    redis: Redis
    queue: TaskQueue

    async def open(
        self,
        *,
        db: AsyncSession,
        session_id: uuid.UUID,
        patient_id: uuid.UUID,
        trigger: Trigger,
        message_id: int | None = None,
    ) -> Handoff:
        """Open (or update) the session's case and commit; tell the patient's open chat and
        queue the webhooks for a new case."""
        case, opened = await service.escalate(
            db=db,
            settings=self.settings,
            session_id=session_id,
            patient_id=patient_id,
            reason=trigger.reason,
            urgent=trigger.urgent,
            category=trigger.category,
            message_id=message_id,
        )
        handoff = await service.handoff_of(db=db, case=case)
        await db.commit()
        if opened:
            await case_opened(db=db, queue=self.queue, case=case)
        await live.tell_patient(self.redis, session_id, "handoff", handoff)
        return handoff
