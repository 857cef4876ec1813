"""Worker settings (prefix MEDCHAT_), on top of the platform's shared ones."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from services.core.settings import PlatformSettings


class WorkerSettings(PlatformSettings):
    # How the trainer is launched: "auto" picks deepspeed when GPUs and DeepSpeed are
    # present, torchrun on GPUs without it, plain python on a CPU.
    trainer_launcher: Literal["auto", "deepspeed", "torchrun", "python"] = "auto"
    deepspeed_config: Path = Path("trainer/configs/ds_z3_config.json")  # for "deepspeed"
    # A task taken but not acknowledged (worker killed) is handed out again after this long.
    # Longer than any job: a job is acknowledged only when it ends (acks_late), and the
    # per-job Postgres lock keeps a redelivered job from running twice at once.
    visibility_timeout_s: int = 7 * 24 * 3600

    # Where the trainer runs: a subprocess of this worker, or (on Kubernetes) a batch/v1 Job
    # for one node or a Kubeflow PyTorchJob for several, which the worker creates and follows.
    trainer_backend: Literal["subprocess", "k8s-job", "pytorchjob"] = "subprocess"
    k8s_api_url: str = "https://kubernetes.default.svc"
    k8s_namespace: str = "medchat"
    # The pod's service-account credentials (in-cluster defaults).
    k8s_token_path: Path = Path("/var/run/secrets/kubernetes.io/serviceaccount/token")
    k8s_ca_path: Path | None = Path("/var/run/secrets/kubernetes.io/serviceaccount/ca.crt")
    trainer_image: str = "disc-medchat/worker"
    # PVC claim:mount pairs, mounted in training pods at the worker's own paths (k8s/base).
    k8s_volumes: str = "medchat-data:/data,medchat-models:/data/models/disc-medllm"
    k8s_gpus_per_node: int = 1
    k8s_nodes: int = 2  # a PyTorchJob's node count (master + workers)

    # Webhooks (a hospital system hears that a case opened): how long one POST may take, how
    # many attempts a delivery gets, and the wait before the second attempt (doubled after
    # each failure, up to the cap). The defaults spread 8 attempts over about an hour.
    webhook_timeout_s: float = 10.0
    webhook_max_attempts: int = 8
    webhook_backoff_s: float = 30.0
    webhook_backoff_max_s: float = 3600.0
    # Deliveries whose task was never sent are queued again by a periodic sweep.
    webhook_sweep_after_s: float = 120.0
    webhook_sweep_interval_s: float = 300.0


@lru_cache
def get_worker_settings() -> WorkerSettings:
    return WorkerSettings()
