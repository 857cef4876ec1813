"""`medchat apikey create|list|revoke` against the same database the gateway serves."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from pathlib import Path

import httpx

from services.gateway.config import GatewaySettings

MEDCHAT = Path(sys.executable).with_name("medchat")


def medchat(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(MEDCHAT), *args], capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL
    )


def test_create_list_revoke(gateway_url: str, database_url: str) -> None:
    created = medchat(
        "apikey",
        "create",
        "--name",
        "clinic-app",
        "--role",
        "admin",
        "--database-url",
        database_url,
    )
    assert created.returncode == 0, created.stderr
    key = created.stdout.strip()
    assert key.startswith("mk-") and "not shown again" in created.stderr
    headers = {"Authorization": f"Bearer {key}"}
    keys = httpx.get(f"{gateway_url}/api/admin/keys", headers=headers)
    assert keys.status_code == 200
    mine = next(k for k in keys.json() if k["name"] == "clinic-app")

    listed = medchat("apikey", "list", "--database-url", database_url)
    assert listed.returncode == 0 and "clinic-app" in listed.stdout and key not in listed.stdout

    revoked = medchat("apikey", "revoke", mine["id"], "--database-url", database_url)
    assert revoked.returncode == 0, revoked.stderr
    assert httpx.get(f"{gateway_url}/api/admin/keys", headers=headers).status_code == 401
    again = medchat("apikey", "revoke", mine["id"], "--database-url", database_url)
    assert again.returncode == 1 and "no active key" in again.stderr


def test_unreachable_database_is_a_clear_error() -> None:
    r = medchat(
        "apikey", "list", "--database-url", "postgresql+asyncpg://postgres@127.0.0.1:1/nothing"
    )
    assert r.returncode == 1 and "cannot reach the database" in r.stderr


def test_revocation_reaches_a_caching_gateway(
    gateway_settings: GatewaySettings, database_url: str
) -> None:
    from services.gateway.app import create_app
    from tests.support.servers import serve

    with serve(create_app(gateway_settings.model_copy(update={"auth_cache_s": 1.0}))) as url:
        key = medchat("apikey", "create", "--name", "cached", "--database-url", database_url)
        headers = {"Authorization": f"Bearer {key.stdout.strip()}"}
        assert httpx.get(f"{url}/api/sessions", headers=headers).status_code == 200
        key_id = asyncio.run(_key_id(database_url, "cached"))
        assert medchat("apikey", "revoke", key_id, "--database-url", database_url).returncode == 0
        # Revoked elsewhere (the CLI): this replica stops accepting it once its memory expires.
        deadline = time.monotonic() + 10
        while httpx.get(f"{url}/api/sessions", headers=headers).status_code != 401:
            assert time.monotonic() < deadline, "the revoked key is still accepted"
            time.sleep(0.2)


async def _key_id(database_url: str, name: str) -> str:
    import asyncpg

    conn = await asyncpg.connect(database_url.replace("+asyncpg", ""))
    try:
        return str(await conn.fetchval("SELECT id FROM api_keys WHERE name = $1", name))
    finally:
        await conn.close()
