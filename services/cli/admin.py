"""`medchat db …` and `medchat apikey …`: operate on the gateway's database directly."""

from __future__ import annotations

import asyncio
import getpass
import json
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TypeVar

import click
from rich.console import Console
from rich.table import Table
from sqlalchemy import select
from sqlalchemy.exc import ProgrammingError
from sqlalchemy.ext.asyncio import AsyncSession

T = TypeVar("T")

database_option = click.option(
    "--database-url",
    envvar="MEDCHAT_DATABASE_URL",
    default=None,
    help="SQLAlchemy URL (default: MEDCHAT_DATABASE_URL, else the --data-dir database).",
)
data_dir_option = click.option(
    "--data-dir",
    type=click.Path(path_type=Path),
    default=None,
    help="The data directory of `medchat up` (its embedded Postgres).",
)


def _url(database_url: str | None, data_dir: Path | None = None) -> str:
    if database_url:
        return database_url
    if data_dir is not None:
        from .local_stack import database_url as local_url

        return local_url(data_dir)
    from services.gateway.config import get_settings

    return get_settings().database_url


def _run(url: str, work: Callable[[AsyncSession], Awaitable[T]]) -> T:
    from services.gateway.db import make_engine, make_sessionmaker

    async def main() -> T:
        engine = make_engine(url)
        try:
            async with make_sessionmaker(engine)() as db:
                return await work(db)
        finally:
            await engine.dispose()

    try:
        return asyncio.run(main())
    except OSError as exc:
        raise click.ClickException(f"cannot reach the database: {exc}") from exc
    except ProgrammingError as exc:
        raise click.ClickException(
            f"the database is not set up for DISC-MedChat ({exc.orig}): run `medchat db upgrade`"
        ) from exc


@click.group()
def db() -> None:
    """Database schema."""


@db.command()
@database_option
@data_dir_option
def upgrade(database_url: str | None, data_dir: Path | None) -> None:
    """Apply the Alembic migrations up to the newest."""
    from services.gateway.migrate import upgrade as run_upgrade

    run_upgrade(_url(database_url, data_dir))
    click.echo("database is at the newest schema")


@click.group()
def apikey() -> None:
    """API keys for integrators and admins."""


@apikey.command("create")
@click.option("--name", required=True, help="Who or what the key is for.")
@click.option(
    "--role",
    type=click.Choice(["integrator", "clinician", "admin"]),
    default="integrator",
    show_default=True,
)
@database_option
@data_dir_option
def create_key(name: str, role: str, database_url: str | None, data_dir: Path | None) -> None:
    """Create a key and print it once (only its hash is stored)."""
    from services.gateway.audit.service import record
    from services.store.apikeys import create_api_key

    async def work(session: AsyncSession) -> str:
        row, key = await create_api_key(db=session, name=name, role=role)
        record(
            session,
            "admin.key_create",
            via="cli",
            target_type="api_key",
            target_id=row.id,
            details={"role": role, "name": name, "os_user": getpass.getuser()},
        )
        await session.commit()
        return key

    key = _run(_url(database_url, data_dir), work)
    click.echo(key)
    Console(stderr=True).print(f"[dim]{role} key '{name}' created; it is not shown again[/dim]")


@apikey.command("list")
@database_option
@data_dir_option
def list_keys(database_url: str | None, data_dir: Path | None) -> None:
    """Keys with their prefix, role and state (never the key)."""
    from services.store.tables.auth import ApiKey

    async def work(session: AsyncSession) -> list[ApiKey]:
        return list((await session.execute(select(ApiKey).order_by(ApiKey.created_at))).scalars())

    table = Table("id", "name", "prefix", "role", "created", "revoked")
    for k in _run(_url(database_url, data_dir), work):
        table.add_row(
            str(k.id),
            k.name,
            k.prefix,
            k.role,
            f"{k.created_at:%Y-%m-%d %H:%M}",
            f"{k.revoked_at:%Y-%m-%d %H:%M}" if k.revoked_at else "",
        )
    Console().print(table)


