"""Fine-tuning jobs through the API with a real Celery worker: validation in the worker with
the base model's tokenizer, statuses, events (pages and live), cancel, roles, the SDK."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import openai
import pytest
from pydantic import TypeAdapter

from services.gateway.finetune.events import JobStreamEvent
from tests.support.datasets import GOOD_ROW, LONG_ROW, jsonl, upload
from tests.support.platform import Patient, make_key
from tests.support.tokenizers import SFT_EXAMPLES
from tests.support.worker import TERMINAL, Worker, wait_for


def create(admin: httpx.Client, **body: object) -> httpx.Response:
    return admin.post("/v1/fine_tuning/jobs", json=body)


@pytest.fixture
def training_file(admin: httpx.Client) -> str:
    r = upload(admin, jsonl(GOOD_ROW, GOOD_ROW, GOOD_ROW))
    assert r.status_code == 200, r.text
    return str(r.json()["id"])


def test_bad_requests_are_refused_with_the_parameter(
    admin: httpx.Client, base_model: str, training_file: str
) -> None:
    cases = [
        ({"model": "no-such-model", "training_file": training_file}, 400, "model"),
        ({"model": "../../etc", "training_file": training_file}, 400, "model"),
        (
            {"model": base_model, "training_file": "file-000000000000000000000000"},
            400,
            "training_file",
        ),
        (
            {
                "model": base_model,
                "training_file": training_file,
                "method": {
                    "type": "supervised",
                    "supervised": {"hyperparameters": {"n_epochs": 0}},
                },
            },
            400,
            "hyperparameters",
        ),
        ({"model": base_model, "training_file": training_file, "suffix": "a/b"}, 422, "suffix"),
    ]
    for body, status, param in cases:
        r = admin.post("/v1/fine_tuning/jobs", json=body)
        assert r.status_code == status, (body, r.text)
        assert param in (r.json()["error"]["param"] or ""), r.text


def test_cancel_before_a_worker_takes_it(
    admin: httpx.Client, base_model: str, training_file: str
) -> None:
    job = create(admin, model=base_model, training_file=training_file).json()
    assert job["status"] == "validating_files" and job["object"] == "fine_tuning.job"
    cancelled = admin.post(f"/v1/fine_tuning/jobs/{job['id']}/cancel").json()
    assert cancelled["status"] == "cancelled" and cancelled["finished_at"]
    again = admin.post(f"/v1/fine_tuning/jobs/{job['id']}/cancel")
    assert again.status_code == 400 and again.json()["error"]["code"] == "job_not_active"
    messages = [
        e["message"] for e in admin.get(f"/v1/fine_tuning/jobs/{job['id']}/events").json()["data"]
    ]
    assert messages[0] == "The job was cancelled" and messages[-1].startswith(
        "Created fine-tuning job"
    )


def test_a_file_too_long_for_max_seq_length_fails_validation_by_line(
    admin: httpx.Client, base_model: str, worker: Worker
) -> None:
    file_id = upload(admin, jsonl(GOOD_ROW, LONG_ROW, GOOD_ROW)).json()["id"]
    job = create(admin, model=base_model, training_file=file_id, max_seq_length=24).json()
    done = wait_for(admin, job["id"], lambda j: j["status"] in TERMINAL, worker=worker)
    assert done["status"] == "failed", done
    assert done["error"]["code"] == "invalid_file" and done["error"]["param"] == "training_file"
    assert "line 2" in done["error"]["message"] and "too_long" in done["error"]["message"]
    events = admin.get(f"/v1/fine_tuning/jobs/{job['id']}/events", params={"limit": 100}).json()
    lines = [e for e in events["data"] if e["level"] == "error" and e["data"]]
    assert [(e["data"]["line"], e["data"]["code"]) for e in lines] == [(2, "too_long")]

    # The live stream replays every event, oldest first, and ends with the final status.
    with admin.stream(
        "GET", f"/v1/fine_tuning/jobs/{job['id']}/events", params={"stream": True}
    ) as r:
        body = r.read().decode()
    streamed = [json.loads(x[6:]) for x in body.splitlines() if x.startswith("data: ")]
    assert [e["id"] for e in streamed[:-1]] == [e["id"] for e in reversed(events["data"])]
    assert streamed[-1] == {"status": "failed"}
    # Every event is what the OpenAPI documents (finetune/events.py).
    names = [x.removeprefix("event: ") for x in body.splitlines() if x.startswith("event: ")]
    for name, data in zip(names, streamed, strict=True):
        TypeAdapter(JobStreamEvent).validate_python({"event": name, "data": data})


def test_max_seq_length_beyond_the_model_fails_before_training(
    admin: httpx.Client, base_model: str, training_file: str, worker: Worker
) -> None:
    job = create(
        admin, model=base_model, training_file=training_file, max_seq_length=1 << 19
    ).json()
    done = wait_for(admin, job["id"], lambda j: j["status"] in TERMINAL, worker=worker)
    assert done["status"] == "failed" and done["error"]["param"] == "max_seq_length", done


def test_only_admins_reach_fine_tuning(
    gateway_url: str,
    database_url: str,
    new_guest: Callable[[], Patient],
    admin: httpx.Client,
    base_model: str,
    training_file: str,
) -> None:
    job_id = create(admin, model=base_model, training_file=training_file).json()["id"]
    integrator = httpx.Client(
        base_url=gateway_url,
        headers={"Authorization": f"Bearer {make_key(database_url, 'integrator')}"},
    )
    patient = new_guest()
    routes = [
        ("POST", "/v1/fine_tuning/jobs"),
        ("GET", "/v1/fine_tuning/jobs"),
        ("GET", f"/v1/fine_tuning/jobs/{job_id}"),
        ("GET", f"/v1/fine_tuning/jobs/{job_id}/events"),
        ("GET", f"/v1/fine_tuning/jobs/{job_id}/checkpoints"),
        ("POST", f"/v1/fine_tuning/jobs/{job_id}/cancel"),
    ]
    body = {"model": base_model, "training_file": training_file}
    for method, path in routes:
        sent = body if method == "POST" else None
        assert integrator.request(method, path, json=sent).status_code == 403, path
        headers = {"X-CSRF-Token": patient.csrf}
        r = patient.client.request(method, path, headers=headers, json=sent)
        assert r.status_code == 403, path
        assert httpx.request(method, gateway_url + path, json=sent).status_code == 401, path
    assert admin.get(f"/v1/fine_tuning/jobs/{job_id}").json()["status"] == "validating_files"
    admin.post(f"/v1/fine_tuning/jobs/{job_id}/cancel")
    integrator.close()


def test_openai_sdk_fine_tuning(
    gateway_url: str, database_url: str, base_model: str, tmp_path: Path
) -> None:
    client = openai.OpenAI(base_url=f"{gateway_url}/v1", api_key=make_key(database_url, "admin"))
    path = tmp_path / "train.jsonl"
    path.write_bytes(jsonl(GOOD_ROW, GOOD_ROW))
    with path.open("rb") as fh:
        f = client.files.create(file=fh, purpose="fine-tune")
    job = client.fine_tuning.jobs.create(
        model=base_model,
        training_file=f.id,
        suffix="sdk",
        seed=7,
        method={"type": "supervised", "supervised": {"hyperparameters": {"n_epochs": 2}}},
        extra_body={"max_seq_length": 256, "lora": True},
    )
    assert job.status == "validating_files" and job.seed == 7
    assert job.hyperparameters.n_epochs == 2
    assert client.fine_tuning.jobs.retrieve(job.id).id == job.id
    assert job.id in [j.id for j in client.fine_tuning.jobs.list(limit=50)]
    events = client.fine_tuning.jobs.list_events(job.id)
    assert events.data[-1].message.startswith("Created fine-tuning job")
    assert client.fine_tuning.jobs.cancel(job.id).status == "cancelled"
    with pytest.raises(openai.BadRequestError):
        client.fine_tuning.jobs.create(model="nope", training_file=f.id)


def test_an_upload_gets_a_token_report_from_the_worker(admin: httpx.Client, worker: Worker) -> None:
    data = SFT_EXAMPLES.read_bytes()
    f = upload(admin, data, "sft_examples.jsonl").json()
    assert f["report"] is None  # computed by the worker, after the upload answered
    deadline = time.monotonic() + 120
    while (report := admin.get(f"/v1/files/{f['id']}").json()["report"]) is None:
        assert time.monotonic() < deadline, worker.tail()
        time.sleep(0.3)
    assert report["ok"] and report["rows"] == len(data.splitlines())
    assert report["path"] == "sft_examples.jsonl"  # the name shown, not where the store keeps it
    rows = report["tokens"]["row"]
    assert (
        rows["count"] == report["valid_rows"] and sum(rows["histogram"]["counts"]) == rows["count"]
    )
    assert report["tokens"]["trained_tokens"] > 0
