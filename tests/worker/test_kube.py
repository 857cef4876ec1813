"""The training manifests the worker submits on Kubernetes, checked against the Kubernetes
schema (the PyTorchJob's pod templates as Pods: its CRD schema does not ship here)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import kubernetes_validate  # type: ignore[import-untyped]  # ships no type information
import pytest

from services.worker import launch
from services.worker.config import WorkerSettings
from services.worker.kube import manifest, resource_name, state_of

KUBERNETES_VERSION = "1.32"
COMMAND = launch.command("deepspeed", Path("/data/jobs/x/train_args.json"), gpus=4)


def settings(**kw: Any) -> WorkerSettings:
    return WorkerSettings(k8s_namespace="medchat", trainer_image="disc-medchat/worker:1.0", **kw)


def test_a_training_job_is_a_valid_batch_job() -> None:
    job = manifest("k8s-job", "ftjob-0123456789abcdef01234567", COMMAND, settings())
    kubernetes_validate.validate(job, KUBERNETES_VERSION, strict=True)
    pod = job["spec"]["template"]["spec"]
    container = pod["containers"][0]
    assert container["command"][:3] == ["deepspeed", "--num_gpus=4", "--module"]
    assert container["resources"]["limits"]["nvidia.com/gpu"] == 1
    assert {m["mountPath"] for m in container["volumeMounts"]} == {
        "/data",
        "/data/models/disc-medllm",
        "/dev/shm",
    }
    assert job["spec"]["backoffLimit"] == 0 and pod["restartPolicy"] == "Never"
    assert job["metadata"]["name"] == "medchat-train-ftjob-0123456789abcdef01234567"


def test_a_pytorchjob_has_a_master_and_workers_with_valid_pods() -> None:
    job = manifest(
        "pytorchjob", "ftjob-x", ["torchrun", "-m", "trainer.train"], settings(k8s_nodes=3)
    )
    assert (job["apiVersion"], job["kind"]) == ("kubeflow.org/v1", "PyTorchJob")
    replicas = job["spec"]["pytorchReplicaSpecs"]
    assert replicas["Master"]["replicas"] == 1 and replicas["Worker"]["replicas"] == 2
    for spec in replicas.values():
        template = spec["template"]
        assert template["spec"]["containers"][0]["name"] == "pytorch"  # the operator's rule
        pod = {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": "p"},
            "spec": template["spec"],
        }
        kubernetes_validate.validate(pod, KUBERNETES_VERSION, strict=True)


def test_a_cpu_cluster_gets_no_gpu_requests() -> None:
    job = manifest(
        "k8s-job", "ftjob-x", ["python", "-m", "trainer.train"], settings(k8s_gpus_per_node=0)
    )
    pod = job["spec"]["template"]["spec"]
    assert pod["containers"][0]["resources"] == {} and "nodeSelector" not in pod
    kubernetes_validate.validate(job, KUBERNETES_VERSION, strict=True)


@pytest.mark.parametrize(
    ("kind", "status", "state"),
    [
        ("k8s-job", {"active": 1}, "running"),
        (
            "k8s-job",
            {"succeeded": 1, "conditions": [{"type": "Complete", "status": "True"}]},
            "succeeded",
        ),
        ("k8s-job", {"failed": 1}, "failed"),
        ("pytorchjob", {"conditions": [{"type": "Running", "status": "True"}]}, "running"),
        ("pytorchjob", {"conditions": [{"type": "Succeeded", "status": "True"}]}, "succeeded"),
        (
            "pytorchjob",
            {"conditions": [{"type": "Failed", "status": "True", "message": "OOM"}]},
            "failed",
        ),
    ],
)
def test_status_is_read_from_the_resource(kind: Any, status: dict[str, Any], state: str) -> None:
    assert state_of(kind, {"status": status})[0] == state


def test_names_are_dns_labels() -> None:
    name = resource_name("ftjob-ABC_def" + "x" * 80)
    assert len(name) <= 63 and name == name.lower() and "_" not in name
