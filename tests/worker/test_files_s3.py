"""The worker with files in an S3-compatible bucket (moto's server): the token report, a job's
validation and its training read the files from the bucket, through local copies that are
removed once used."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import redis

from services.gateway.config import GatewaySettings
from tests.support.datasets import GOOD_ROW, LONG_ROW, jsonl, upload
from tests.support.platform import make_key
from tests.support.tokenizers import SFT_EXAMPLES
from tests.support.worker import TERMINAL, Worker, create, tiny_dataset, wait_for


@pytest.fixture
def s3_admin(s3_gateway_url: str, database_url: str) -> Iterator[httpx.Client]:
    headers = {"Authorization": f"Bearer {make_key(database_url, 'admin')}"}
    with httpx.Client(base_url=s3_gateway_url, headers=headers, timeout=60) as client:
        yield client


@pytest.fixture
def s3_worker(s3_gateway_settings: GatewaySettings, tmp_path: Path) -> Iterator[Worker]:
    redis.Redis.from_url(s3_gateway_settings.celery_broker).flushdb()
    w = Worker(s3_gateway_settings, tmp_path / "worker.log")
    w.start()
    yield w
    w.stop()


def local_copies(settings: GatewaySettings) -> list[Path]:
    return sorted((settings.files_dir / "cache").glob("*"))


def test_the_report_and_validation_read_files_from_the_bucket(
    s3_admin: httpx.Client,
    s3_gateway_settings: GatewaySettings,
    base_model: str,
    s3_worker: Worker,
) -> None:
    data = SFT_EXAMPLES.read_bytes()
    f = upload(s3_admin, data, "sft_examples.jsonl").json()
    deadline = time.monotonic() + 120
    while (report := s3_admin.get(f"/v1/files/{f['id']}").json()["report"]) is None:
        assert time.monotonic() < deadline, s3_worker.tail()
        time.sleep(0.3)
    assert report["ok"] and report["rows"] == len(data.splitlines())
    assert report["path"] == "sft_examples.jsonl"

    bad = upload(s3_admin, jsonl(GOOD_ROW, LONG_ROW, GOOD_ROW)).json()["id"]
    body = {"model": base_model, "training_file": bad, "max_seq_length": 24}
    job = s3_admin.post("/v1/fine_tuning/jobs", json=body).json()
    done = wait_for(s3_admin, job["id"], lambda j: j["status"] in TERMINAL, worker=s3_worker)
    assert done["status"] == "failed", done
    assert "line 2" in done["error"]["message"] and "too_long" in done["error"]["message"]
    assert local_copies(s3_gateway_settings) == []


def test_a_job_trains_on_a_file_from_the_bucket(
    s3_admin: httpx.Client,
    s3_gateway_settings: GatewaySettings,
    base_model: str,
    s3_worker: Worker,
) -> None:
    pytest.importorskip("torch", reason="training needs torch (the serve or train extra)")
    data, _ = tiny_dataset()
    file_id = upload(s3_admin, data, "tiny.jsonl").json()["id"]
    job = create(s3_admin, base_model, file_id, n_epochs=2)
    done = wait_for(s3_admin, job["id"], lambda j: j["status"] in TERMINAL, worker=s3_worker)
    assert done["status"] == "succeeded", (done, s3_worker.tail())
    assert local_copies(s3_gateway_settings) == []
