"""The MEDCHAT_* variables compose and Kubernetes set are exactly ones the settings classes
read (no typo is silently ignored), the ones a container needs are all set, and every
service's image and command exist in the repository."""

from __future__ import annotations

from typing import Any

import click
import pytest
from pydantic_settings import BaseSettings

from services.cli.main import cli
from services.core.settings import PlatformSettings
from services.gateway.config import GatewaySettings
from services.worker.config import WorkerSettings

from .manifests import (
    OUR_IMAGES,
    OVERLAYS,
    REQUIRED,
    ROOT,
    compose,
    image_name,
    kustomize_command,
    render,
    setting_names,
)

# The S3 file store's credentials: boto3 reads its own variables; they are never settings.
AWS_CREDENTIALS = {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"}
COMPOSE_SETTINGS: dict[str, type[BaseSettings]] = {
    "gateway": GatewaySettings,
    "migrate": GatewaySettings,
    "worker": WorkerSettings,
    "worker-cpu": WorkerSettings,
}


def required(cls: type[BaseSettings], service: str) -> set[str]:
    if service == "migrate":
        return {"MEDCHAT_DATABASE_URL"}
    needed = set(REQUIRED[PlatformSettings])
    if issubclass(cls, GatewaySettings):
        needed |= REQUIRED[GatewaySettings]
    return needed


def test_the_settings_classes_use_the_medchat_prefix() -> None:
    for cls in (PlatformSettings, GatewaySettings, WorkerSettings):
        assert cls.model_config.get("env_prefix") == "MEDCHAT_"
    assert "MEDCHAT_DATABASE_URL" in setting_names(WorkerSettings)


@pytest.mark.parametrize("service", sorted(COMPOSE_SETTINGS))
def test_compose_sets_exactly_settings_variables(service: str) -> None:
    cls = COMPOSE_SETTINGS[service]
    env = set(compose()["services"][service].get("environment", {})) - AWS_CREDENTIALS
    assert env <= setting_names(cls), f"not read by {cls.__name__}: {env - setting_names(cls)}"
    assert required(cls, service) <= env, f"missing: {required(cls, service) - env}"


def k8s_environments(docs: list[dict[str, Any]]) -> list[tuple[str, str, set[str]]]:
    """(workload, image, variable names) for every container: env plus envFrom ConfigMaps."""
    config_maps = {
        d["metadata"]["name"]: d.get("data", {}) for d in docs if d["kind"] == "ConfigMap"
    }
    found = []
    for doc in docs:
        if doc["kind"] not in {"Deployment", "StatefulSet", "Job"}:
            continue
        for container in doc["spec"]["template"]["spec"]["containers"]:
            names = {e["name"] for e in container.get("env", [])}
            for source in container.get("envFrom", []):
                if "configMapRef" in source:
                    names |= set(config_maps[source["configMapRef"]["name"]])
            found.append((doc["metadata"]["name"], container["image"], names))
    return found


@pytest.mark.skipif(
    kustomize_command() is None, reason="neither kustomize nor kubectl is installed"
)
@pytest.mark.parametrize("overlay", OVERLAYS)
def test_kubernetes_sets_exactly_settings_variables(overlay: str) -> None:
    seen = set()
    for workload, image, names in k8s_environments(render(overlay)):
        ours = image_name(image)
        if ours not in OUR_IMAGES:
            assert not {n for n in names if n.startswith("MEDCHAT_")}, workload
            continue
        cls = OUR_IMAGES[ours]
        if workload in ("worker", "beat"):
            cls = WorkerSettings
        seen.add(workload)
        assert names <= setting_names(cls), f"{workload}: {names - setting_names(cls)}"
        assert required(cls, workload) <= names, f"{workload}: {required(cls, workload) - names}"
    assert seen == {"gateway", "worker", "beat", "migrate"}


def command_exists(command: list[str]) -> None:
    """`medchat …` names a real subcommand; `celery -A module` names a module in the repo."""
    if command[0] == "medchat":
        group: click.Command = cli
        for word in command[1:]:
            if word.startswith("-") or not isinstance(group, click.Group):
                break
            sub = group.commands.get(word)
            assert sub is not None, f"no `{word}` in {' '.join(command)}"
            group = sub
    elif command[0] == "celery":
        module = command[command.index("-A") + 1]
        assert (ROOT / (module.replace(".", "/") + ".py")).is_file(), module


def test_compose_images_are_built_here_and_commands_exist() -> None:
    for name, service in compose()["services"].items():
        if "build" in service:
            assert (ROOT / service["build"]["context"] / service["build"]["dockerfile"]).is_file()
            assert service["image"].startswith("disc-medchat/"), name
        else:
            assert not service["image"].startswith("disc-medchat/"), f"{name}: no build for it"
        if "command" in service and name not in {"vllm", "tgi", "redis", "engine-cpu"}:
            command_exists(service["command"])


@pytest.mark.skipif(
    kustomize_command() is None, reason="neither kustomize nor kubectl is installed"
)
@pytest.mark.parametrize("overlay", OVERLAYS)
def test_kubernetes_images_are_built_here_and_commands_exist(overlay: str) -> None:
    dockerfiles = {p.name.split(".")[0] for p in (ROOT / "docker").glob("*.Dockerfile")}
    for doc in render(overlay):
        if doc["kind"] not in {"Deployment", "StatefulSet", "Job"}:
            continue
        for container in doc["spec"]["template"]["spec"]["containers"]:
            image = container["image"]
            if "disc-medchat/" in image or image.startswith("registry.example.org/medchat/"):
                assert image.rsplit("/", 1)[-1].split(":")[0] in dockerfiles, image
            if "command" in container:
                command_exists(container["command"])
