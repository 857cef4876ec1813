"""A hospital system's end of the webhooks: a real HTTP receiver (aiohttp, on a free port, in
a thread of the test process) that verifies each delivery's signature as the docs tell
integrators to, and answers from a script; and webhooks made through the admin API for one
test, disabled when it ends (an active webhook left behind would get a delivery for every
case other tests open)."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx
from aiohttp import web

from services.core.devtools.processes import free_port
from services.core.webhook_signing import HEADER, SignatureError, verify


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes
    verified: bool  # the signature matched the secret and the raw body, within the window
    why: str = ""


@dataclass
class Receiver:
    """Answers the n-th delivery with `statuses[n]` (the last one from then on)."""

    statuses: list[int]
    secret: str = ""  # known once the webhook is created
    location: str | None = None  # sent with a 3xx: where a redirect would lead
    delay_s: float = 0.0  # how long it thinks before answering
    received: list[Received] = field(default_factory=list)
    port: int = field(default_factory=free_port)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/medchat/events"

    async def _handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        try:
            verify(self.secret, request.headers.get(HEADER), body)
            verified, why = True, ""
        except SignatureError as exc:
            verified, why = False, str(exc)
        self.received.append(Received(dict(request.headers), body, verified, why))
        await asyncio.sleep(self.delay_s)
        status = self.statuses[min(len(self.received), len(self.statuses)) - 1]
        headers = {"Location": self.location} if self.location else None
        return web.Response(
            status=status, text="ok" if status < 300 else "try later", headers=headers
        )

    def wait_for(self, count: int, timeout: float = 60) -> list[Received]:
        deadline = time.monotonic() + timeout
        while len(self.received) < count:
            assert time.monotonic() < deadline, f"{len(self.received)} deliveries, not {count}"
            time.sleep(0.05)
        return self.received


@contextmanager
def receiver(statuses: list[int]) -> Iterator[Receiver]:
    r = Receiver(statuses)
    loop = asyncio.new_event_loop()
    app = web.Application()
    app.router.add_post("/medchat/events", r._handle)
    runner = web.AppRunner(app, access_log=None)
    loop.run_until_complete(runner.setup())
    loop.run_until_complete(web.TCPSite(runner, "127.0.0.1", r.port).start())
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    try:
        yield r
    finally:
        asyncio.run_coroutine_threadsafe(runner.cleanup(), loop).result(timeout=10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=10)
        loop.close()


@contextmanager
def webhooks_of(admin: httpx.Client) -> Iterator[Callable[[str], dict[str, Any]]]:
    """`make(url)` registers a webhook (the answer holds its secret); all are disabled at
    the end."""
    made: list[str] = []

    def make(url: str) -> dict[str, Any]:
        r = admin.post("/api/admin/webhooks", json={"url": url})
        assert r.status_code == 201, r.text
        made.append(r.json()["id"])
        return dict(r.json())

    try:
        yield make
    finally:
        for webhook_id in made:
            admin.delete(f"/api/admin/webhooks/{webhook_id}")  # 404 if the test disabled it


def deliveries(admin: httpx.Client, webhook_id: str) -> list[dict[str, Any]]:
    r = admin.get(f"/api/admin/webhooks/{webhook_id}/deliveries")
    assert r.status_code == 200, r.text
    return list(r.json())


def wait_settled(admin: httpx.Client, webhook_id: str, timeout: float = 90) -> dict[str, Any]:
    """The webhook's one delivery, once it is no longer pending."""
    deadline = time.monotonic() + timeout
    while True:
        found = deliveries(admin, webhook_id)
        if found and found[0]["status"] != "pending":
            assert len(found) == 1, found
            return found[0]
        assert time.monotonic() < deadline, found
        time.sleep(0.2)
