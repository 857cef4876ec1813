"""Webhook deliveries end to end: the real gateway opens a case, a real Celery worker POSTs
the signed body to a real HTTP receiver that verifies it as the docs tell integrators to, and
retries with backoff (tiny here, through the worker's settings) until a 2xx or the last
attempt."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis

from services.core.devtools.processes import free_port
from services.gateway.config import GatewaySettings
from services.gateway.db import make_engine, make_sessionmaker
from services.store.tables.cases import Webhook, WebhookDelivery
from services.worker.config import WorkerSettings
from services.worker.webhooks import backoff_s, post
from tests.support.platform import Patient
from tests.support.webhooks import Receiver, receiver, wait_settled, webhooks_of
from tests.support.worker import Worker

MAX_ATTEMPTS = 3
CASE_FIELDS = {"id", "session_id", "reason", "urgent", "category", "state", "opened_at", "due_at"}


@pytest.fixture(scope="module")
def webhook_worker(
    gateway_settings: GatewaySettings, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Worker]:
    """A worker whose retries come within a second: 0.2 s, then 0.4 s, 3 attempts in all."""
    redis.Redis.from_url(gateway_settings.celery_broker).flushdb()  # earlier tests' tasks
    log: Path = tmp_path_factory.mktemp("webhook-worker") / "worker.log"
    env = {
        "MEDCHAT_WEBHOOK_BACKOFF_S": "0.2",
        "MEDCHAT_WEBHOOK_MAX_ATTEMPTS": str(MAX_ATTEMPTS),
        "MEDCHAT_WEBHOOK_TIMEOUT_S": "5",
    }
    w = Worker(gateway_settings, log, env)
    w.start()
    yield w
    w.stop()


@pytest.fixture
def new_webhook(admin: httpx.Client) -> Iterator[Callable[[str], dict[str, Any]]]:
    with webhooks_of(admin) as make:
        yield make


def hooked(make: Callable[[str], dict[str, Any]], r: Receiver) -> dict[str, Any]:
    """A webhook to `r`, whose secret `r` verifies with."""
    made = make(r.url)
    r.secret = made["secret"]
    return made


def escalate(admin: httpx.Client, p: Patient) -> str:
    """An admin opens a case on a new session of `p`; returns the session id."""
    sid = str(p.post("/api/sessions", json={}).json()["id"])
    r = admin.post("/api/cases", json={"session_id": sid})
    assert r.status_code == 201, r.text
    return sid


def stored_payload(database_url: str, delivery_id: str) -> str:
    async def read() -> str:
        engine = make_engine(database_url)
        try:
            async with make_sessionmaker(engine)() as db:
                row = await db.get(WebhookDelivery, uuid.UUID(delivery_id))
                assert row is not None
                return row.payload
        finally:
            await engine.dispose()

    return asyncio.run(read())


def test_two_failures_then_delivered_signed_on_every_attempt(
    webhook_worker: Worker,
    admin: httpx.Client,
    new_webhook: Callable[[str], dict[str, Any]],
    new_guest: Callable[[], Patient],
    database_url: str,
) -> None:
    with receiver([500, 500, 200]) as r:
        hook = hooked(new_webhook, r)
        sid = escalate(admin, new_guest())
        delivery = wait_settled(admin, hook["id"])
        assert delivery["status"] == "delivered", (delivery, webhook_worker.tail())
        assert delivery["attempts"] == 3 and delivery["last_status_code"] == 200
        assert delivery["last_error"] is None and delivery["delivered_at"] is not None
        got = r.received
    assert len(got) == 3
    assert all(g.verified for g in got), [g.why for g in got]
    body = stored_payload(database_url, delivery["id"])
    for g in got:
        assert g.body == body.encode()  # the stored body, byte for byte, on every attempt
        assert g.headers["Content-Type"] == "application/json"
        assert g.headers["X-MedChat-Event"] == "case.opened"
        assert g.headers["X-MedChat-Delivery"] == delivery["id"]
        assert hook["secret"] not in g.headers["X-MedChat-Signature"]
    event = json.loads(body)
    assert event["id"] == delivery["id"] and event["event"] == "case.opened"
    assert event["case"]["session_id"] == sid and event["case"]["reason"] == "admin"


def test_a_receiver_that_always_fails_ends_failed_after_the_last_attempt(
    webhook_worker: Worker,
    admin: httpx.Client,
    new_webhook: Callable[[str], dict[str, Any]],
    new_guest: Callable[[], Patient],
) -> None:
    with receiver([500]) as r:
        hook = hooked(new_webhook, r)
        escalate(admin, new_guest())
        delivery = wait_settled(admin, hook["id"])
        time.sleep(1.5)  # longer than any backoff left: no fourth attempt comes
        assert len(r.received) == MAX_ATTEMPTS
    assert delivery["status"] == "failed", (delivery, webhook_worker.tail())
    assert delivery["attempts"] == MAX_ATTEMPTS
    assert delivery["last_status_code"] == 500 and delivery["last_error"] == "HTTP 500"
    assert delivery["delivered_at"] is None
    assert hook["secret"] not in webhook_worker.tail()


def test_redirects_are_not_followed_and_unreachable_receivers_fail(
    webhook_worker: Worker,
    admin: httpx.Client,
    new_webhook: Callable[[str], dict[str, Any]],
    new_guest: Callable[[], Patient],
) -> None:
    with receiver([302]) as r:
        r.location = r.url  # followed, it would come back here again and again
        moved = hooked(new_webhook, r)
        nobody = new_webhook(f"http://127.0.0.1:{free_port()}/gone")
        escalate(admin, new_guest())
        redirected = wait_settled(admin, moved["id"])
        unreachable = wait_settled(admin, nobody["id"])
        assert len(r.received) == MAX_ATTEMPTS
    assert redirected["status"] == "failed" and redirected["last_status_code"] == 302
    assert "redirects are not followed" in redirected["last_error"]
    assert unreachable["status"] == "failed" and unreachable["attempts"] == MAX_ATTEMPTS
    assert unreachable["last_status_code"] is None
    assert unreachable["last_error"].startswith("ConnectError")
    assert "127.0.0.1" not in unreachable["last_error"]  # the URL is left out of errors


def test_asking_for_a_person_in_the_chat_sends_no_message_text(
    webhook_worker: Worker,
    admin: httpx.Client,
    new_webhook: Callable[[str], dict[str, Any]],
    new_guest: Callable[[], Patient],
) -> None:
    question = "我想转人工，我头疼三天了，吃了布洛芬也不管用"
    with receiver([200]) as r:
        hook = hooked(new_webhook, r)
        p = new_guest()
        sid = str(p.post("/api/sessions", json={}).json()["id"])
        answer = p.post(
            f"/api/sessions/{sid}/messages", json={"content": question, "stream": False}
        )
        assert answer.status_code == 200, answer.text
        case_id = answer.json()["handoff"]["case_id"]
        delivery = wait_settled(admin, hook["id"])
        assert delivery["status"] == "delivered", (delivery, webhook_worker.tail())
        [got] = r.received
    assert got.verified, got.why
    text = got.body.decode()
    for words in (question, "头疼", "布洛芬", "转人工", "您好"):  # the question, the answer
        assert words not in text
    event = json.loads(text)
    assert set(event) == {"id", "event", "created_at", "case"}
    assert set(event["case"]) == CASE_FIELDS
    assert event["case"]["id"] == case_id and event["case"]["session_id"] == sid
    assert event["case"]["reason"] == "patient_request" and event["case"]["state"] == "open"
    me = p.get("/api/auth/me").json()
    assert me["id"] not in text  # not even the patient's id


def test_a_receiver_slower_than_the_timeout_is_a_failed_attempt() -> None:
    """One attempt, in this process: the whole attempt is bounded, not only each read."""
    settings = WorkerSettings(
        webhook_timeout_s=0.5, webhook_backoff_s=30, webhook_backoff_max_s=3600
    )
    delivery = WebhookDelivery(id=uuid.uuid4(), event="case.opened", payload='{"id":"x"}')
    with receiver([200]) as r:
        r.delay_s = 3
        webhook = Webhook(url=r.url, secret="s" * 43)
        started = time.monotonic()
        code, error = asyncio.run(post(webhook, delivery, settings))
        assert time.monotonic() - started < 2.5
    assert code is None and error == "no answer within 0.5 s"
    assert backoff_s(1, settings) == 30 and backoff_s(3, settings) == 120
    assert backoff_s(20, settings) == 3600


def test_the_sweep_queues_deliveries_that_were_never_sent(
    new_webhook: Callable[[str], dict[str, Any]], database_url: str
) -> None:
    """A case opened while the broker was down leaves its delivery pending with no task: the
    periodic sweep finds it (not a fresh one, not one already attempted) and it goes out."""
    from datetime import timedelta

    from services.core.db import utcnow
    from services.worker.webhooks import deliver, never_queued

    settings = WorkerSettings(database_url=database_url)
    with receiver([200]) as r:
        hook = hooked(new_webhook, r)

        async def plant() -> dict[str, str]:
            engine = make_engine(database_url)
            try:
                async with make_sessionmaker(engine)() as db:
                    now = utcnow()
                    rows = {
                        "stuck": WebhookDelivery(created_at=now - timedelta(hours=1), attempts=0),
                        "fresh": WebhookDelivery(created_at=now, attempts=0),
                        "retrying": WebhookDelivery(
                            created_at=now - timedelta(hours=1), attempts=1
                        ),
                    }
                    for row in rows.values():
                        row.webhook_id = uuid.UUID(hook["id"])
                        row.event, row.payload, row.status = "case.opened", '{"x": 1}', "pending"
                        db.add(row)
                    await db.commit()
                    return {k: str(v.id) for k, v in rows.items()}
            finally:
                await engine.dispose()

        ids = asyncio.run(plant())
        found = asyncio.run(never_queued(settings, utcnow()))
        assert ids["stuck"] in found
        assert ids["fresh"] not in found and ids["retrying"] not in found
        assert asyncio.run(deliver(ids["stuck"], settings)) is None
        assert len(r.received) == 1 and r.received[0].verified
    assert ids["stuck"] not in asyncio.run(never_queued(settings, utcnow()))
