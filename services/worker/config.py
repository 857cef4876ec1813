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


@lru_cache
def get_worker_settings() -> WorkerSettings:
    return WorkerSettings()
