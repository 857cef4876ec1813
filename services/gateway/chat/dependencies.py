"""The chat's dependencies, built from the process-wide state in services/gateway/deps.py."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends

from services.gateway.cases.dependencies import Escalate
from services.gateway.deps import Context, MetricsDep, Runtime, Sessions

from .service import PatientChat


async def patient_chat(
    runtime: Runtime,
    metrics: MetricsDep,
    sessions: Sessions,
    context: Context,
    escalation: Escalate,
) -> PatientChat:
    return PatientChat(runtime, metrics, sessions, context, escalation)


Chat = Annotated[PatientChat, Depends(patient_chat)]
