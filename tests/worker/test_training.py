"""The whole fine-tuning path for real: upload → validate → queue → train (the trainer as a
subprocess of a Celery worker) → succeeded → published → served by `transformers serve` →
a chat answers a trained question with the trained answer. Then cancel, a killed worker,
and two jobs in order."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis

from services.gateway.app import create_app
from services.gateway.config import GatewaySettings
from tests.support.platform import make_key
from tests.support.servers import serve, temporary_database, transformers_serve
from tests.support.worker import TERMINAL, Worker, create, wait_for

pytest.importorskip("torch", reason="training needs torch (the serve or train extra)")


@pytest.fixture
def served_gateway(
    gateway_settings: GatewaySettings, tmp_path: Path
) -> Iterator[Callable[[Path], AbstractContextManager[tuple[str, str]]]]:
    """`transformers serve` on a base model, unpinned as `medchat up` runs it, and a gateway
    in front of it with a database of its own (its serving choice stays there). Yields the
    gateway's URL and its database URL."""

    @contextmanager
    def start(base_dir: Path) -> Iterator[tuple[str, str]]:
        with (
            temporary_database() as db,
            transformers_serve(base_dir, tmp_path / "serve.log", pinned=False) as (url, model_id),
        ):
            settings = gateway_settings.model_copy(
                update={
                    "database_url": db,
                    "engine_protocol": "openai",
                    "engine_url": url,
                    "engine_model": model_id,
                    "engine_model_ref": "path",
                    "engine_first_token_timeout_s": 60.0,
                    "tokenizer_path": base_dir,
                    "engine_sampling_extras": False,
                }
            )
            with serve(create_app(settings)) as gateway:
                yield gateway, db

    yield start


def test_upload_train_publish_serve_and_answer(
    admin: httpx.Client,
    base_model: str,
    worker: Worker,
    tiny_file: tuple[str, list[tuple[str, str]]],
    gateway_settings: GatewaySettings,
    database_url: str,
    served_gateway: Callable[[Path], AbstractContextManager[tuple[str, str]]],
) -> None:
    file_id, pairs = tiny_file
    job = create(admin, base_model, file_id)
    seen: set[str] = set()

    def progressed(j: dict[str, Any]) -> bool:
        seen.add(j["status"])
        return j["status"] in TERMINAL

    done = wait_for(admin, job["id"], progressed, timeout=600, worker=worker)
    assert done["status"] == "succeeded", (done, worker.tail())
    assert {"running", "succeeded"} <= seen
    name = done["fine_tuned_model"]
    assert name == f"ft:{base_model}:tiny:{job['id']}"
    assert done["trained_tokens"] and done["hyperparameters"]["n_epochs"] == 40

    events = _events(admin, job["id"])
    messages = [e["message"] for e in events]
    assert messages[0].startswith("Created fine-tuning job")
    assert "Files validated, moving job to queued state" in messages
    assert any(m.startswith("Step ") and "training loss=" in m for m in messages)
    losses = [
        e["data"]["loss"]
        for e in events
        if e["type"] == "metrics" and e["data"] and "loss" in e["data"]
    ]
    assert losses[-1] < losses[0]  # it learned
    checkpoints = admin.get(f"/v1/fine_tuning/jobs/{job['id']}/checkpoints").json()["data"]
    assert checkpoints and checkpoints[0]["step_number"] >= checkpoints[-1]["step_number"]

    models = admin.get("/v1/models").json()["data"]
    published = next(m for m in models if m["id"] == name)
    model_dir = gateway_settings.models_dir / "ft" / job["id"]
    assert published["parent"] == base_model and (model_dir / "config.json").exists()

    # Served for real: the admin switches the engine from the base model to the fine-tune,
    # and a trained question then gets the trained answer (greedy decoding).
    question, answer = pairs[0]
    with (
        served_gateway(gateway_settings.models_dir / base_model) as (gateway, db),
        httpx.Client(base_url=gateway, timeout=120) as client,
    ):
        integrator = {"Authorization": f"Bearer {make_key(db, 'integrator')}"}
        # A model name the registry does not list: whichever model serves patients answers.
        chat = {
            "model": "disc-medllm",
            "messages": [{"role": "user", "content": question}],
            "temperature": 0,
            "max_tokens": 24,
        }
        before = client.post("/v1/chat/completions", json=chat, headers=integrator)
        assert before.status_code == 200, before.text
        assert not before.json()["choices"][0]["message"]["content"].startswith(answer)
        # Naming the fine-tune (as an evaluation of it does) gets it for that call only.
        named = client.post(
            "/v1/chat/completions", json={**chat, "model": name}, headers=integrator
        )
        assert named.status_code == 200, named.text
        assert named.json()["model"] == name
        assert named.json()["choices"][0]["message"]["content"].startswith(answer)
        again = client.post("/v1/chat/completions", json=chat, headers=integrator)
        assert (
            again.json()["choices"][0]["message"]["content"]
            == (before.json()["choices"][0]["message"]["content"])
        )

        admin_key = {"Authorization": f"Bearer {make_key(db, 'admin')}"}
        r = client.put("/api/admin/serving", json={"model": name}, headers=admin_key)
        assert r.status_code == 200, r.text
        listed = client.get("/v1/models", headers=admin_key).json()["data"]
        assert [m["id"] for m in listed if m["serving"]] == [name]

        r = client.post("/v1/chat/completions", json=chat, headers=integrator)
        assert r.status_code == 200, r.text
        assert r.json()["model"] == name
        said = r.json()["choices"][0]["message"]["content"]
        assert said.startswith(answer), (said, answer)