@apikey.command("revoke")
@click.argument("key_id", type=click.UUID)
@database_option
@data_dir_option
def revoke_key(key_id: uuid.UUID, database_url: str | None, data_dir: Path | None) -> None:
    """Revoke a key by id (see `medchat apikey list`)."""
    from services.gateway.audit.service import record
    from services.store.apikeys import revoke_api_key

    async def work(session: AsyncSession) -> bool:
        done = await revoke_api_key(db=session, key_id=key_id)
        record(
            session,
            "admin.key_revoke",
            via="cli",
            target_type="api_key",
            target_id=key_id,
            details={"os_user": getpass.getuser()},
        )
        await session.commit()
        return done

    if not _run(_url(database_url, data_dir), work):
        raise click.ClickException(f"no active key with id {key_id}")
    click.echo(f"revoked {key_id}")
    if not asyncio.run(_announce_revocation(key_id, data_dir)):
        Console(stderr=True).print(
            "[yellow]Redis could not be reached: running gateways refuse the key once their"
            " cached lookup expires (MEDCHAT_AUTH_CACHE_S)[/yellow]"
        )


async def _announce_revocation(key_id: uuid.UUID, data_dir: Path | None) -> bool:
    """Every running gateway forgets the key at once (auth/revocations.py)."""
    from redis.asyncio import Redis

    from services.gateway.auth.revocations import announce
    from services.gateway.config import GatewaySettings

    from .supervisor import StateFile

    settings = GatewaySettings()
    url = settings.redis_url
    if data_dir is not None and "redis_url" not in settings.model_fields_set:
        running = StateFile(data_dir).running()  # the Redis of `medchat up` on that directory
        url = running.get("redis", url) if running else url
    redis = Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)
    try:
        return await announce(redis, key_id)
    finally:
        await redis.aclose()


def _since(value: str | None) -> datetime | None:
    """An ISO date/time, or a span back from now: 30m, 24h, 7d."""
    if not value:
        return None
    units = {"m": 60, "h": 3600, "d": 86400}
    if value[:-1].isdigit() and value[-1] in units:
        return datetime.now(UTC) - timedelta(seconds=int(value[:-1]) * units[value[-1]])
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(
            "use an ISO date or 30m / 24h / 7d", param_hint="--since"
        ) from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


@click.command()
@click.option("--action", help="Action or its prefix: auth, auth.login_failed, content.read, …")
@click.option("--actor", type=click.UUID, help="Who acted (user id).")
@click.option("--subject", type=click.UUID, help="Whose data (user id).")
@click.option("--since", help="ISO date/time, or 30m / 24h / 7d.")
@click.option("--limit", default=50, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
@database_option
@data_dir_option
def audit(
    action: str | None,
    actor: uuid.UUID | None,
    subject: uuid.UUID | None,
    since: str | None,
    limit: int,
    as_json: bool,
    database_url: str | None,
    data_dir: Path | None,
) -> None:
    """The audit log, newest first: who did what to whose data, when, from where."""
    from services.gateway.audit.service import query
    from services.store.tables.audit import AuditEvent

    start = _since(since)

    async def work(session: AsyncSession) -> list[AuditEvent]:
        return await query(
            db=session, limit=limit, action=action, actor_id=actor, subject_id=subject, since=start
        )

    events = _run(_url(database_url, data_dir), work)
    if as_json:
        for e in events:
            click.echo(
                json.dumps(
                    {
                        "id": e.id,
                        "at": e.at.isoformat(),
                        "action": e.action,
                        "actor_id": str(e.actor_id) if e.actor_id else None,
                        "actor_role": e.actor_role,
                        "via": e.via,
                        "target": f"{e.target_type}:{e.target_id}" if e.target_type else None,
                        "subject_id": str(e.subject_id) if e.subject_id else None,
                        "ip": e.ip,
                        "request_id": e.request_id,
                        "details": e.details,
                    },
                    ensure_ascii=False,
                )
            )
        return
    table = Table("at", "action", "actor", "target", "subject", "from", "details")
    for e in events:
        table.add_row(
            f"{e.at:%Y-%m-%d %H:%M:%S}",
            e.action,
            f"{e.actor_role or ''} {str(e.actor_id)[:8] if e.actor_id else ''} ({e.via})",
            f"{e.target_type}:{e.target_id}" if e.target_type else "",
            str(e.subject_id)[:8] if e.subject_id else "",
            e.ip or "",
            json.dumps(e.details, ensure_ascii=False) if e.details else "",
        )
    Console().print(table)
