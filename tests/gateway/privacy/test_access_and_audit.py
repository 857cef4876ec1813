"""Who may read a patient's conversations (the owner; an admin only under a live grant),
each decision audited; the audit log cannot be altered, even by the application's role;
logins and failed logins are audited; a patient's export and deletion."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import uuid
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import redis

from services.core.db import utcnow
from tests.support.platform import REDIS_URL, Patient, make_key


def audit(admin: httpx.Client, **params: Any) -> list[dict[str, Any]]:
    r = admin.get("/api/admin/audit", params={"limit": 500, **params})
    assert r.status_code == 200, r.text
    rows: list[dict[str, Any]] = r.json()["data"]
    return rows


def me(p: Patient) -> str:
    return str(p.get("/api/auth/me").json()["id"])


def test_access_matrix(
    gateway_url: str,
    database_url: str,
    new_guest: Callable[[], Patient],
    admin: httpx.Client,
) -> None:
    owner, other = new_guest(), new_guest()
    sid = owner.post("/api/sessions", json={}).json()["id"]
    owner.post(f"/api/sessions/{sid}/messages", json={"content": "头痛", "stream": False})
    patient_id = me(owner)
    integrator = httpx.Client(
        base_url=gateway_url,
        headers={"Authorization": f"Bearer {make_key(database_url, 'integrator')}"},
    )
    content_routes = [f"/api/sessions/{sid}", f"/api/sessions/{sid}/export"]
    admin_routes = [
        f"/api/admin/patients/{patient_id}/sessions",
        f"/api/admin/patients/{patient_id}/sessions/{sid}",
    ]
    for path in content_routes:
        assert owner.get(path).status_code == 200
        for stranger in (other.client, integrator, admin):
            assert stranger.get(path).status_code == 404, path  # not even its existence
    for path in admin_routes:
        assert other.get(path).status_code == 403
        assert integrator.get(path).status_code == 403
        denied = admin.get(path)
        assert denied.status_code == 403 and denied.json()["error"]["code"] == "grant_required"

    grant = admin.post(
        "/api/admin/grants",
        json={"patient_id": patient_id, "reason": "patient asked support to check an answer"},
    )
    assert grant.status_code == 201, grant.text
    for path in admin_routes:
        assert admin.get(path).status_code == 200, path
    read = admin.get(admin_routes[1]).json()
    assert read["messages"][0]["content"] == "头痛"

    # An expired grant (time moved forward in the database) no longer opens anything.
    async def expire() -> None:
        conn = await asyncpg.connect(database_url.replace("+asyncpg", ""))
        await conn.execute(
            "UPDATE access_grants SET expires_at = $1 WHERE id = $2",
            utcnow() - timedelta(seconds=1),
            uuid.UUID(grant.json()["id"]),
        )
        await conn.close()

    asyncio.run(expire())
    assert admin.get(admin_routes[0]).status_code == 403

    decisions = [
        e["action"] for e in audit(admin, subject=patient_id) if e["action"].startswith("content")
    ]
    # Newest first: denied (expired), 3 reads (2 routes + the detail), 2 denied before the grant.
    assert decisions == [
        "content.denied",
        "content.read",
        "content.read",
        "content.read",
        "content.denied",
        "content.denied",
    ]
    grant_event = audit(admin, subject=patient_id, action="access.grant")[0]
    assert grant_event["details"]["reason"] == "patient asked support to check an answer"
    assert grant_event["ip"] == "127.0.0.1" and grant_event["request_id"]
    assert all("头痛" not in str(e) for e in audit(admin, subject=patient_id))
    integrator.close()


def test_logins_and_failures_are_audited(gateway_url: str, admin: httpx.Client) -> None:
    email = f"{uuid.uuid4().hex[:8]}@example.org"
    client = httpx.Client(base_url=gateway_url)
    assert (
        client.post(
            "/api/auth/signup", json={"email": email, "password": "correct horse 1"}
        ).status_code
        == 201
    )
    user_id = client.get("/api/auth/me").json()["id"]
    assert (
        client.post(
            "/api/auth/login", json={"email": email, "password": "wrong password 2"}
        ).status_code
        == 401
    )
    assert (
        client.post(
            "/api/auth/login", json={"email": email, "password": "correct horse 1"}
        ).status_code
        == 200
    )
    actions = [e["action"] for e in audit(admin, subject=user_id)] + [
        e["action"] for e in audit(admin, actor=user_id)
    ]
    assert {"auth.signup", "auth.login_failed", "auth.login"} <= set(actions)
    failed = audit(admin, subject=user_id, action="auth.login_failed")[0]
    assert failed["actor_id"] is None and failed["details"] == {
        "by": "email",
        "known_account": True,
    }
    assert email not in str(failed)
    client.close()


def test_the_audit_log_cannot_be_altered(database_url: str, admin: httpx.Client) -> None:
    admin.get("/api/admin/keys")  # any admin action: nothing needed, the table has rows
    admin.post("/api/admin/keys", json={"name": "audited", "role": "integrator"})

    async def attempts() -> list[str]:
        conn = await asyncpg.connect(database_url.replace("+asyncpg", ""))
        refused = []
        for sql in (
            "UPDATE audit_events SET action = 'nothing'",
            "DELETE FROM audit_events",
            "TRUNCATE audit_events",
        ):
            try:
                await conn.execute(sql)
            except asyncpg.PostgresError as exc:
                refused.append(str(exc))
        count = await conn.fetchval("SELECT count(*) FROM audit_events")
        await conn.close()
        assert count > 0
        return refused

    refused = asyncio.run(attempts())
    assert len(refused) == 3 and all("append-only" in r for r in refused)


def test_patient_exports_and_deletes_everything(
    new_guest: Callable[[], Patient], admin: httpx.Client
) -> None:
    p = new_guest()
    sid = p.post("/api/sessions", json={}).json()["id"]
    p.post(f"/api/sessions/{sid}/messages", json={"content": "胃痛两天", "stream": False})
    exported = p.get("/api/auth/me/export")
    assert exported.status_code == 200
    body = exported.json()
    assert body["sessions"][0]["messages"][0]["content"] == "胃痛两天"
    user_id = body["user"]["id"]
    assert redis.Redis.from_url(REDIS_URL).exists(f"medchat:ctx:{sid}")

    assert p.delete("/api/auth/me").status_code == 204
    assert not redis.Redis.from_url(REDIS_URL).exists(f"medchat:ctx:{sid}")
    assert p.get("/api/auth/me").status_code == 401
    deleted = audit(admin, subject=user_id, action="privacy.account_deleted")
    assert deleted and deleted[0]["details"] == {"sessions": 1}


def test_medchat_audit_queries_the_log(database_url: str, gateway_url: str) -> None:
    client = httpx.Client(base_url=gateway_url)
    client.post("/api/auth/login", json={"phone": "13900000000", "password": "not my password"})
    client.close()
    medchat = str(Path(sys.executable).with_name("medchat"))
    out = subprocess.run(
        [
            *(medchat, "audit", "--database-url", database_url),
            *("--action", "auth.login_failed", "--since", "10m", "--json"),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    rows = [json.loads(line) for line in out.stdout.splitlines()]
    assert rows and all(r["action"] == "auth.login_failed" for r in rows)
    assert rows[0]["details"] == {"by": "phone", "known_account": False}
    assert "13900000000" not in out.stdout
