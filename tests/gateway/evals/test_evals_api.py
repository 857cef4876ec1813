"""The admin API for evaluation runs, with a real Celery worker running them: start, progress,
cases and scores, the published-format export, resume; admins only."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis
from celery import Celery

from services.eval.config import DEFAULT_DATA_DIR
from services.gateway.app import create_app
from services.gateway.config import GatewaySettings
from services.store.tasks import broker_url
from tests.support.platform import make_key
from tests.support.servers import serve, stop_process
from tests.support.stand_in_llm import StandIn, stand_in
from tests.support.worker import worker_env

SCORES = "Proactivity: 5\nAccuracy: 4\nHelpfulness: 4\nLinguistic Quality: 5"


# A broker of these tests' own: no other worker (the fine-tune tests', another test process's)
# takes their tasks, and flushing it disturbs nobody.
EVAL_BROKER = "redis://127.0.0.1:6379/8"


@pytest.fixture(scope="module")
def eval_settings(gateway_settings: GatewaySettings) -> GatewaySettings:
    return gateway_settings.model_copy(update={"broker_url": EVAL_BROKER})


@pytest.fixture(scope="module")
def eval_gateway(eval_settings: GatewaySettings) -> Iterator[str]:
    with serve(create_app(eval_settings)) as url:
        yield url


@pytest.fixture
def eval_admin(eval_gateway: str, database_url: str) -> Iterator[httpx.Client]:
    headers = {"Authorization": f"Bearer {make_key(database_url, 'admin')}"}
    with httpx.Client(base_url=eval_gateway, headers=headers, timeout=60) as client:
        yield client


@pytest.fixture
def eval_worker(
    eval_settings: GatewaySettings, eval_gateway: str, tmp_path: Path
) -> Iterator[Path]:
    """A Celery worker that calls the model under test through this gateway; yields where it
    writes each run's JSONL."""
    redis.Redis.from_url(EVAL_BROKER).flushdb()
    results = tmp_path / "results"
    env = worker_env(eval_settings) | {
        "MEDCHAT_EVAL_GATEWAY_URL": eval_gateway,
        "MEDCHAT_EVAL_RESULTS_DIR": str(results),
        "MEDCHAT_EVAL_DATA_DIR": str(DEFAULT_DATA_DIR),
    }
    log = tmp_path / "worker.log"
    with log.open("ab") as out:
        proc = subprocess.Popen(
            [
                *(sys.executable, "-m", "celery", "-A", "services.worker.celery_app", "worker"),
                *("-Q", "validate", "--pool", "solo", "--loglevel", "INFO"),
                *("--hostname", f"eval-{uuid.uuid4().hex[:8]}@%h"),
            ],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    probe = Celery(broker=broker_url(EVAL_BROKER))
    try:
        deadline = time.monotonic() + 60
        while not probe.control.ping(timeout=0.5):
            assert proc.poll() is None, log.read_text()[-3000:]
            assert time.monotonic() < deadline, "the worker did not answer a ping"
    finally:
        probe.close()
    yield results
    stop_process(proc)


@pytest.fixture
def services() -> Iterator[tuple[StandIn, StandIn]]:
    with (
        stand_in("patient-sim", lambda body, n: "那我需要做什么检查？") as patient,
        stand_in("judge-gpt", lambda body, n: SCORES) as judge,
    ):
        yield patient, judge


def wait(admin: httpx.Client, run_id: str, timeout: float = 60) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        run: dict[str, Any] = admin.get(f"/api/admin/evals/{run_id}").json()
        if run["status"] in ("succeeded", "failed"):
            return run
        assert time.monotonic() < deadline, json.dumps(run)
        time.sleep(0.2)


def test_admins_only_and_validated(
    gateway_url: str, database_url: str, admin: httpx.Client
) -> None:
    key = make_key(database_url, "integrator")
    body = {"model": "m", "patient": "http://p:1/v1/p", "judge": "http://j:1/v1/j"}
    r = httpx.post(
        f"{gateway_url}/api/admin/evals", json=body, headers={"Authorization": f"Bearer {key}"}
    )
    assert r.status_code == 403
    bad = admin.post("/api/admin/evals", json={**body, "judge": "gpt-4"})
    assert bad.status_code == 422 and bad.json()["error"]["param"] == "judge"
    unknown = admin.post("/api/admin/evals", json={**body, "dataset": "medqa"})
    assert unknown.status_code == 422
    assert admin.get("/api/admin/evals/evalrun-nope").status_code == 404


def test_a_run_from_the_api(
    eval_admin: httpx.Client, eval_worker: Path, services: tuple[StandIn, StandIn]
) -> None:
    admin = eval_admin
    patient, judge = services
    r = admin.post(
        "/api/admin/evals",
        json={
            "model": "DISC-MedLLM",
            "dataset": "cmid",
            "patient": patient.spec,
            "judge": judge.spec,
            "turns": 2,
            "limit": 3,
            "concurrency": 2,
        },
    )
    assert r.status_code == 201, r.text
    created = r.json()
    assert created["status"] == "queued" and created["progress"] == {
        "total": None,
        "scored": 0,
        "failed": 0,
    }
    assert "key" not in json.dumps(created["config"])  # endpoints only, never secrets
    run = wait(admin, created["id"])
    assert run["status"] == "succeeded", run
    assert run["progress"] == {"total": 3, "scored": 3, "failed": 0}
    assert (run["summary"]["n"], run["summary"]["Accuracy"], run["summary"]["overall"]) == (
        3,
        4.0,
        4.5,
    )
    assert run["id"] in [r["id"] for r in admin.get("/api/admin/evals").json()["data"]]

    cases = admin.get(f"/api/admin/evals/{run['id']}/cases").json()["data"]
    assert len(cases) == 3
    for c in cases:
        assert c["status"] == "scored" and c["scores"]["Proactivity"] == 5
        # The engine emulator's answer, through the gateway, is the doctor's reply.
        assert [m["role"] for m in c["conversation"]] == ["patient", "doctor"] * 2
        assert c["conversation"][1]["content"] == "您好，建议多休息。"
    export = admin.get(f"/api/admin/evals/{run['id']}/results")
    assert export.headers["content-type"].startswith("application/x-ndjson")
    rows = [json.loads(line) for line in export.text.splitlines()]
    assert {r["scores"] for r in rows} == {SCORES} and {r["source"] for r in rows} == {"CMID"}
    written = (eval_worker / f"{run['id']}.jsonl").read_text(encoding="utf-8").splitlines()
    assert sorted(json.loads(line)["id"] for line in written) == sorted(r["id"] for r in rows)

    # A resume of a finished run redoes nothing: no new patient or judge request.
    seen = len(judge.requests), len(patient.requests)
    resumed = admin.post(f"/api/admin/evals/{run['id']}/resume")
    assert resumed.status_code == 200 and resumed.json()["status"] == "queued"
    again = wait(admin, run["id"])
    assert again["status"] == "succeeded" and again["progress"]["scored"] == 3
    assert (len(judge.requests), len(patient.requests)) == seen