def test_cancel_stops_the_trainer_within_seconds(
    admin: httpx.Client,
    base_model: str,
    worker: Worker,
    tiny_file: tuple[str, list[tuple[str, str]]],
) -> None:
    job, trainer = running_job(admin, base_model, worker, tiny_file[0])
    assert admin.post(f"/v1/fine_tuning/jobs/{job['id']}/cancel").status_code == 200
    # The worker polls the flag every 0.5 s and gives the group 3 s before SIGKILL; the wait
    # below is only a guard against a hang.
    done = wait_for(admin, job["id"], lambda j: j["status"] in TERMINAL, timeout=30, worker=worker)
    assert done["status"] == "cancelled" and done["fine_tuned_model"] is None
    assert not any(_alive(pid) for pid in trainer)
    steps = [
        e["data"] for e in _events(admin, job["id"]) if (e["data"] or {}).get("event") == "progress"
    ]
    assert not steps or steps[-1]["step"] < steps[-1]["max_steps"]  # stopped, not finished


def test_a_killed_worker_leaves_the_job_failed(
    admin: httpx.Client,
    base_model: str,
    worker: Worker,
    tiny_file: tuple[str, list[tuple[str, str]]],
) -> None:
    job, trainer = running_job(admin, base_model, worker, tiny_file[0])
    assert worker.proc is not None
    worker.proc.send_signal(signal.SIGKILL)
    worker.proc.wait(10)
    done = wait_for(admin, job["id"], lambda j: j["status"] in TERMINAL, timeout=30)
    assert done["status"] == "failed" and done["error"]["code"] == "worker_lost"
    deadline = time.monotonic() + 10
    while any(_alive(pid) for pid in trainer):  # it dies with its worker (PDEATHSIG)
        assert time.monotonic() < deadline, "the trainer outlived its killed worker"
        time.sleep(0.2)
    worker.proc = None


