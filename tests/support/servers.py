"""Real servers for the tests: a throwaway Postgres database and the gateway under uvicorn."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import asyncpg
import pytest
import uvicorn
from fastapi import FastAPI

from services.core.devtools.processes import NotReady, free_port, stop_process, wait_for_http

__all__ = [  # free_port and stop_process included: the tests' one place for process helpers
    "PrivateRedis",
    "free_port",
    "private_redis",
    "serve",
    "stop_process",
    "temporary_database",
    "transformers_serve",
    "wait_ready",
]

PG_ADMIN_DSN = "postgresql://postgres@127.0.0.1:5432/postgres"


def wait_ready(url: str, proc: subprocess.Popen[bytes], log: Path, timeout_s: float = 180) -> None:
    """Until `url` answers 200; the test fails with the end of `log` if `proc` exits first or
    time runs out."""
    try:
        wait_for_http(url, proc, timeout_s=timeout_s, log=log, interval_s=0.5)
    except NotReady as exc:
        pytest.fail(str(exc))


async def _admin(sql: str) -> None:
    conn = await asyncpg.connect(PG_ADMIN_DSN)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


@contextmanager
def temporary_database() -> Iterator[str]:
    """A fresh database migrated to head; dropped afterwards. Yields its SQLAlchemy URL."""
    from services.gateway.migrate import upgrade

    name = f"medchat_test_{uuid.uuid4().hex[:12]}"
    asyncio.run(_admin(f'CREATE DATABASE "{name}"'))
    url = f"postgresql+asyncpg://postgres@127.0.0.1:5432/{name}"
    try:
        upgrade(url)
        yield url
    finally:
        asyncio.run(_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@contextmanager
def serve(app: FastAPI) -> Iterator[str]:
    """Run `app` under a real uvicorn server in a thread; yields its base URL."""
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    # Generous: start-up checks the engine (a real vLLM's tokenizer in tests/engines), on
    # CPUs that a full run shares with vLLM's workers and other servers.
    deadline = time.monotonic() + 90
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            server.should_exit = True  # a late start must not keep serving a dropped database
            raise RuntimeError("the gateway did not start (see the log above)")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


class PrivateRedis:
    """A redis-server of a test's own, so it can be stopped and started again (no
    persistence: a restarted server comes back empty, like a Redis that lost its data)."""

    def __init__(self) -> None:
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        import redis

        self.proc = subprocess.Popen(
            [
                "redis-server",
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        client = redis.Redis(port=self.port, socket_connect_timeout=0.2)
        deadline = time.monotonic() + 10
        while True:
            try:
                client.ping()
                break
            except redis.RedisError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("redis-server did not start") from None
                time.sleep(0.05)
        client.close()

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.kill()  # abrupt on purpose: an outage, not a shutdown
            self.proc.wait(10)
            self.proc = None


@contextmanager
def private_redis() -> Iterator[PrivateRedis]:
    server = PrivateRedis()
    try:
        yield server
    finally:
        server.stop()


@contextmanager
def transformers_serve(
    model_dir: Path, log_path: Path, timeout_s: float = 120, *, pinned: bool = True
) -> Iterator[tuple[str, str]]:
    """`transformers serve` (a real inference server) on `model_dir`, CPU; yields its URL and
    the model id it lists (pinned: the only `model` it accepts; unpinned, as `medchat up`
    runs it: `model_dir` loaded up front, and any other directory on request)."""
    import httpx

    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "HF_HUB_DISABLE_UPDATE_CHECK": "1",  # the CLI would ask PyPI for a newer version
        "OMP_NUM_THREADS": "1",  # a tiny model; leave the other core to the gateway
    }
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            [
                *(sys.executable, "-m", "transformers.cli.transformers", "serve"),
                *([str(model_dir)] if pinned else ["--model-timeout", "-1"]),
                *("--host", "127.0.0.1", "--port", str(port), "--device", "cpu"),
            ],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
        )
    try:
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                state = f"exited with {proc.returncode}" if proc.poll() is not None else "timed out"
                output = log_path.read_text(errors="replace")[-4000:]
                raise RuntimeError(f"transformers serve did not start ({state}):\n{output}")
            time.sleep(0.25)
        if not pinned:
            name = str(model_dir.resolve())
            load = {"model": name, "prompt": "hello", "max_tokens": 1}
            httpx.post(f"{url}/v1/completions", json=load, timeout=timeout_s).raise_for_status()
        yield url, str(httpx.get(f"{url}/v1/models").json()["data"][0]["id"])
    finally:
        stop_process(proc)
