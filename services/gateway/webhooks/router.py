"""Admins register a hospital system's webhooks: create (the signing secret is shown once),
list, disable, and see the recent deliveries of one. Creating and disabling are audited."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query

from services.gateway.audit.dependencies import Audit
from services.gateway.auth.dependencies import AdminPrincipal
from services.gateway.db import Db
from services.gateway.error_schemas import error_responses
from services.gateway.errors import NotFound
from services.store.tables.cases import Webhook

from . import service
from .schemas import DeliveryOut, WebhookCreate, WebhookCreated, WebhookOut

router = APIRouter(prefix="/api/admin/webhooks", tags=["webhooks"])


@router.post("", status_code=201, responses=error_responses(401, 403))
async def create_webhook(
    body: WebhookCreate, principal: AdminPrincipal, trail: Audit, db: Db
) -> WebhookCreated:
    """Case events (`case.opened`) will be POSTed to `url`, signed with the secret returned
    here; store it now, it is never shown again."""
    webhook = await service.create_webhook(db=db, url=body.url, created_by=principal.user_id)
    trail(
        "admin.webhook_create",
        target_type="webhook",
        target_id=webhook.id,
        details={"url": webhook.url},
        by=principal,
    )
    await db.commit()
    return WebhookCreated(**WebhookOut.model_validate(webhook).model_dump(), secret=webhook.secret)


@router.get("", responses=error_responses(401, 403))
async def list_webhooks(_: AdminPrincipal, db: Db) -> list[WebhookOut]:
    """Every webhook, newest first, disabled ones included; never their secrets."""
    return [WebhookOut.model_validate(w) for w in await service.list_webhooks(db=db)]


@router.delete("/{webhook_id}", status_code=204, responses=error_responses(401, 403, 404))
async def disable_webhook(
    webhook_id: uuid.UUID, principal: AdminPrincipal, trail: Audit, db: Db
) -> None:
    """No more deliveries to it; the ones still pending end `failed`."""
    if await service.disable_webhook(db=db, webhook_id=webhook_id) is None:
        raise NotFound("active webhook")
    trail("admin.webhook_disable", target_type="webhook", target_id=webhook_id, by=principal)
    await db.commit()


@router.get("/{webhook_id}/deliveries", responses=error_responses(401, 403, 404))
async def list_deliveries(
    webhook_id: uuid.UUID,
    _: AdminPrincipal,
    db: Db,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> list[DeliveryOut]:
    """The webhook's recent deliveries, newest first: status, attempts, the last answer."""
    if await db.get(Webhook, webhook_id) is None:
        raise NotFound("webhook")
    rows = await service.recent_deliveries(db=db, webhook_id=webhook_id, limit=limit)
    return [DeliveryOut.model_validate(d) for d in rows]
