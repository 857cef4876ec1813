"""OpenAI's fine-tuning objects, so `client.fine_tuning.jobs.*` work unchanged; `max_seq_length`
and `lora` are ours (the SDK sends them through `extra_body`)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from services.gateway.pagination import Page
from services.store.tables.finetune import FineTuneCheckpoint, FineTuneEvent, FineTuneJob

Auto = Literal["auto"]


class Hyperparameters(BaseModel):
    model_config = ConfigDict(extra="forbid")

    n_epochs: Auto | int = "auto"
    batch_size: Auto | int = "auto"
    learning_rate_multiplier: Auto | float = "auto"

    def check(self) -> str | None:
        """What is out of range (None: all fine); bounds on a union with "auto" are checked here."""
        if isinstance(self.n_epochs, int) and not 1 <= self.n_epochs <= 50:
            return "n_epochs must be between 1 and 50"
        if isinstance(self.batch_size, int) and not 1 <= self.batch_size <= 256:
            return "batch_size must be between 1 and 256"
        lr = self.learning_rate_multiplier
        if isinstance(lr, float | int) and not 0 < lr <= 1000:
            return "learning_rate_multiplier must be in (0, 1000] (1 = 2e-5)"
        return None


class Supervised(BaseModel):
    hyperparameters: Hyperparameters = Field(default_factory=Hyperparameters)


class Method(BaseModel):
    type: Literal["supervised"] = "supervised"
    supervised: Supervised = Field(default_factory=Supervised)


class LoraOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    r: int = Field(default=16, ge=1, le=256)
    alpha: int = Field(default=32, ge=1, le=1024)
    dropout: float = Field(default=0.05, ge=0, lt=1)
    save: Literal["adapter", "merged"] = "adapter"


class JobCreate(BaseModel):
    model: str = Field(min_length=1, max_length=200)
    training_file: str
    validation_file: str | None = None
    suffix: str | None = Field(default=None, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")
    seed: int | None = Field(default=None, ge=0, le=2**31 - 1)
    method: Method | None = None
    hyperparameters: Hyperparameters | None = None  # the older, top-level form
    max_seq_length: int | None = Field(default=None, ge=16, le=1 << 20)
    lora: bool | LoraOptions | None = None

    def resolved_hyperparameters(self) -> Hyperparameters:
        if self.method is not None:
            return self.method.supervised.hyperparameters
        return self.hyperparameters or Hyperparameters()

    def lora_options(self) -> LoraOptions | None:
        if self.lora is True:
            return LoraOptions()
        return self.lora or None


class JobError(BaseModel):
    code: str
    message: str
    param: str | None = None


class JobObject(BaseModel):
    id: str
    object: Literal["fine_tuning.job"] = "fine_tuning.job"
    created_at: int
    error: JobError | None
    fine_tuned_model: str | None
    finished_at: int | None
    hyperparameters: dict[str, Any]
    model: str
    organization_id: str = "org-medchat"
    result_files: list[str] = Field(default_factory=list)
    seed: int
    status: str
    trained_tokens: int | None
    training_file: str
    validation_file: str | None
    user_provided_suffix: str | None
    method: dict[str, Any]
    max_seq_length: int | None
    lora: dict[str, Any] | None

    @classmethod
    def of(cls, job: FineTuneJob) -> JobObject:
        return cls(
            id=job.id,
            created_at=int(job.created_at.timestamp()),
            error=JobError(**job.error) if job.error else None,
            fine_tuned_model=job.fine_tuned_model,
            finished_at=int(job.finished_at.timestamp()) if job.finished_at else None,
            hyperparameters=job.hyperparameters,
            model=job.model,
            seed=job.seed,
            status=job.status,
            trained_tokens=job.trained_tokens,
            training_file=job.training_file,
            validation_file=job.validation_file,
            user_provided_suffix=job.suffix,
            method={"type": "supervised", "supervised": {"hyperparameters": job.hyperparameters}},
            max_seq_length=job.max_seq_length,
            lora=job.lora,
        )


class JobList(Page[JobObject]):
    pass


class EventObject(BaseModel):
    id: str
    object: Literal["fine_tuning.job.event"] = "fine_tuning.job.event"
    created_at: int
    level: str
    message: str
    data: dict[str, Any] | None
    type: str

    @classmethod
    def of(cls, e: FineTuneEvent) -> EventObject:
        return cls(
            id=f"ftevent-{e.id}",
            created_at=int(e.created_at.timestamp()),
            level=e.level,
            message=e.message,
            data=e.data,
            type=e.type,
        )


class EventList(Page[EventObject]):
    pass


class CheckpointObject(BaseModel):
    id: str
    object: Literal["fine_tuning.job.checkpoint"] = "fine_tuning.job.checkpoint"
    created_at: int
    fine_tuned_model_checkpoint: str
    fine_tuning_job_id: str
    metrics: dict[str, Any]
    step_number: int

    @classmethod
    def of(cls, c: FineTuneCheckpoint) -> CheckpointObject:
        return cls(
            id=f"ftckpt-{c.id}",
            created_at=int(c.created_at.timestamp()),
            fine_tuned_model_checkpoint=f"{c.job_id}:ckpt-step-{c.step}",
            fine_tuning_job_id=c.job_id,
            metrics=c.metrics,
            step_number=c.step,
        )


class CheckpointList(Page[CheckpointObject]):
    pass
