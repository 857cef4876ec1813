"""A real Celery worker (its own process, the gateway's database, store and broker) and a
tiny base model in the model registry."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis
from celery import Celery

from services.gateway.config import GatewaySettings
from services.store.tasks import broker_url
from tests.support.datasets import upload
from tests.support.servers import stop_process
from tests.support.tiny_model import build_tiny_marker_model
from tests.support.tokenizers import SFT_EXAMPLES

BASE_MODEL = "tiny-disc"
TERMINAL = ("succeeded", "failed", "cancelled")


@pytest.fixture(scope="session")
def base_model(gateway_settings: GatewaySettings, hf_marker_dir: Path) -> str:
    """A 2-layer random Llama with the Baichuan-shaped tokenizer, registered as `tiny-disc`."""
    target = gateway_settings.models_dir / BASE_MODEL
    if not (target / "config.json").exists():
        build_tiny_marker_model(target, hf_marker_dir)
    return BASE_MODEL


def worker_env(settings: GatewaySettings) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MEDCHAT_")}
    env.update(
        MEDCHAT_DATABASE_URL=settings.database_url,
        MEDCHAT_REDIS_URL=settings.redis_url,
        MEDCHAT_BROKER_URL=settings.celery_broker,
        MEDCHAT_FILES_DIR=str(settings.files_dir),
        MEDCHAT_MODELS_DIR=str(settings.models_dir),
        MEDCHAT_TRAINER_LAUNCHER="python",
        MEDCHAT_FILES_BACKEND=settings.files_backend,
        MEDCHAT_S3_PREFIX=settings.s3_prefix,
    )
    optional = {
        "MEDCHAT_S3_BUCKET": settings.s3_bucket,
        "MEDCHAT_S3_ENDPOINT_URL": settings.s3_endpoint_url,
        "MEDCHAT_S3_REGION": settings.s3_region,
    }
    env.update({name: value for name, value in optional.items() if value is not None})
    return env


class Worker:
    """A Celery worker process, started and stopped (or killed) by the test."""

    def __init__(self, settings: GatewaySettings, log: Path, env: dict[str, str] | None = None):
        self.settings = settings
        self.log = log
        self.env = env or {}
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        name = f"test-{uuid.uuid4().hex[:8]}@%h"
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                [
                    *(sys.executable, "-m", "celery", "-A", "services.worker.celery_app"),
                    *("worker", "-Q", "validate,train", "--pool", "solo", "--hostname", name),
                ],
                env=worker_env(self.settings) | self.env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        probe = Celery(broker=broker_url(self.settings.celery_broker))
        deadline = time.monotonic() + 60
        try:
            while not probe.control.ping(timeout=0.5):
                assert self.proc.poll() is None, self.tail()
                assert time.monotonic() < deadline, "the worker did not answer a ping"
        finally:
            probe.close()

    def stop(self) -> None:
        if self.proc is not None:
            stop_process(self.proc)
            self.proc = None

    def tail(self) -> str:
        return self.log.read_text(errors="replace")[-4000:]


@pytest.fixture
def worker(gateway_settings: GatewaySettings, tmp_path: Path) -> Iterator[Worker]:
    # Tasks left in this process's queues by earlier tests (cancelled jobs) are dropped.
    redis.Redis.from_url(gateway_settings.celery_broker).flushdb()
    w = Worker(gateway_settings, tmp_path / "worker.log")
    w.start()
    yield w
    w.stop()


def wait_for(
    admin: httpx.Client,
    job_id: str,
    done: Callable[[dict[str, Any]], bool],
    timeout: float = 240,
    worker: Worker | None = None,
) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        job: dict[str, Any] = admin.get(f"/v1/fine_tuning/jobs/{job_id}").json()
        if done(job):
            return job
        assert time.monotonic() < deadline, (job, worker.tail() if worker else "")
        time.sleep(0.3)


# Learned by a random 2-layer model in a few seconds: short, distinct questions and answers
# taken from DISC-MedLLM's shipped conversations (first question, the answer's opening).
N_ROWS = 4


def tiny_dataset() -> tuple[bytes, list[tuple[str, str]]]:
    pairs = []
    for line in SFT_EXAMPLES.read_text(encoding="utf-8").splitlines():
        row = json.loads(line)
        turns = row.get("conversation") or row.get("messages") or []
        if len(turns) >= 2 and turns[0]["role"] == "user" and turns[1]["role"] == "assistant":
            pairs.append((turns[0]["content"][:16], turns[1]["content"][:10]))
        if len(pairs) == N_ROWS:
            break
    data = b"".join(
        json.dumps(
            {"conversation": [{"role": "user", "content": q}, {"role": "assistant", "content": a}]},
            ensure_ascii=False,
        ).encode()
        + b"\n"
        for q, a in pairs
    )
    return data, pairs


def create(admin: httpx.Client, base_model: str, file_id: str, **hp: Any) -> dict[str, Any]:
    hyper = {"n_epochs": 40, "batch_size": 2, "learning_rate_multiplier": 500} | hp
    r = admin.post(
        "/v1/fine_tuning/jobs",
        json={
            "model": base_model,
            "training_file": file_id,
            "suffix": "tiny",
            "seed": 1,
            "method": {"type": "supervised", "supervised": {"hyperparameters": hyper}},
            "max_seq_length": 128,
        },
    )
    assert r.status_code == 200, r.text
    job: dict[str, Any] = r.json()
    return job


@pytest.fixture
def tiny_file(admin: httpx.Client) -> tuple[str, list[tuple[str, str]]]:
    data, pairs = tiny_dataset()
    r = upload(admin, data, "tiny.jsonl")
    assert r.status_code == 200, r.text
    return str(r.json()["id"]), pairs
