"""The worker's Kubernetes backend for real up to the API server: it submits the training Job,
follows it, forwards the pod's progress from the shared volume and publishes the model; a
cancel deletes the Job. The cluster is emulated (tests/support/kube_emulator.py) and every
object it returned is checked against the Kubernetes schema."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import kubernetes_validate  # type: ignore[import-untyped]  # ships no type information
import pytest
import redis

from services.gateway.config import GatewaySettings
from tests.support.kube_emulator import Cluster, kube_emulator
from tests.support.worker import TERMINAL, Worker, create, wait_for

pytest.importorskip("torch", reason="training needs torch (the serve or train extra)")


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Cluster]:
    with kube_emulator(tmp_path) as c:
        yield c


@pytest.fixture
def k8s_worker(
    gateway_settings: GatewaySettings, tmp_path: Path, cluster: Cluster
) -> Iterator[Worker]:
    redis.Redis.from_url(gateway_settings.celery_broker).flushdb()
    token = tmp_path / "token"
    token.write_text(cluster.token)
    w = Worker(
        gateway_settings,
        tmp_path / "worker.log",
        env={
            "MEDCHAT_TRAINER_BACKEND": "k8s-job",
            "MEDCHAT_K8S_API_URL": cluster.url,
            "MEDCHAT_K8S_TOKEN_PATH": str(token),
            "MEDCHAT_K8S_CA_PATH": str(tmp_path / "no-ca.crt"),
            "MEDCHAT_K8S_GPUS_PER_NODE": "0",
        },
    )
    w.start()
    yield w
    w.stop()


def test_a_job_trains_as_a_kubernetes_job(
    admin: httpx.Client,
    base_model: str,
    k8s_worker: Worker,
    cluster: Cluster,
    tiny_file: tuple[str, list[tuple[str, str]]],
) -> None:
    job = create(admin, base_model, tiny_file[0], n_epochs=4)
    done = wait_for(admin, job["id"], lambda j: j["status"] in TERMINAL, worker=k8s_worker)
    assert done["status"] == "succeeded", (done, k8s_worker.tail())
    assert done["fine_tuned_model"] == f"ft:{base_model}:tiny:{job['id']}"
    [submitted] = cluster.created
    assert submitted["kind"] == "Job"
    assert submitted["spec"]["template"]["spec"]["containers"][0]["command"][:3] == [
        "python",
        "-m",
        "trainer.train",
    ]
    for obj in cluster.served:
        kubernetes_validate.validate(obj, "1.32", strict=True)
    events = admin.get(f"/v1/fine_tuning/jobs/{job['id']}/events", params={"limit": 200}).json()
    messages = [e["message"] for e in events["data"]]
    assert f"Created Job {submitted['metadata']['name']}" in messages
    assert any(m.startswith("Step ") for m in messages)  # progress came over the volume


def test_cancel_deletes_the_kubernetes_job(
    admin: httpx.Client,
    base_model: str,
    k8s_worker: Worker,
    cluster: Cluster,
    tiny_file: tuple[str, list[tuple[str, str]]],
) -> None:
    job = create(admin, base_model, tiny_file[0], n_epochs=50, batch_size=1)
    wait_for(admin, job["id"], lambda j: j["status"] == "running", worker=k8s_worker)
    wait_for(admin, job["id"], lambda _: bool(cluster.created), worker=k8s_worker)
    assert admin.post(f"/v1/fine_tuning/jobs/{job['id']}/cancel").status_code == 200
    done = wait_for(admin, job["id"], lambda j: j["status"] in TERMINAL, worker=k8s_worker)
    assert done["status"] == "cancelled"
    name = cluster.created[0]["metadata"]["name"]
    assert name in cluster.deleted
