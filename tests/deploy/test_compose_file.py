"""docker-compose.yml: the official Compose specification schema, then what the issue asks
of each service (healthchecks, pinned images, engines by profile, GPUs, shared volumes)."""

from __future__ import annotations

import re

import jsonschema
import orjson

from ..support.tokenizers import SHARED
from .manifests import ROOT, compose

ENGINES = {"vllm": "vllm", "tgi": "tgi", "cpu": "engine-cpu"}


def test_compose_file_follows_the_specification() -> None:
    schema = orjson.loads((SHARED / "reference" / "compose-spec.json").read_bytes())
    # The spec names draft-07 by a URL without "#", which jsonschema does not recognise.
    jsonschema.Draft7Validator(schema).validate(compose())


def test_every_service_has_a_pinned_image_and_long_running_ones_a_healthcheck() -> None:
    for name, service in compose()["services"].items():
        image = service["image"]
        assert ":" in image and not image.endswith(":latest"), name
        if service.get("restart") == "no":  # one-shot (migrate): others wait for its exit
            continue
        assert "healthcheck" in service, f"{name} needs a healthcheck for depends_on"


def test_start_order_waits_for_health_and_for_the_migrations() -> None:
    services = compose()["services"]
    assert services["migrate"]["command"] == ["medchat", "db", "upgrade"]
    assert services["migrate"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    for name in ("gateway", "worker", "worker-cpu"):
        deps = services[name]["depends_on"]
        assert deps["migrate"]["condition"] == "service_completed_successfully", name
        assert deps["redis"]["condition"] == "service_healthy", name
    gateway = services["gateway"]["depends_on"]
    for engine in ENGINES.values():
        # Only the active profile's engine runs: the others must not block the gateway.
        assert gateway[engine] == {"condition": "service_healthy", "required": False}
    assert services["frontend"]["depends_on"]["gateway"]["condition"] == "service_healthy"


def test_one_engine_per_profile_all_reachable_as_engine() -> None:
    services = compose()["services"]
    for profile, name in ENGINES.items():
        assert services[name]["profiles"] == [profile]
        assert services[name]["networks"]["default"]["aliases"] == ["engine"]
        assert services[name]["volumes"][0].endswith(":/model:ro")
    assert services["gateway"]["environment"]["MEDCHAT_ENGINE_URL"] == "http://engine:8080"
    always = {"postgres", "redis", "migrate", "gateway", "frontend", "beat"}
    assert {n for n, s in services.items() if "profiles" not in s} == always


def test_disc_medllm_is_served_by_vllm_by_default_and_tgi_is_pinned() -> None:
    services = compose()["services"]
    env_example = (ROOT / ".env.example").read_text()
    assert re.search(r"^COMPOSE_PROFILES=vllm$", env_example, re.M)
    assert re.search(r"^ENGINE_PROTOCOL=openai$", env_example, re.M)
    assert re.search(r"^PROFILE=disc-medllm$", env_example, re.M)
    # vLLM's own image plus the Baichuan plugin (vLLM dropped Baichuan after v0.23.0).
    assert services["vllm"]["image"].startswith("disc-medchat/engine-vllm:")
    assert services["vllm"]["build"]["dockerfile"] == "docker/engine-vllm.Dockerfile"
    base = (ROOT / "docker/engine-vllm.Dockerfile").read_text()
    (tag,) = re.findall(r"^FROM vllm/vllm-openai:v(\d+)\.(\d+)\.\d+$", base, re.M)
    assert tuple(map(int, tag)) > (0, 23), "a vLLM that still had Baichuan needs no plugin"
    tgi = services["tgi"]
    assert re.fullmatch(
        r"ghcr\.io/huggingface/text-generation-inference:\d+\.\d+\.\d+", tgi["image"]
    )
    assert "--max-input-tokens" in tgi["command"] and "--max-total-tokens" in tgi["command"]
    for name in ("vllm", "tgi"):
        assert "shm_size" in services[name]
        (device,) = services[name]["deploy"]["resources"]["reservations"]["devices"]
        assert device["capabilities"] == ["gpu"]
    assert "deploy" not in services["engine-cpu"] and "deploy" not in services["worker-cpu"]


def test_gateway_and_worker_share_files_and_models() -> None:
    services = compose()["services"]
    mounts = {name: services[name]["volumes"] for name in ("gateway", "worker", "worker-cpu")}
    assert mounts["gateway"] == mounts["worker"] == mounts["worker-cpu"]
    assert "medchat-data:/data" in mounts["gateway"]
    env = services["gateway"]["environment"]
    assert env["MEDCHAT_FILES_DIR"].startswith("/data/")
    assert env["MEDCHAT_MODELS_DIR"].startswith("/data/")
    # The served model's tokenizer is the registry entry mounted from MODEL_DIR.
    model_mount = next(m for m in mounts["gateway"] if m.startswith("${MODEL_DIR"))
    assert model_mount.split(":", 2)[-1].rsplit(":", 1)[0] == env["MEDCHAT_TOKENIZER_PATH"]
    assert services["worker"]["command"][:3] == ["celery", "-A", "services.worker.celery_app"]


def test_required_variables_fail_loudly_and_are_documented() -> None:
    text = (ROOT / "docker-compose.yml").read_text()
    required = set(re.findall(r"\$\{(\w+):\?", text))
    assert {"POSTGRES_PASSWORD", "MODEL_DIR"} <= required
    used = set(re.findall(r"\$\{(\w+)", text))
    documented = set(re.findall(r"^#?\s*(\w+)=", (ROOT / ".env.example").read_text(), re.M))
    assert used <= documented, f"not in .env.example: {sorted(used - documented)}"


def test_one_beat_schedules_retention_and_the_webhook_sweep() -> None:
    """Without beat no retention pass ever runs: one, for every profile, with the workers'
    settings (the retention classes reach the workers that run the passes)."""
    services = compose()["services"]
    beat = services["beat"]
    assert beat["command"][:4] == ["celery", "-A", "services.worker.celery_app", "beat"]
    assert "deploy" not in beat and "profiles" not in beat
    for name in ("worker", "worker-cpu", "beat"):
        env = services[name]["environment"]
        assert "MEDCHAT_CONSULTATION_RETENTION_DAYS" in env, name
