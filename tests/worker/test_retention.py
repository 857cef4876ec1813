"""Retention deletes exactly what is due (clock moved forward), in Postgres, Redis and the file
store, and audits the pass without content; a session under a legal hold is never deleted."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
import redis

from services.core.db import utcnow
from services.gateway.app import create_app
from services.gateway.config import GatewaySettings
from services.worker.config import WorkerSettings
from services.worker.retention import enforce_retention
from tests.support.datasets import GOOD_ROW, jsonl, upload
from tests.support.platform import REDIS_URL, Patient, make_key
from tests.support.servers import serve, temporary_database


def ask(p: Patient, text: str) -> str:
    sid = str(p.post("/api/sessions", json={}).json()["id"])
    assert (
        p.post(f"/api/sessions/{sid}/messages", json={"content": text, "stream": False}).status_code
        == 200
    )
    return sid


@pytest.fixture
def own_gateway(
    gateway_settings: GatewaySettings, tmp_path: Path
) -> Iterator[tuple[GatewaySettings, str]]:
    """A gateway on a database of its own: a pass deletes everything due, other tests' rows
    included, so this test's clock moves only its own world."""
    with temporary_database() as url:
        settings = gateway_settings.model_copy(
            update={"database_url": url, "files_dir": tmp_path / "files"}
        )
        with serve(create_app(settings)) as base:
            yield settings, base


def test_retention_deletes_what_is_due_and_nothing_else(
    own_gateway: tuple[GatewaySettings, str],
) -> None:
    gateway_settings, gateway_url = own_gateway
    admin = httpx.Client(
        base_url=gateway_url,
        headers={"Authorization": f"Bearer {make_key(gateway_settings.database_url, 'admin')}"},
    )

    def new_guest() -> Patient:
        client = httpx.Client(base_url=gateway_url)
        return Patient(client, client.post("/api/auth/guest").json()["csrf_token"])

    # A signed-up patient with one session, and a guest with one.
    member = httpx.Client(base_url=gateway_url)
    r = member.post(
        "/api/auth/signup",
        json={"phone": f"139{utcnow():%H%M%S%f}"[:11], "password": "long password 1"},
    )
    assert r.status_code == 201, r.text
    member_p = Patient(member, r.json()["csrf_token"])
    member_sid = ask(member_p, "头晕")
    guest = new_guest()
    guest_sid = ask(guest, "咳嗽")
    file_id = upload(admin, jsonl(GOOD_ROW)).json()["id"]
    cache = redis.Redis.from_url(REDIS_URL)
    assert cache.exists(f"medchat:ctx:{member_sid}") and cache.exists(f"medchat:ctx:{guest_sid}")

    settings = WorkerSettings(
        database_url=gateway_settings.database_url,
        redis_url=REDIS_URL,
        files_dir=gateway_settings.files_dir,
        retention_days=30,
        guest_retention_hours=24,
        file_retention_days=90,
    )
    now = utcnow()
    # Nothing is due yet: nothing goes.
    first = asyncio.run(enforce_retention(settings, now))
    assert member_p.get(f"/api/sessions/{member_sid}").status_code == 200
    assert guest.get(f"/api/sessions/{guest_sid}").status_code == 200

    # Two days later: the guest (24 h) is due, the member's session (30 days) is not.
    asyncio.run(enforce_retention(settings, now + timedelta(days=2)))
    assert guest.get(f"/api/sessions/{guest_sid}").status_code == 401  # the guest is gone
    assert not cache.exists(f"medchat:ctx:{guest_sid}")
    assert member_p.get(f"/api/sessions/{member_sid}").status_code == 200
    assert admin.get(f"/v1/files/{file_id}").status_code == 200

    # Forty days later: the member's untouched session too (the account stays); the file
    # (90 days) stays.
    asyncio.run(enforce_retention(settings, now + timedelta(days=40)))
    assert member_p.get(f"/api/sessions/{member_sid}").status_code == 404
    assert member_p.get("/api/auth/me").status_code == 200
    assert not cache.exists(f"medchat:ctx:{member_sid}")
    assert admin.get(f"/v1/files/{file_id}").status_code == 200

    asyncio.run(enforce_retention(settings, now + timedelta(days=100)))
    assert admin.get(f"/v1/files/{file_id}").status_code == 404
    assert not (gateway_settings.files_dir / f"{file_id}.jsonl").exists()

    passes = admin.get("/api/admin/audit", params={"action": "retention"}).json()["data"]
    deleted_ids = {s for e in passes for s in e["details"]["session_ids"]}
    assert {member_sid, guest_sid} <= deleted_ids
    assert all("头晕" not in str(e) and "咳嗽" not in str(e) for e in passes)
    assert first == {"sessions": 0, "guests": 0, "files": 0, "held": 0}
    member.close()
    admin.close()


