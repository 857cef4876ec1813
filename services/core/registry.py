"""The model registry: a directory of model directories that the worker trains from and
publishes to, and the gateway lists. A base model is any directory with a config.json
(`models_dir/NAME` or `models_dir/ORG/NAME`); a published fine-tune lives in
`models_dir/ft/<job-id>/` with a `medchat-model.json` manifest naming it
`ft:<base>:<suffix>:<job-id>` (OpenAI's naming)."""

from __future__ import annotations

import json
import shutil
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Literal

MANIFEST = "medchat-model.json"
FINE_TUNES = "ft"


@dataclass(frozen=True)
class RegisteredModel:
    name: str
    path: str
    base: str | None  # None for a base model
    kind: Literal["base", "merged", "adapter"]
    profile: str | None
    job_id: str | None
    created_at: int


def fine_tune_name(base: str, suffix: str | None, job_id: str) -> str:
    return f"ft:{base}:{suffix or ''}:{job_id}"


def base_model_dir(models_dir: Path, name: str) -> Path | None:
    """The directory of a trainable model called `name`, or None. Names come from API
    callers: only `NAME` or `ORG/NAME` inside the registry, never a path out of it."""
    if name.startswith("ft:"):  # continue training from a merged fine-tune
        found = next((m for m in list_models(models_dir) if m.name == name), None)
        return Path(found.path) if found and found.kind == "merged" else None
    parts = name.split("/")
    if len(parts) > 2 or parts[0] == FINE_TUNES or any(not p or p.startswith(".") for p in parts):
        return None
    path = models_dir.joinpath(*parts)
    return path if (path / "config.json").is_file() else None


def model_profile(model_dir: Path, default: str) -> str:
    """The conversation profile a model directory names in its manifest, else `default`."""
    try:
        return str(json.loads((model_dir / MANIFEST).read_text())["profile"])
    except (OSError, ValueError, KeyError, TypeError):
        return default


def publish(
    models_dir: Path,
    output_dir: Path,
    *,
    base: str,
    suffix: str | None,
    job_id: str,
    kind: Literal["merged", "adapter"],
    profile: str,
) -> RegisteredModel:
    """Move a finished job's output into the registry under its fine-tune name."""
    target = models_dir / FINE_TUNES / job_id
    target.parent.mkdir(parents=True, exist_ok=True)
    if target.exists():
        shutil.rmtree(target)
    shutil.move(str(output_dir), target)
    model = RegisteredModel(
        name=fine_tune_name(base, suffix, job_id),
        path=str(target),
        base=base,
        kind=kind,
        profile=profile,
        job_id=job_id,
        created_at=int(time.time()),
    )
    (target / MANIFEST).write_text(json.dumps(asdict(model), indent=2))
    return model


def list_models(models_dir: Path) -> list[RegisteredModel]:
    """Published fine-tunes (newest first), then base models."""
    tuned: list[RegisteredModel] = []
    for manifest in (models_dir / FINE_TUNES).glob(f"*/{MANIFEST}"):
        try:
            tuned.append(RegisteredModel(**json.loads(manifest.read_text())))
        except (OSError, ValueError, TypeError):
            continue  # a half-written or foreign manifest is not a model
    tuned.sort(key=lambda m: m.created_at, reverse=True)
    bases = []
    for config in sorted(models_dir.glob("*/config.json")) + sorted(
        models_dir.glob("*/*/config.json")
    ):
        model_dir = config.parent
        if FINE_TUNES in model_dir.relative_to(models_dir).parts[:1]:
            continue
        name = str(model_dir.relative_to(models_dir))
        bases.append(
            RegisteredModel(
                name, str(model_dir), None, "base", None, None, int(config.stat().st_mtime)
            )
        )
    return tuned + bases
