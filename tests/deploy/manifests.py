"""What the deployment tests read: the compose file, rendered kustomize overlays, the
Dockerfiles, and the settings classes' variable names."""

from __future__ import annotations

import re
import shutil
import subprocess
from functools import cache
from pathlib import Path
from typing import Any

import yaml
from pydantic_settings import BaseSettings

from services.core.settings import PlatformSettings
from services.gateway.config import GatewaySettings
from services.worker.config import WorkerSettings

ROOT = Path(__file__).resolve().parents[2]
OVERLAYS = ("dev", "prod-gpu")
DOCKERFILES = sorted((ROOT / "docker").glob("*.Dockerfile"))
# Images built from this repository, and the settings class their processes read.
OUR_IMAGES: dict[str, type[BaseSettings]] = {
    "disc-medchat/gateway": GatewaySettings,  # also the migration job (`medchat db upgrade`)
    "disc-medchat/worker": WorkerSettings,
}


def compose() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    return data


def setting_names(cls: type[BaseSettings]) -> set[str]:
    prefix = str(cls.model_config.get("env_prefix", ""))
    return {prefix + name.upper() for name in cls.model_fields}


# Variables a container cannot do without: their defaults point at 127.0.0.1 or a
# relative directory, which are wrong in any container.
REQUIRED = {
    PlatformSettings: {
        "MEDCHAT_ENVIRONMENT",
        "MEDCHAT_DATABASE_URL",
        "MEDCHAT_REDIS_URL",
        "MEDCHAT_FILES_DIR",
        "MEDCHAT_MODELS_DIR",
        "MEDCHAT_PROFILE",
    },
    GatewaySettings: {
        "MEDCHAT_ENGINE_URL",
        "MEDCHAT_ENGINE_PROTOCOL",
        "MEDCHAT_ENGINE_MODEL",
        "MEDCHAT_TOKENIZER_PATH",
    },
}


def kustomize_command() -> list[str] | None:
    """`kustomize build`, or kubectl's built-in kustomize; None when neither is installed."""
    if shutil.which("kustomize"):
        return ["kustomize", "build"]
    if shutil.which("kubectl"):
        return ["kubectl", "kustomize"]
    return None


@cache
def render(overlay: str) -> list[dict[str, Any]]:
    command = kustomize_command()
    assert command is not None
    out = subprocess.run(
        [*command, str(ROOT / "k8s" / "overlays" / overlay)],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout
    return [doc for doc in yaml.safe_load_all(out) if doc]


def image_name(image: str) -> str:
    """disc-medchat/gateway:0.1.0, registry.example.org/medchat/gateway:0.1.0 -> the repo's
    name for it (disc-medchat/gateway), or the image itself when it is not ours."""
    name = image.rsplit(":", 1)[0] if ":" in image.rsplit("/", 1)[-1] else image
    for ours in OUR_IMAGES:
        if name == ours or name.endswith("/" + ours.split("/")[1]):
            return ours
    return name


def dockerfile_instructions(path: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    lines: list[str] = []
    for raw in path.read_text().splitlines():
        stripped = raw.strip()
        if stripped.startswith("#") or not stripped:
            continue
        if lines and lines[-1].endswith("\\"):
            lines[-1] = lines[-1][:-1] + " " + stripped
        else:
            lines.append(stripped)
    return [(m[1].upper(), m[2]) for m in (re.match(r"(\w+)\s+(.*)", x) for x in lines) if m]
