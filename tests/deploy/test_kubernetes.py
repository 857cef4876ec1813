"""k8s/: every overlay renders with kustomize and each resource passes the Kubernetes
schema (kubernetes-validate, strict: unknown fields are errors); then what the issue asks
of the resources."""

from __future__ import annotations

from typing import Any

import kubernetes_validate  # type: ignore[import-untyped]  # ships no type information
import pytest

from .manifests import OVERLAYS, kustomize_command, render

KUBERNETES_VERSION = "1.32"

pytestmark = pytest.mark.skipif(
    kustomize_command() is None, reason="neither kustomize nor kubectl is on the PATH"
)


def find(docs: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    (doc,) = [d for d in docs if d["kind"] == kind and d["metadata"]["name"] == name]
    return doc


def pod(docs: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    spec: dict[str, Any] = find(docs, kind, name)["spec"]["template"]["spec"]
    return spec


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_overlay_renders_and_validates(overlay: str) -> None:
    docs = render(overlay)
    assert len(docs) > 20
    for doc in docs:
        kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)
        assert doc["kind"] == "Namespace" or doc["metadata"]["namespace"] == "medchat"


def test_the_validator_rejects_an_unknown_field() -> None:
    deployment = find(render("dev"), "Deployment", "gateway")
    broken = {**deployment, "spec": {**deployment["spec"], "replica": 2}}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, KUBERNETES_VERSION, strict=True)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_gateway_is_replicated_probed_and_bounded(overlay: str) -> None:
    docs = render(overlay)
    assert find(docs, "Deployment", "gateway")["spec"]["replicas"] >= 2
    assert find(docs, "HorizontalPodAutoscaler", "gateway")["spec"]["minReplicas"] >= 2
    assert find(docs, "PodDisruptionBudget", "gateway")["spec"]["minAvailable"] >= 1
    (container,) = pod(docs, "Deployment", "gateway")["containers"]
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert {"requests", "limits"} <= set(container["resources"])


def test_prod_gpu_engine_and_worker_run_on_gpu_nodes() -> None:
    docs = render("prod-gpu")
    assert find(docs, "Deployment", "engine")["spec"]["replicas"] >= 2
    for name in ("engine", "worker"):
        spec = pod(docs, "Deployment", name)
        assert spec["nodeSelector"] == {"nvidia.com/gpu.present": "true"}
        assert spec["tolerations"][0]["key"] == "nvidia.com/gpu"
        assert spec["containers"][0]["resources"]["limits"]["nvidia.com/gpu"] == 1
    engine = pod(docs, "Deployment", "engine")["containers"][0]
    # vllm/vllm-openai plus the Baichuan plugin (ALiBi for Baichuan-13B)
    assert engine["image"].startswith("disc-medchat/engine-vllm:")
    # Managed databases: no in-cluster ones, and the Secret comes from outside.
    assert not [d for d in docs if d["kind"] == "StatefulSet"]
    assert not [d for d in docs if d["kind"] == "Secret"]


def test_dev_runs_databases_in_cluster_and_the_engine_on_the_cpu() -> None:
    docs = render("dev")
    assert {d["metadata"]["name"] for d in docs if d["kind"] == "StatefulSet"} == {
        "postgres",
        "redis",
    }
    for name in ("engine", "worker"):
        spec = pod(docs, "Deployment", name)
        assert "nvidia.com/gpu" not in spec["containers"][0]["resources"].get("limits", {})
        assert not spec.get("nodeSelector") and not spec.get("tolerations")
    secret_names = {d["metadata"]["name"] for d in docs if d["kind"] == "Secret"}
    assert any(name.startswith("medchat-secrets-") for name in secret_names)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_only_the_gateway_reaches_the_engine_and_the_databases(overlay: str) -> None:
    docs = render(overlay)
    policies = {d["metadata"]["name"]: d["spec"] for d in docs if d["kind"] == "NetworkPolicy"}
    assert policies["default-deny-ingress"] == {"podSelector": {}, "policyTypes": ["Ingress"]}
    engine = policies["engine-from-gateway-only"]
    assert engine["ingress"] == [
        {
            "from": [
                {"podSelector": {"matchLabels": {"app.kubernetes.io/name": "medchat-gateway"}}}
            ],
            "ports": [{"port": 8080}],
        }
    ]
    if overlay == "dev":
        (rule,) = policies["databases-from-platform-only"]["ingress"]
        allowed = {p["podSelector"]["matchLabels"]["app.kubernetes.io/name"] for p in rule["from"]}
        assert allowed == {"medchat-gateway", "medchat-worker", "medchat-migrate", "medchat-beat"}


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_worker_may_launch_training_jobs(overlay: str) -> None:
    docs = render(overlay)
    rules = find(docs, "Role", "medchat-training-jobs")["rules"]
    granted = {(g, r) for rule in rules for g in rule["apiGroups"] for r in rule["resources"]}
    assert {("batch", "jobs"), ("kubeflow.org", "pytorchjobs")} <= granted
    binding = find(docs, "RoleBinding", "medchat-worker-training-jobs")
    assert binding["subjects"][0]["name"] == pod(docs, "Deployment", "worker")["serviceAccountName"]
    assert pod(docs, "Deployment", "gateway")["automountServiceAccountToken"] is False


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_ingress_keeps_streams_open_and_unbuffered(overlay: str) -> None:
    ingress = find(render(overlay), "Ingress", "medchat")
    notes = ingress["metadata"]["annotations"]
    assert notes["nginx.ingress.kubernetes.io/proxy-buffering"] == "off"
    assert int(notes["nginx.ingress.kubernetes.io/proxy-read-timeout"]) > 600
    paths = {
        p["path"]: p["backend"]["service"]["name"]
        for p in ingress["spec"]["rules"][0]["http"]["paths"]
    }
    assert paths == {"/api": "gateway", "/v1": "gateway", "/": "frontend"}
    job = find(render(overlay), "Job", "migrate")
    assert job["spec"]["template"]["spec"]["containers"][0]["command"] == [
        "medchat",
        "db",
        "upgrade",
    ]
