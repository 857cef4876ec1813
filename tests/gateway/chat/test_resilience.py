"""Redis going away and coming back, Postgres writes per turn, many sessions at once."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import orjson
import pytest
import redis
from fastapi import FastAPI
from sqlalchemy import event

from services.gateway.app import create_app
from services.gateway.config import GatewaySettings
from tests.support.engine_emulator import EmulatorHandle
from tests.support.platform import REPLY, Patient
from tests.support.servers import PrivateRedis, serve


def guest(url: str) -> Patient:
    client = httpx.Client(base_url=url, timeout=30)
    return Patient(client, client.post("/api/auth/guest").json()["csrf_token"])


def ask(p: Patient, sid: str, text: str) -> httpx.Response:
    return p.post(f"/api/sessions/{sid}/messages", json={"content": text, "stream": False})


def last_prompt(engine: EmulatorHandle) -> str:
    calls = [c for c in engine.state()["requests"] if c["path"] == "/generate_stream"]
    return str(calls[-1]["body"]["inputs"])


def test_chat_survives_redis_outage_and_ignores_stale_cache(
    gateway_settings: GatewaySettings, engine: EmulatorHandle, own_redis: PrivateRedis
) -> None:
    settings = gateway_settings.model_copy(update={"redis_url": own_redis.url})
    with serve(create_app(settings)) as url:
        p = guest(url)
        sid = p.post("/api/sessions", json={}).json()["id"]
        assert ask(p, sid, "第一问").status_code == 200
        cache = redis.Redis.from_url(own_redis.url)
        snapshot = cache.get(f"medchat:ctx:{sid}")
        assert snapshot is not None and len(orjson.loads(snapshot)) == 2

        own_redis.stop()
        r = ask(p, sid, "第二问")  # Postgres alone
        assert r.status_code == 200 and r.json()["turns_used"] == 3
        assert "第一问" in last_prompt(engine)

        own_redis.start()
        # As if Redis came back with the copy it had before the outage: it misses a turn.
        redis.Redis.from_url(own_redis.url).set(f"medchat:ctx:{sid}", snapshot)
        r = ask(p, sid, "第三问")
        assert r.status_code == 200 and r.json()["turns_used"] == 5
        assert "第二问" in last_prompt(engine)
        fresh = orjson.loads(redis.Redis.from_url(own_redis.url).get(f"medchat:ctx:{sid}") or b"[]")
        assert [m["seq"] for m in fresh] == [1, 2, 3, 4, 5, 6]
        assert httpx.get(f"{url}/readyz").json()["checks"]["redis"] == "ok"


def test_three_postgres_writes_per_turn(
    gateway_settings: GatewaySettings, engine: EmulatorHandle
) -> None:
    app: FastAPI = create_app(gateway_settings)
    with serve(app) as url:
        p = guest(url)
        sid = p.post("/api/sessions", json={}).json()["id"]
        assert ask(p, sid, "第一问").status_code == 200
        writes: list[str] = []

        def count(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
            verb = statement.lstrip().split(None, 1)[0].upper()
            if verb in {"INSERT", "UPDATE", "DELETE", "WITH"}:
                writes.append(statement)

        event.listen(app.state.db_engine.sync_engine, "before_cursor_execute", count)
        try:
            assert ask(p, sid, "第二问").status_code == 200
        finally:
            event.remove(app.state.db_engine.sync_engine, "before_cursor_execute", count)
        assert len(writes) == 3, writes


@pytest.mark.asyncio
async def test_fifty_sessions_five_turns_nothing_lost(
    gateway_url: str, engine: EmulatorHandle
) -> None:
    engine.control(token_delay=0.002)

    async def patient(n: int, client: httpx.AsyncClient) -> list[tuple[int, str, str]]:
        r = await client.post("/api/auth/guest")
        csrf = r.json()["csrf_token"]
        headers = {"X-CSRF-Token": csrf}
        sid = (await client.post("/api/sessions", json={}, headers=headers)).json()["id"]
        for turn in range(5):
            r = await client.post(
                f"/api/sessions/{sid}/messages",
                headers=headers,
                json={"content": f"病人{n}的第{turn}个问题", "stream": False},
            )
            assert r.status_code == 200, r.text
        detail = (await client.get(f"/api/sessions/{sid}")).json()
        return [(m["seq"], m["role"], m["content"]) for m in detail["messages"]]

    async def one(n: int) -> list[tuple[int, str, str]]:
        async with httpx.AsyncClient(base_url=gateway_url, timeout=60) as client:
            return await patient(n, client)

    results = await asyncio.gather(*(one(n) for n in range(50)))
    for n, messages in enumerate(results):
        assert [seq for seq, _, _ in messages] == list(range(1, 11))
        assert [m[2] for m in messages if m[1] == "user"] == [
            f"病人{n}的第{t}个问题" for t in range(5)
        ]
        assert all(m[2] == "".join(REPLY) for m in messages if m[1] == "assistant")
