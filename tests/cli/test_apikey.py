"""`medchat apikey create|list|revoke` against the same database the gateway serves."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from services.gateway.config import GatewaySettings
from tests.support.platform import make_key
from tests.support.servers import free_port, stop_process

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


@contextmanager
def gateway_process(settings: GatewaySettings) -> Iterator[str]:
    """A gateway in a process of its own (`medchat serve`), as each replica runs."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("MEDCHAT_")}
    for name in ("database_url", "redis_url", "engine_url", "engine_protocol", "tokenizer_path"):
        env[f"MEDCHAT_{name.upper()}"] = str(getattr(settings, name))
    env.update(MEDCHAT_ENVIRONMENT="test", MEDCHAT_AUTH_CACHE_S="60")
    proc = subprocess.Popen(
        [sys.executable, "-m", "services.cli", "serve", "--port", str(port)],
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, "the gateway process exited"
            try:
                if httpx.get(f"{url}/healthz").status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "the gateway process did not start"
            time.sleep(0.2)
        yield url
    finally:
        stop_process(proc)


def refused_within(urls: list[str], headers: dict[str, str], seconds: float) -> float:
    """Seconds until every replica refuses the key (fails past `seconds`)."""
    start = time.monotonic()
    pending = list(urls)
    while pending:
        pending = [
            u for u in pending if httpx.get(f"{u}/api/sessions", headers=headers).status_code != 401
        ]
        assert time.monotonic() - start < seconds, f"still accepted by {pending}"
        time.sleep(0.05)
    return time.monotonic() - start


def test_revocation_reaches_every_replica_within_a_second(
    gateway_settings: GatewaySettings, database_url: str
) -> None:
    """Two gateway processes that each remember keys for a minute: a key revoked through
    one of them, or with the CLI, is refused by both within a second."""
    with gateway_process(gateway_settings) as a, gateway_process(gateway_settings) as b:
        for how in ("api", "cli"):
            name = f"replicas-{how}-{time.monotonic_ns()}"
            key = medchat("apikey", "create", "--name", name, "--database-url", database_url)
            headers = {"Authorization": f"Bearer {key.stdout.strip()}"}
            for url in (a, b):  # each replica looks the key up once and remembers it
                assert httpx.get(f"{url}/api/sessions", headers=headers).status_code == 200
            key_id = asyncio.run(_key_id(database_url, name))
            if how == "api":
                admin = {"Authorization": f"Bearer {make_key(database_url, 'admin')}"}
                assert (
                    httpx.delete(f"{a}/api/admin/keys/{key_id}", headers=admin).status_code == 204
                )
            else:
                revoked = medchat("apikey", "revoke", key_id, "--database-url", database_url)
                assert revoked.returncode == 0, revoked.stderr
            refused_within([a, b], headers, 1.0)
