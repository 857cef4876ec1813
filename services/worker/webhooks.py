"""Webhook deliveries: one signed POST per attempt, retried with exponential backoff.

The gateway stored the exact body and queued the delivery's id. Each attempt signs the body
anew (the signature carries the time of sending, so a retry is not refused as a replay), POSTs
it without following redirects, and records the answer on the row: a 2xx is `delivered`;
anything else counts an attempt and is tried again later, until the last attempt makes it
`failed`. Neither the body nor the secret is ever logged or stored in an error."""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from datetime import datetime, timedelta

import httpx
from sqlalchemy import select

from services.core.db import utcnow
from services.core.webhook_signing import HEADER, sign
from services.store.tables.cases import Webhook, WebhookDelivery

from .config import WorkerSettings
from .db import sessions, task_engine

log = logging.getLogger(__name__)

USER_AGENT = "DISC-MedChat-Webhooks/1"
MAX_ERROR_CHARS = 500  # the column's size


def backoff_s(attempts: int, settings: WorkerSettings) -> float:
    """The wait after the `attempts`-th failed attempt: base, 2×base, 4×base… up to the cap."""
    return float(
        min(settings.webhook_backoff_s * 2 ** (attempts - 1), settings.webhook_backoff_max_s)
    )


def headers_for(delivery: WebhookDelivery, secret: str, now: float | None = None) -> dict[str, str]:
    timestamp = int(time.time() if now is None else now)
    return {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        HEADER: sign(secret, timestamp, delivery.payload.encode("utf-8")),
        "X-MedChat-Event": delivery.event,
        "X-MedChat-Delivery": str(delivery.id),
    }


def _describe(exc: Exception, url: str) -> str:
    """A transport error, for the row and the log: its kind and message, the URL left out
    (it may hold a token in its query)."""
    text = f"{type(exc).__name__}: {exc}".rstrip(": ").replace(url, "<webhook url>")
    return text[:MAX_ERROR_CHARS]


async def post(
    webhook: Webhook, delivery: WebhookDelivery, settings: WorkerSettings
) -> tuple[int | None, str | None]:
    """One attempt: (status code, error); the error is None for a 2xx answer. The answer's
    body is never read: a receiver cannot make the worker hold a large one."""
    body = delivery.payload.encode("utf-8")
    try:
        # httpx's timeout bounds each step; this bounds the whole attempt, so a receiver that
        # trickles its answer cannot hold the worker either.
        async with (
            asyncio.timeout(settings.webhook_timeout_s),
            httpx.AsyncClient(timeout=settings.webhook_timeout_s, follow_redirects=False) as client,
            client.stream(
                "POST", webhook.url, content=body, headers=headers_for(delivery, webhook.secret)
            ) as response,
        ):
            code = response.status_code
    except TimeoutError:
        return None, f"no answer within {settings.webhook_timeout_s:g} s"
    except (httpx.HTTPError, httpx.InvalidURL) as exc:
        return None, _describe(exc, webhook.url)
    if 200 <= code < 300:
        return code, None
    if 300 <= code < 400:
        return code, f"HTTP {code}: redirects are not followed (register the final URL)"
    return code, f"HTTP {code}"


async def deliver(delivery_id: str, settings: WorkerSettings) -> float | None:
    """One attempt at a pending delivery. Returns the seconds to wait before the next attempt,
    or None when there is none to make (delivered, failed for good, already settled, or being
    attempted by another worker right now)."""
    async with task_engine(settings.database_url) as engine, sessions(engine)() as db:
        # The row stays locked during the POST: a redelivered task skips it, never sends twice.
        delivery = await db.scalar(
            select(WebhookDelivery)
            .where(WebhookDelivery.id == uuid.UUID(delivery_id))
            .with_for_update(skip_locked=True)
        )
        if delivery is None or delivery.status != "pending":
            return None
        webhook = await db.get(Webhook, delivery.webhook_id)
        if webhook is None or webhook.disabled_at is not None:
            delivery.status = "failed"
            delivery.last_error = "the webhook was disabled"
            await db.commit()
            return None
        code, error = await post(webhook, delivery, settings)
        delivery.attempts += 1
        delivery.last_status_code = code
        delivery.last_error = error
        retry_in: float | None = None
        if error is None:
            delivery.status = "delivered"
            delivery.delivered_at = utcnow()
        elif delivery.attempts >= settings.webhook_max_attempts:
            delivery.status = "failed"
        else:
            retry_in = backoff_s(delivery.attempts, settings)
        await db.commit()
    log.info(
        "webhook delivery %s: attempt %d, %s",
        delivery_id,
        delivery.attempts,
        f"{error}; next attempt in {retry_in:g} s" if retry_in else f"{delivery.status} ({error})",
    )
    return retry_in


async def never_queued(settings: WorkerSettings, now: datetime) -> list[str]:
    """Pending deliveries never attempted for `webhook_sweep_after_s`: their task was never
    sent (the broker was down when the case opened). The periodic sweep queues them again;
    a delivery attempted meanwhile is settled by its row lock and status, never sent twice."""
    cutoff = now - timedelta(seconds=settings.webhook_sweep_after_s)
    async with task_engine(settings.database_url) as engine, sessions(engine)() as db:
        rows = await db.scalars(
            select(WebhookDelivery.id).where(
                WebhookDelivery.status == "pending",
                WebhookDelivery.attempts == 0,
                WebhookDelivery.created_at < cutoff,
            )
        )
        return [str(i) for i in rows]
