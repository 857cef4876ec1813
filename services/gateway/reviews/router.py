"""Review and correction of AI answers: the clinician holding a case (or an admin) marks an
answer of the case's session correct or writes the corrected answer; admins see the figures
per model and turn consented corrections into a fine-tune file. Audited (who, what, when;
never the text)."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter

from services.gateway.audit.dependencies import Audit
from services.gateway.auth.dependencies import AdminPrincipal
from services.gateway.cases import service as cases
from services.gateway.cases.dependencies import ClinicianPrincipal, VisibleCase
from services.gateway.db import Db
from services.gateway.deps import Files
from services.gateway.error_schemas import error_responses
from services.gateway.errors import ApiError
from services.gateway.feedback import service as datasets
from services.gateway.files.schemas import FileObject

from . import service
from .schemas import ReviewDatasetRequest, ReviewIn, ReviewOut, ReviewStats

router = APIRouter(tags=["reviews"])


@router.post(
    "/api/cases/{case_id}/reviews",
    status_code=201,
    responses=error_responses(400, 401, 403, 404, 409),
)
async def review_answer(
    body: ReviewIn, case: VisibleCase, principal: ClinicianPrincipal, trail: Audit, db: Db
) -> ReviewOut:
    """Mark an AI answer of the case's session correct, or write the corrected answer (with
    a reason). The patient then sees that a clinician reviewed it; reviewing again replaces
    the earlier verdict. Only the clinician holding the case, or an admin."""
    if not principal.is_admin:
        cases.must_hold(case, principal)
    message = await service.answer_of_case(db=db, case=case, message_id=body.message_id)
    row = await service.review(db=db, case=case, message=message, principal=principal, body=body)
    trail(
        "case.review",
        target_type="message",
        target_id=str(message.id),
        subject_id=case.patient_id,
        details={"case_id": str(case.id), "verdict": body.verdict, "reason": body.reason},
        by=principal,
    )
    out = await service.review_out(db=db, row=row, message=message)
    await db.commit()
    return out


@router.get("/api/admin/reviews/stats", responses=error_responses(401, 403))
async def review_stats(_: AdminPrincipal, db: Db, since: datetime | None = None) -> ReviewStats:
    """Per model: answers reviewed, the share corrected, the top correction reasons
    (reviews since `since`, if given)."""
    return ReviewStats(data=await service.stats(db=db, since=since))


@router.post(
    "/api/admin/datasets/from-reviews",
    response_model=FileObject,
    status_code=201,
    responses=error_responses(401, 403, 404),
)
async def dataset_from_reviews(
    body: ReviewDatasetRequest, principal: AdminPrincipal, db: Db, trail: Audit, store: Files
) -> FileObject:
    """A JSONL file (OpenAI `messages` rows with per-answer `weight`) of consenting
    patients' conversations up to their reviewed answers, corrected answers as the
    clinician wrote them, redacted by default; stored as a fine-tune file the jobs API
    accepts. Only answers a clinician vouched for train (see `service.dataset_lines`)."""
    lines = await service.dataset_lines(
        db=db, redact=body.redact, include_correct=body.include_correct
    )
    if not lines:
        raise ApiError(
            404, "no_reviewed_answers", "no consented conversation has a reviewed answer yet"
        )
    async with datasets.dataset_file(
        db=db, store=store, owner_id=principal.user_id, name="reviews", lines=lines
    ) as stored:
        trail(
            "dataset.from_reviews",
            target_type="file",
            target_id=stored.id,
            details={
                "rows": len(lines),
                "redacted": body.redact,
                "include_correct": body.include_correct,
            },
            by=principal,
        )
        await db.commit()
    return FileObject.of(stored)