def test_retention_keeps_held_sessions_and_counts_them(
    own_gateway: tuple[GatewaySettings, str],
) -> None:
    gateway_settings, gateway_url = own_gateway
    admin = httpx.Client(
        base_url=gateway_url,
        headers={"Authorization": f"Bearer {make_key(gateway_settings.database_url, 'admin')}"},
    )
    member = httpx.Client(base_url=gateway_url)
    r = member.post(
        "/api/auth/signup",
        json={"phone": f"138{utcnow():%H%M%S%f}"[:11], "password": "long password 2"},
    )
    assert r.status_code == 201, r.text
    member_p = Patient(member, r.json()["csrf_token"])
    held_sid, free_sid = ask(member_p, "胸闷"), ask(member_p, "失眠")
    guest_client = httpx.Client(base_url=gateway_url)
    guest = Patient(guest_client, guest_client.post("/api/auth/guest").json()["csrf_token"])
    guest_held, guest_free = ask(guest, "发热"), ask(guest, "腹泻")
    for sid in (held_sid, guest_held):
        hold = admin.put(
            f"/api/admin/sessions/{sid}/legal-hold", json={"reason": "dispute 2026-17"}
        )
        assert hold.status_code == 200, hold.text

    settings = WorkerSettings(
        database_url=gateway_settings.database_url,
        redis_url=REDIS_URL,
        files_dir=gateway_settings.files_dir,
        consultation_retention_days=30,
        guest_retention_hours=24,
    )
    now = utcnow()
    # Forty days on, every session is due by the consultation clock and the guest by theirs:
    # the unheld sessions go, the held ones stay, and so does the guest who owns one.
    summary = asyncio.run(enforce_retention(settings, now + timedelta(days=40)))
    assert summary == {"sessions": 2, "guests": 0, "files": 0, "held": 2}
    assert member_p.get(f"/api/sessions/{held_sid}").status_code == 200
    assert member_p.get(f"/api/sessions/{free_sid}").status_code == 404
    assert guest.get(f"/api/sessions/{guest_held}").status_code == 200
    assert guest.get(f"/api/sessions/{guest_free}").status_code == 404
    (entry,) = admin.get("/api/admin/audit", params={"action": "retention"}).json()["data"]
    details = entry["details"]
    assert details["held"] == 2 and details["sessions"] == 2
    assert set(details["held_session_ids"]) == {held_sid, guest_held}
    assert set(details["session_ids"]) == {free_sid, guest_free}

    # Released, the member's session is due again; the guest's still held.
    assert admin.delete(f"/api/admin/sessions/{held_sid}/legal-hold").status_code == 200
    summary = asyncio.run(enforce_retention(settings, now + timedelta(days=40)))
    assert summary == {"sessions": 1, "guests": 0, "files": 0, "held": 1}
    assert member_p.get(f"/api/sessions/{held_sid}").status_code == 404
    # Released too, the guest goes with their last session.
    assert admin.delete(f"/api/admin/sessions/{guest_held}/legal-hold").status_code == 200
    summary = asyncio.run(enforce_retention(settings, now + timedelta(days=40)))
    assert summary == {"sessions": 1, "guests": 1, "files": 0, "held": 0}
    assert guest.get("/api/auth/me").status_code == 401
    passes = admin.get("/api/admin/audit", params={"action": "retention"}).json()["data"]
    assert [e["details"]["held"] for e in passes] == [0, 1, 2]  # newest first
    assert all(w not in str(passes) for w in ("胸闷", "失眠", "发热", "腹泻", "dispute"))
    for client in (member, guest_client, admin):
        client.close()
