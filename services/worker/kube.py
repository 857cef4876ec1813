"""Training on Kubernetes: the manifest of a batch/v1 Job (one node) or a Kubeflow PyTorchJob
(several), and a small client of the API server that creates, follows and deletes it. The pod
runs the same trainer command the worker would, with the worker's volumes at the same
paths, so progress lines land where the worker reads them."""

from __future__ import annotations

import re
import ssl
from typing import Any, Literal

import httpx

from .config import WorkerSettings

Kind = Literal["k8s-job", "pytorchjob"]
_PATHS = {
    "k8s-job": "/apis/batch/v1/namespaces/{ns}/jobs",
    "pytorchjob": "/apis/kubeflow.org/v1/namespaces/{ns}/pytorchjobs",
}


def resource_name(job_id: str) -> str:
    """A DNS-1123 name (63 chars at most) from a job id."""
    return ("medchat-train-" + re.sub(r"[^a-z0-9-]", "-", job_id.lower()))[:63].rstrip("-")


def _volumes(spec: str) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    volumes, mounts = [], []
    for i, pair in enumerate(p for p in spec.split(",") if p.strip()):
        claim, _, path = pair.strip().partition(":")
        name = f"vol{i}"
        volumes.append({"name": name, "persistentVolumeClaim": {"claimName": claim}})
        mounts.append({"name": name, "mountPath": path})
    # NCCL and DataLoader workers need more shared memory than a container's default 64 MB.
    volumes.append({"name": "dshm", "emptyDir": {"medium": "Memory"}})
    mounts.append({"name": "dshm", "mountPath": "/dev/shm"})
    return volumes, mounts


def _pod(
    settings: WorkerSettings, command: list[str], container: str, labels: dict[str, str]
) -> dict[str, Any]:
    volumes, mounts = _volumes(settings.k8s_volumes)
    gpus = settings.k8s_gpus_per_node
    resources = {"limits": {"nvidia.com/gpu": gpus}} if gpus else {}
    return {
        "metadata": {"labels": labels},
        "spec": {
            "restartPolicy": "Never",
            "securityContext": {"runAsNonRoot": True, "runAsUser": 1000},
            "containers": [
                {
                    "name": container,
                    "image": settings.trainer_image,
                    "command": command,
                    "resources": resources,
                    "volumeMounts": mounts,
                    "env": [{"name": "PYTHONUNBUFFERED", "value": "1"}],
                }
            ],
            "volumes": volumes,
            **(
                {
                    "nodeSelector": {"nvidia.com/gpu.present": "true"},
                    "tolerations": [
                        {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}
                    ],
                }
                if gpus
                else {}
            ),
        },
    }


def manifest(
    kind: Kind, job_id: str, command: list[str], settings: WorkerSettings
) -> dict[str, Any]:
    name = resource_name(job_id)
    labels = {"app.kubernetes.io/part-of": "disc-medchat", "medchat/fine-tuning-job": name}
    metadata = {"name": name, "namespace": settings.k8s_namespace, "labels": labels}
    if kind == "k8s-job":
        return {
            "apiVersion": "batch/v1",
            "kind": "Job",
            "metadata": metadata,
            "spec": {
                "backoffLimit": 0,  # a failed run fails the job: the worker reports it
                "ttlSecondsAfterFinished": 3600,
                "template": _pod(settings, command, "trainer", labels),
            },
        }
    # Kubeflow's training operator sets PET_NNODES, PET_NODE_RANK, MASTER_ADDR...: torchrun
    # reads them, so one command serves every replica.
    pod = _pod(settings, command, "pytorch", labels)
    return {
        "apiVersion": "kubeflow.org/v1",
        "kind": "PyTorchJob",
        "metadata": metadata,
        "spec": {
            "runPolicy": {"backoffLimit": 0, "ttlSecondsAfterFinished": 3600},
            "pytorchReplicaSpecs": {
                "Master": {"replicas": 1, "restartPolicy": "Never", "template": pod},
                "Worker": {
                    "replicas": max(0, settings.k8s_nodes - 1),
                    "restartPolicy": "Never",
                    "template": pod,
                },
            },
        },
    }


def state_of(kind: Kind, resource: dict[str, Any]) -> tuple[str, str]:
    """("running" | "succeeded" | "failed", why) from a resource's status."""
    status = resource.get("status") or {}
    conditions = status.get("conditions") or []
    for c in conditions:
        if c.get("status") == "True" and c.get("type") in ("Failed", "FailureTarget"):
            return "failed", str(c.get("message") or c.get("reason") or "failed")
        if c.get("status") == "True" and c.get("type") in ("Complete", "Succeeded"):
            return "succeeded", ""
    if kind == "k8s-job" and status.get("failed"):
        return "failed", "the training pod failed"
    if kind == "k8s-job" and status.get("succeeded"):
        return "succeeded", ""
    return "running", ""


class KubeApi:
    """Just the calls training needs, with the pod's service-account token."""

    def __init__(self, settings: WorkerSettings):
        token = settings.k8s_token_path.read_text().strip()
        verify: ssl.SSLContext | bool = True
        if settings.k8s_ca_path is not None and settings.k8s_ca_path.exists():
            verify = ssl.create_default_context(cafile=str(settings.k8s_ca_path))
        self.namespace = settings.k8s_namespace
        self.client = httpx.AsyncClient(
            base_url=settings.k8s_api_url,
            headers={"Authorization": f"Bearer {token}"},
            verify=verify,
            timeout=30,
        )

    def _path(self, kind: Kind, name: str | None = None) -> str:
        path = _PATHS[kind].format(ns=self.namespace)
        return f"{path}/{name}" if name else path

    async def create(self, kind: Kind, body: dict[str, Any]) -> None:
        r = await self.client.post(self._path(kind), json=body)
        if r.status_code >= 400:
            raise RuntimeError(f"Kubernetes refused the training {body['kind']}: {r.text[:500]}")

    async def state(self, kind: Kind, name: str) -> tuple[str, str]:
        r = await self.client.get(self._path(kind, name))
        if r.status_code == 404:
            return "failed", f"{name} disappeared from the cluster"
        r.raise_for_status()
        return state_of(kind, r.json())

    async def delete(self, kind: Kind, name: str) -> None:
        # Foreground: the pods go too (a Job's default orphans them).
        await self.client.request(
            "DELETE", self._path(kind, name), json={"propagationPolicy": "Foreground"}
        )

    async def close(self) -> None:
        await self.client.aclose()
