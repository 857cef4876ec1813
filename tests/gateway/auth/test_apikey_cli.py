"""`medchat apikey create|list|revoke` against the same database the gateway serves."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import httpx

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
