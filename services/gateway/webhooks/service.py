"""Webhooks: a hospital system hears that a case opened, signed and retried.

The gateway writes one `WebhookDelivery` per active webhook, with the exact JSON body the
worker will sign and send (services/worker/webhooks.py), commits, and then queues one task per
delivery. The body names the case by its ids and its triage fields only: never the patient's
words, never who the patient is beyond an id (a hospital system fetches the case over
/api/cases with its own key, and that read is audited)."""

from __future__ import annotations

import logging
import secrets
import uuid
from collections.abc import Sequence
from typing import Any

import orjson
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from services.core.db import utcnow
from services.store.tables.cases import Case, Webhook, WebhookDelivery
from services.store.tasks import TaskQueue

log = logging.getLogger(__name__)

CASE_OPENED = "case.opened"
SECRET_BYTES = 32  # secrets.token_urlsafe: 43 characters


def case_fields(case: Case) -> dict[str, Any]:
    """What a webhook tells about a case: ids and triage, nothing the patient wrote."""
    return {
        "id": str(case.id),
        "session_id": str(case.session_id),
        "reason": case.reason,
        "urgent": case.urgent,
        "category": case.category,
        "state": case.state,
        "opened_at": case.opened_at,
        "due_at": case.due_at,
    }


def event_body(delivery: WebhookDelivery, case: Case) -> str:
    """The JSON body of a delivery, exactly as it is signed and sent."""
    body = {
        "id": str(delivery.id),
        "event": delivery.event,
        "created_at": delivery.created_at,
        "case": case_fields(case),
    }
    return orjson.dumps(body).decode()


async def case_opened(*, db: AsyncSession, queue: TaskQueue, case: Case) -> None:
    """Queue a `case.opened` delivery to every active webhook. Called after the case is
    committed; commits the deliveries itself, then queues them. A broker that is down is
    logged and leaves the deliveries pending: it never fails the patient's request."""
    hooks = (await db.scalars(select(Webhook.id).where(Webhook.disabled_at.is_(None)))).all()
    if not hooks:
        return
    now = utcnow()
    deliveries = []
    for webhook_id in hooks:
        delivery = WebhookDelivery(
            id=uuid.uuid4(), webhook_id=webhook_id, event=CASE_OPENED, created_at=now
        )
        delivery.payload = event_body(delivery, case)
        deliveries.append(delivery)
    db.add_all(deliveries)
    await db.commit()
    for delivery in deliveries:
        try:
            await queue.webhook_delivery(str(delivery.id))
        except Exception as exc:  # broker down: whichever error kombu raises, chat goes on
            log.warning(
                "could not queue webhook deliveries from %s on (%s): they stay pending",
                delivery.id,
                type(exc).__name__,
            )
            return  # the broker is down for the rest of them too


def new_secret() -> str:
    return secrets.token_urlsafe(SECRET_BYTES)


async def create_webhook(*, db: AsyncSession, url: str, created_by: uuid.UUID) -> Webhook:
    webhook = Webhook(id=uuid.uuid4(), url=url, secret=new_secret(), created_by=created_by)
    db.add(webhook)
    await db.flush()
    return webhook


async def list_webhooks(*, db: AsyncSession) -> Sequence[Webhook]:
    return (await db.scalars(select(Webhook).order_by(Webhook.created_at.desc()))).all()


async def disable_webhook(*, db: AsyncSession, webhook_id: uuid.UUID) -> Webhook | None:
    """Stop deliveries to an active webhook (its pending ones end `failed` in the worker);
    None when there is no such active webhook."""
    webhook = await db.get(Webhook, webhook_id)
    if webhook is None or webhook.disabled_at is not None:
        return None
    webhook.disabled_at = utcnow()
    await db.flush()
    return webhook


async def recent_deliveries(
    *, db: AsyncSession, webhook_id: uuid.UUID, limit: int
) -> Sequence[WebhookDelivery]:
    query = (
        select(WebhookDelivery)
        .where(WebhookDelivery.webhook_id == webhook_id)
        .order_by(WebhookDelivery.created_at.desc(), WebhookDelivery.id)
        .limit(limit)
    )
    return (await db.scalars(query)).all()
