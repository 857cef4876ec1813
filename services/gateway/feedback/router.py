"""Patients rate answers and consent to their rated conversations becoming training data;
admins turn consented, rated conversations into a redacted dataset file."""

from __future__ import annotations

from fastapi import APIRouter

from services.gateway.audit.dependencies import Audit
from services.gateway.auth.dependencies import AdminPrincipal, CurrentPrincipal
from services.gateway.cases.dependencies import Escalate
from services.gateway.cases.escalation import Trigger
from services.gateway.db import Db
from services.gateway.deps import Files
from services.gateway.errors import ApiError
from services.gateway.files.schemas import FileObject
from services.gateway.sessions.dependencies import OwnedSession

from . import service
from .schemas import ConsentIn, DatasetRequest, FeedbackIn

router = APIRouter(tags=["feedback"])


@router.post("/api/sessions/{session_id}/messages/{message_id}/feedback", status_code=204)
async def rate_answer(
    message_id: int,
    body: FeedbackIn,
    session: OwnedSession,
    principal: CurrentPrincipal,
    db: Db,
    escalate: Escalate,
) -> None:
    """Rate an answer. An unhelpful rating sends the session to the clinicians."""
    await service.rate_answer(
        db=db,
        session_id=session.id,
        message_id=message_id,
        user_id=principal.user_id,
        helpful=body.helpful,
        comment=body.comment,
    )
    await db.commit()
    if not body.helpful:
        await escalate.open(
            db=db,
            session_id=session.id,
            patient_id=session.user_id,
            trigger=Trigger("unhelpful"),
            message_id=message_id,
        )


@router.put("/api/auth/me/consent", status_code=204)
async def set_consent(body: ConsentIn, principal: CurrentPrincipal, trail: Audit, db: Db) -> None:
    """Consent (or its withdrawal) to rated conversations being used, redacted, for training."""
    await service.set_consent(db=db, user_id=principal.user_id, consent=body.consent)
    trail(
        "privacy.consent" if body.consent else "privacy.consent_withdrawn",
        subject_id=principal.user_id,
        by=principal,
    )
    await db.commit()


@router.post("/api/admin/datasets/from-feedback", response_model=FileObject, status_code=201)
async def dataset_from_feedback(
    body: DatasetRequest, principal: AdminPrincipal, db: Db, trail: Audit, store: Files
) -> FileObject:
    """A JSONL file (DISC-MedLLM rows) of rated conversations from consenting patients,
    redacted by default, stored as a fine-tune file the jobs API accepts."""
    lines = await service.dataset_lines(db=db, redact=body.redact)
    if not lines:
        raise ApiError(
            404, "no_rated_conversations", "no consented conversation has a helpful rating yet"
        )
    async with service.dataset_file(
        db=db, store=store, owner_id=principal.user_id, name="feedback", lines=lines
    ) as stored:
        trail(
            "dataset.from_feedback",
            target_type="file",
            target_id=stored.id,
            details={"conversations": len(lines), "redacted": body.redact},
            by=principal,
        )
        await db.commit()
    return FileObject.of(stored)
