"""Settings every service shares (prefix MEDCHAT_): where the databases and the stores are.
Each service extends this with its own class; nothing else reads the environment."""

from __future__ import annotations

import logging
from functools import cache
from pathlib import Path
from typing import Literal

from pydantic import model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

log = logging.getLogger(__name__)

# Mainland China's internet-diagnosis supervision rules keep consultation records at least
# 3 years: a shorter consultation retention is allowed (other jurisdictions) but warned about.
CONSULTATION_MIN_DAYS = 3 * 365


def consultation_retention_warning(days: int | None) -> str | None:
    """The warning for a consultation retention shorter than CONSULTATION_MIN_DAYS, or None."""
    if days is None or days >= CONSULTATION_MIN_DAYS:
        return None
    return (
        f"consultation retention is {days} days, under {CONSULTATION_MIN_DAYS} (3 years): "
        "where mainland China's internet-diagnosis rules apply, consultation records are "
        "kept at least 3 years (README, Retention)"
    )


@cache
def _warn_once(message: str) -> None:
    log.warning(message)


class PlatformSettings(BaseSettings):
    # An empty variable means "not set" (compose passes `${X:-}` through as "").
    model_config = SettingsConfigDict(
        env_prefix="MEDCHAT_", env_file=".env", extra="ignore", env_ignore_empty=True
    )

    environment: Literal["dev", "test", "production"] = "dev"
    database_url: str = "postgresql+asyncpg://postgres@127.0.0.1:5432/medchat"
    redis_url: str = "redis://127.0.0.1:6379/0"
    broker_url: str | None = None  # the Celery broker; default: redis_url
    # Uploaded files (fine-tune datasets) and the model registry (published fine-tunes);
    # the gateway and the worker must see the same directories (a shared volume).
    files_dir: Path = Path("var/medchat/files")
    models_dir: Path = Path("var/medchat/models")
    # Uploaded files in files_dir (`dir`) or in an S3-compatible bucket (`s3`: AWS, MinIO,
    # Ceph RGW…; objects `<s3_prefix><file id>.jsonl`, the worker's local copies under
    # files_dir/cache). Credentials are never settings: boto3 reads AWS_ACCESS_KEY_ID and
    # AWS_SECRET_ACCESS_KEY, a profile or the instance/pod role.
    files_backend: Literal["dir", "s3"] = "dir"
    s3_bucket: str | None = None
    s3_prefix: str = "files/"
    s3_endpoint_url: str | None = None  # None: AWS
    s3_region: str | None = None
    # `path` for servers without per-bucket host names (MinIO, Ceph RGW behind one host).
    s3_addressing_style: Literal["auto", "path", "virtual"] = "auto"
    # The conversation format of the served model, and of base models whose registry entry
    # does not name one.
    profile: str = "disc-medllm"
    # Retention, three classes (None: keep), enforced by the worker every retention_interval_s;
    # a session under a legal hold is never deleted (README, "Retention"):
    # - consultation records: conversations untouched for this many days (guests' too, where
    #   the guest class has not taken them first). Below CONSULTATION_MIN_DAYS start-up and
    #   `medchat doctor` warn: mainland China's internet-diagnosis rules keep them 3 years.
    consultation_retention_days: int | None = None
    # The same class under its earlier name (MEDCHAT_RETENTION_DAYS), read when
    # consultation_retention_days is unset. Deprecated.
    retention_days: int | None = None
    # - guest chats: the guest and their conversations, this many hours after last activity;
    guest_retention_hours: int | None = None
    # - files: uploaded files (fine-tune datasets), this many days after the upload.
    file_retention_days: int | None = None
    retention_interval_s: int = 3600
    # A fine-tune whose worker died resumes from its last checkpoint (else it fails).
    resume_interrupted_jobs: bool = False

    @model_validator(mode="after")
    def _s3_needs_a_bucket(self) -> PlatformSettings:
        if self.files_backend == "s3" and not self.s3_bucket:
            raise ValueError("MEDCHAT_FILES_BACKEND=s3 needs MEDCHAT_S3_BUCKET")
        return self

    @model_validator(mode="after")
    def _warn_on_short_consultation_retention(self) -> PlatformSettings:
        # One log line per process (settings are built once per service), never an error.
        if warning := consultation_retention_warning(self.consultation_days):
            _warn_once(warning)
        return self

    @property
    def consultation_days(self) -> int | None:
        """The consultation records' retention: consultation_retention_days, else the
        deprecated retention_days."""
        if self.consultation_retention_days is not None:
            return self.consultation_retention_days
        return self.retention_days

    @property
    def celery_broker(self) -> str:
        return self.broker_url or self.redis_url

    @property
    def is_production(self) -> bool:
        return self.environment == "production"
