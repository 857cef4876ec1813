"""Settings every service shares (prefix MEDCHAT_): where the databases and the stores are.
Each service extends this with its own class; nothing else reads the environment."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic_settings import BaseSettings, SettingsConfigDict


class PlatformSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="MEDCHAT_", env_file=".env", extra="ignore")

    environment: Literal["dev", "test", "production"] = "dev"
    database_url: str = "postgresql+asyncpg://postgres@127.0.0.1:5432/medchat"
    redis_url: str = "redis://127.0.0.1:6379/0"
    broker_url: str | None = None  # the Celery broker; default: redis_url
    # Uploaded files (fine-tune datasets) and the model registry (published fine-tunes);
    # the gateway and the worker must see the same directories (a shared volume).
    files_dir: Path = Path("var/medchat/files")
    models_dir: Path = Path("var/medchat/models")
    # The conversation format of the served model, and of base models whose registry entry
    # does not name one.
    profile: str = "disc-medllm"
    # Retention (None: keep): conversations untouched for this many days are deleted; guests'
    # conversations (and the guest) this many hours after their last activity; uploaded
    # files after this many days. Enforced by the worker every retention_interval_s.
    retention_days: int | None = None
    guest_retention_hours: int | None = None
    file_retention_days: int | None = None
    retention_interval_s: int = 3600
    # A fine-tune whose worker died resumes from its last checkpoint (else it fails).
    resume_interrupted_jobs: bool = False

    @property
    def celery_broker(self) -> str:
        return self.broker_url or self.redis_url

    @property
    def is_production(self) -> bool:
        return self.environment == "production"