def test_two_jobs_run_one_at_a_time_in_order(
    admin: httpx.Client,
    base_model: str,
    worker: Worker,
    tiny_file: tuple[str, list[tuple[str, str]]],
) -> None:
    file_id, _ = tiny_file
    first = create(admin, base_model, file_id, n_epochs=2)
    second = create(admin, base_model, file_id, n_epochs=2)
    overlap = False
    deadline = time.monotonic() + 300
    while True:
        a = admin.get(f"/v1/fine_tuning/jobs/{first['id']}").json()
        b = admin.get(f"/v1/fine_tuning/jobs/{second['id']}").json()
        overlap |= a["status"] == "running" and b["status"] == "running"
        if a["status"] in TERMINAL and b["status"] in TERMINAL:
            break
        assert time.monotonic() < deadline, (a, b, worker.tail())
        time.sleep(0.2)
    assert (a["status"], b["status"]) == ("succeeded", "succeeded"), worker.tail()
    assert not overlap
    assert a["finished_at"] <= b["finished_at"]


def running_job(
    admin: httpx.Client, base_model: str, worker: Worker, file_id: str
) -> tuple[dict[str, Any], list[int]]:
    """A job long enough to be interrupted, once its trainer process runs."""
    job = create(admin, base_model, file_id, n_epochs=50, batch_size=1)
    wait_for(admin, job["id"], lambda j: j["status"] == "running", worker=worker)
    deadline = time.monotonic() + 30
    while not (trainer := _trainer_pids(worker)):
        assert time.monotonic() < deadline, worker.tail()
        time.sleep(0.1)
    return job, trainer


def _events(admin: httpx.Client, job_id: str) -> list[dict[str, Any]]:
    page = admin.get(f"/v1/fine_tuning/jobs/{job_id}/events", params={"limit": 1000}).json()
    return list(reversed(page["data"]))


def _trainer_pids(worker: Worker) -> list[int]:
    """The trainer processes this test's worker started (not another test process's)."""
    assert worker.proc is not None
    pids = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                cmd = (proc / "cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if b"trainer.train" in cmd and _descends_from(int(proc.name), worker.proc.pid):
                pids.append(int(proc.name))
    return pids


def _descends_from(pid: int, ancestor: int) -> bool:
    while pid > 1:
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            return False
        pid = int(stat.rsplit(")", 1)[1].split()[1])  # the field after the state: the parent
        if pid == ancestor:
            return True
    return False


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    status = Path(f"/proc/{pid}/status")
    return status.exists() and "zombie" not in status.read_text()


def test_a_killed_worker_s_job_resumes_from_its_checkpoint_when_enabled(
    admin: httpx.Client,
    base_model: str,
    gateway_settings: GatewaySettings,
    tmp_path: Path,
    tiny_file: tuple[str, list[tuple[str, str]]],
) -> None:
    redis.Redis.from_url(gateway_settings.celery_broker).flushdb()
    env = {"MEDCHAT_RESUME_INTERRUPTED_JOBS": "true"}
    first = Worker(gateway_settings, tmp_path / "first.log", env=env)
    first.start()
    job, _ = running_job(admin, base_model, first, tiny_file[0])
    path = f"/v1/fine_tuning/jobs/{job['id']}/checkpoints"
    wait_for(admin, job["id"], lambda _: bool(admin.get(path).json()["data"]), worker=first)
    assert first.proc is not None
    first.proc.send_signal(signal.SIGKILL)
    first.proc.wait(10)
    first.proc = None

    second = Worker(gateway_settings, tmp_path / "second.log", env=env)
    second.start()  # finds the job's runner gone and queues it again
    try:
        done = wait_for(admin, job["id"], lambda j: j["status"] in TERMINAL, worker=second)
    finally:
        second.stop()
    assert done["status"] == "succeeded", (done["error"], second.tail())
    events = _events(admin, job["id"])
    resumed = [e for e in events if "resuming from step" in e["message"]]
    assert len(resumed) == 1
    starts = [e["data"] for e in events if (e["data"] or {}).get("event") == "start"]
    assert starts[0]["start_step"] == 0 and starts[-1]["start_step"] > 0
