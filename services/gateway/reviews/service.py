"""Reviews of AI answers by clinicians: plain functions, keyword-only `db`; the caller
commits and audits.

A review is one row per answer (`MessageReview`): reviewing again replaces it. Corrections
of consenting patients' answers become training data (`dataset_lines`), so review feeds the
next fine-tune; the figures per model say how often each model needed correcting and why.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from services.core.db import utcnow
from services.gateway.auth.principal import Principal
from services.gateway.errors import ApiError, NotFound
from services.gateway.feedback.service import TrainingTurn, dataset_rows
from services.gateway.sessions.service import author_of
from services.store.tables.auth import User
from services.store.tables.cases import Case, MessageReview
from services.store.tables.sessions import ChatSession, Message

from .schemas import ModelReviewStats, ReasonCount, ReviewIn, ReviewOut

TOP_REASONS = 3


async def answer_of_case(*, db: AsyncSession, case: Case, message_id: int) -> Message:
    """An AI answer in the case's session: another session's message answers 404 like a
    missing one (clinicians see only what was escalated to them)."""
    message = await db.get(Message, message_id)
    if message is None or message.session_id != case.session_id:
        raise NotFound("message")
    if message.role != "assistant":
        raise ApiError(400, "not_an_answer", "only the model's answers are reviewed", "message_id")
    if message.status == "failed":
        raise ApiError(400, "not_an_answer", "this answer failed: there is nothing to review")
    return message


async def review(
    *, db: AsyncSession, case: Case, message: Message, principal: Principal, body: ReviewIn
) -> MessageReview:
    """Record the verdict on `message`, replacing any earlier one (by anyone)."""
    stmt = insert(MessageReview).values(
        message_id=message.id,
        case_id=case.id,
        reviewer_id=principal.user_id,
        verdict=body.verdict,
        corrected=body.corrected,
        reason=body.reason,
        created_at=utcnow(),
    )
    replaced = ("case_id", "reviewer_id", "verdict", "corrected", "reason", "created_at")
    row = await db.execute(
        stmt.on_conflict_do_update(
            index_elements=[MessageReview.message_id],
            set_={k: stmt.excluded[k] for k in replaced},
        )
        .returning(MessageReview)
        .execution_options(populate_existing=True)
    )
    return row.scalar_one()


async def review_out(*, db: AsyncSession, row: MessageReview, message: Message) -> ReviewOut:
    reviewer = await db.get(User, row.reviewer_id) if row.reviewer_id else None
    return ReviewOut(
        message_id=row.message_id,
        case_id=row.case_id,
        verdict=row.verdict,  # type: ignore[arg-type]
        corrected=row.corrected,
        reason=row.reason,  # type: ignore[arg-type]
        reviewer=author_of(reviewer) if reviewer else None,
        model=message.model,
        created_at=row.created_at,
    )


async def stats(*, db: AsyncSession, since: datetime | None = None) -> list[ModelReviewStats]:
    """Per model: answers reviewed, how many were corrected, the most frequent reasons."""
    corrected = MessageReview.verdict == "corrected"
    recent = [MessageReview.created_at >= since] if since is not None else []
    totals = (
        await db.execute(
            select(Message.model, func.count(), func.count().filter(corrected))
            .join(MessageReview, MessageReview.message_id == Message.id)
            .where(*recent)
            .group_by(Message.model)
        )
    ).all()
    reasons: dict[str | None, list[ReasonCount]] = defaultdict(list)
    by_reason = await db.execute(
        select(Message.model, MessageReview.reason, func.count().label("n"))
        .join(MessageReview, MessageReview.message_id == Message.id)
        .where(corrected, MessageReview.reason.is_not(None), *recent)
        .group_by(Message.model, MessageReview.reason)
        .order_by(func.count().desc(), MessageReview.reason)
    )
    for model, reason, n in by_reason.all():
        if len(reasons[model]) < TOP_REASONS:
            reasons[model].append(ReasonCount(reason=reason, count=n))  # type: ignore[arg-type]
    out = [
        ModelReviewStats(
            model=model,
            reviewed=reviewed,
            corrected=n_corrected,
            corrected_share=n_corrected / reviewed,
            top_reasons=reasons.get(model, []),
        )
        for model, reviewed, n_corrected in totals
    ]
    return sorted(out, key=lambda s: (-s.reviewed, s.model or ""))


async def _reviewed_sessions(*, db: AsyncSession, include_correct: bool) -> list[uuid.UUID]:
    """Sessions of consenting patients with at least one answer to train on."""
    verdicts = ("corrected", "correct") if include_correct else ("corrected",)
    query = (
        select(Message.session_id)
        .join(MessageReview, MessageReview.message_id == Message.id)
        .join(ChatSession, ChatSession.id == Message.session_id)
        .join(User, User.id == ChatSession.user_id)
        .where(User.training_consent_at.is_not(None), MessageReview.verdict.in_(verdicts))
        .distinct()
    )
    return list((await db.execute(query)).scalars())


def _turns(
    messages: Sequence[Message], reviews: dict[int, MessageReview], include_correct: bool
) -> list[TrainingTurn]:
    """A session as training turns: a corrected answer reads as the clinician wrote it and
    is trained; an answer marked correct is trained as it was (if asked); every other
    answer, and a clinician's own messages in the hand-off, are context only."""
    turns = []
    for m in messages:
        r = reviews.get(m.id)
        if m.role == "assistant" and r is not None and r.verdict == "corrected" and r.corrected:
            turns.append(TrainingTurn("assistant", r.corrected))
        elif m.role == "assistant" and r is not None and r.verdict == "correct":
            turns.append(TrainingTurn("assistant", m.content, trained=include_correct))
        elif m.status == "complete":
            turns.append(TrainingTurn(m.role, m.content, trained=False))
    return turns


async def dataset_lines(*, db: AsyncSession, redact: bool, include_correct: bool) -> list[str]:
    """OpenAI-format JSONL rows (`{"messages": [...]}`, the `weight` of each answer says
    whether it trains) of consenting patients' sessions with a reviewed answer: the
    conversation up to its last answer to train on, corrected answers replaced by the
    clinician's text, redacted unless asked otherwise. Usually one row per session; an
    answer to train on that the clinician's reply follows ends a row of its own
    (`feedback.service.dataset_rows`).

    Only answers a clinician vouched for train (weight 1): corrected ones, and those marked
    correct unless `include_correct` is off. Unreviewed answers and the clinician's own
    hand-off messages (which speak as the doctor: the model must not learn to) stay as
    context with weight 0, so the model learns from no text a clinician did not check.
    """
    session_ids = await _reviewed_sessions(db=db, include_correct=include_correct)
    if not session_ids:
        return []
    messages = (
        (
            await db.execute(
                select(Message)
                .where(Message.session_id.in_(session_ids))
                .order_by(Message.session_id, Message.seq)
            )
        )
        .scalars()
        .all()
    )
    by_session: dict[uuid.UUID, list[Message]] = defaultdict(list)
    for m in messages:
        by_session[m.session_id].append(m)
    answer_ids = [m.id for m in messages if m.role == "assistant"]
    reviews = {
        r.message_id: r
        for r in (
            await db.execute(select(MessageReview).where(MessageReview.message_id.in_(answer_ids)))
        ).scalars()
    }
    lines = []
    for session_id in sorted(by_session):
        turns = _turns(by_session[session_id], reviews, include_correct)
        lines.extend(dataset_rows(turns, redact=redact, key="messages"))
    return lines
