"""`medchat doctor`: is this host ready for `docker compose up`? GPU and driver, disk for the
model, free ports, and the settings in .env; each problem with what to do about it."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Literal

import click
from rich.console import Console
from rich.table import Table

from services.core.probe_record import NEVER_RUN, describe, read_record
from services.core.settings import consultation_retention_warning

Status = Literal["ok", "warn", "fail"]

ENGINE_PROFILES = {"vllm": "openai", "tgi": "tgi", "cpu": "openai"}
GPU_PROFILES = {"vllm", "tgi"}
# The driver must run the CUDA 12.8 images (worker base image, vLLM): R570 or newer.
MIN_DRIVER_MAJOR = 570
IMAGE_SPACE_GB = 60  # the worker (CUDA devel + torch + DeepSpeed) and engine images


@dataclass(frozen=True)
class Check:
    name: str
    status: Status
    detail: str


def read_env_file(path: Path) -> dict[str, str]:
    """KEY=VALUE lines as Compose reads them (comments, blank lines and quotes handled)."""
    values: dict[str, str] = {}
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, _, value = line.removeprefix("export ").partition("=")
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        elif " #" in value:
            value = value.split(" #", 1)[0].rstrip()
        values[key.strip()] = value
    return values


def uses_alibi(config: dict[str, object]) -> bool:
    """Baichuan-13B (and Baichuan2-13B) attend with ALiBi; the 7B models use rotary positions.
    Their configs differ by size: hidden_size 5120 is the 13B shape."""
    return config.get("model_type") == "baichuan" and config.get("hidden_size") == 5120


def check_env(env: dict[str, str]) -> list[Check]:
    checks: list[Check] = []
    for key in ("POSTGRES_PASSWORD", "MODEL_DIR"):
        if env.get(key):
            checks.append(Check(f"env {key}", "ok", "set"))
        else:
            checks.append(Check(f"env {key}", "fail", f"set {key} in .env (see .env.example)"))
    password = env.get("POSTGRES_PASSWORD", "")
    if password and not all(c.isalnum() or c in "-_." for c in password):
        checks.append(
            Check(
                "env POSTGRES_PASSWORD",
                "fail",
                "use URL-safe characters only (it goes into the database URL): "
                'python3 -c "import secrets; print(secrets.token_urlsafe(32))"',
            )
        )
    profiles = [p for p in env.get("COMPOSE_PROFILES", "").split(",") if p]
    engines = [p for p in profiles if p in ENGINE_PROFILES]
    if len(engines) != 1:
        checks.append(
            Check(
                "engine profile",
                "fail",
                f"COMPOSE_PROFILES must name exactly one engine of {sorted(ENGINE_PROFILES)}, "
                f"got {profiles or 'none'}",
            )
        )
        return checks
    engine = engines[0]
    protocol = env.get("ENGINE_PROTOCOL", "openai")
    wanted = ENGINE_PROFILES[engine]
    if protocol == wanted:
        checks.append(Check("engine profile", "ok", f"{engine} (ENGINE_PROTOCOL={protocol})"))
    else:
        checks.append(
            Check(
                "engine profile",
                "fail",
                f"{engine} speaks ENGINE_PROTOCOL={wanted}, not {protocol}",
            )
        )
    if engine == "cpu" and env.get("ENGINE_SAMPLING_EXTRAS", "true").lower() != "false":
        checks.append(
            Check(
                "engine sampling",
                "fail",
                "transformers serve refuses top_k/repetition_penalty: ENGINE_SAMPLING_EXTRAS=false",
            )
        )
    return checks


def check_model(env: dict[str, str]) -> list[Check]:
    model_dir = Path(env.get("MODEL_DIR", ""))
    if not env.get("MODEL_DIR"):
        return []
    if not model_dir.is_dir():
        return [Check("model", "fail", f"{model_dir} is not a directory: download the model there")]
    checks: list[Check] = []
    tokenizer_files = ("tokenizer.model", "tokenizer.json")
    if any((model_dir / name).is_file() for name in tokenizer_files):
        checks.append(Check("model tokenizer", "ok", str(model_dir)))
    else:
        checks.append(
            Check("model tokenizer", "fail", f"no tokenizer.model or tokenizer.json in {model_dir}")
        )
    config_path = model_dir / "config.json"
    try:
        config = json.loads(config_path.read_text())
    except (OSError, ValueError):
        checks.append(Check("model config", "fail", f"cannot read {config_path}"))
        return checks
    engine = env.get("COMPOSE_PROFILES", "")
    if uses_alibi(config) and "tgi" in engine.split(","):
        checks.append(
            Check(
                "model engine",
                "fail",
                "this is a Baichuan-13B model (ALiBi attention): TGI serves it through a "
                "rotary-position path and answers wrongly. Use COMPOSE_PROFILES=vllm "
                "(ENGINE_PROTOCOL=openai).",
            )
        )
    else:
        kind = "ALiBi (Baichuan-13B)" if uses_alibi(config) else str(config.get("model_type"))
        checks.append(Check("model engine", "ok", f"{kind} on {engine or 'no engine'}"))
    return checks


def check_disk(env: dict[str, str], docker_root: Path) -> list[Check]:
    checks: list[Check] = []
    where = docker_root if docker_root.exists() else Path("/")
    free_gb = shutil.disk_usage(where).free / 1e9
    status: Status = "ok" if free_gb >= IMAGE_SPACE_GB else "fail"
    checks.append(
        Check(
            "disk for images",
            status,
            f"{free_gb:.0f} GB free at {where} (images need about {IMAGE_SPACE_GB} GB)",
        )
    )
    model_dir = Path(env.get("MODEL_DIR", ""))
    if env.get("MODEL_DIR") and model_dir.is_dir():
        size_gb = sum(p.stat().st_size for p in model_dir.rglob("*") if p.is_file()) / 1e9
        free_gb = shutil.disk_usage(model_dir).free / 1e9
        # Fine-tunes write merged models (the base's size) or adapters next to it.
        need = 2 * size_gb
        status = "ok" if free_gb >= need else "warn"
        checks.append(
            Check(
                "disk for models",
                status,
                f"model {size_gb:.1f} GB; {free_gb:.0f} GB free (a merged fine-tune needs "
                f"{size_gb:.0f} GB more)",
            )
        )
    return checks


def check_gpu(env: dict[str, str]) -> list[Check]:
    profiles = set(env.get("COMPOSE_PROFILES", "").split(","))
    if not profiles & GPU_PROFILES:
        return [Check("gpu", "ok", "not needed (cpu profile)")]
    if shutil.which("nvidia-smi") is None:
        return [
            Check(
                "gpu",
                "fail",
                "nvidia-smi not found: install the NVIDIA driver, or use COMPOSE_PROFILES=cpu",
            )
        ]
    try:
        out = subprocess.run(
            [
                "nvidia-smi",
                "--query-gpu=index,name,driver_version,memory.total",
                "--format=csv,noheader,nounits",
            ],
            capture_output=True,
            text=True,
            timeout=20,
            check=True,
        ).stdout
    except (OSError, subprocess.SubprocessError) as exc:
        return [Check("gpu", "fail", f"nvidia-smi failed: {exc}")]
    gpus = [[field.strip() for field in line.split(",")] for line in out.splitlines() if line]
    if not gpus:
        return [Check("gpu", "fail", "nvidia-smi lists no GPU")]
    checks = [Check(f"gpu {g[0]}", "ok", f"{g[1]}, {int(g[3]) // 1024} GiB") for g in gpus]
    driver = gpus[0][2]
    major = int(driver.split(".")[0]) if driver.split(".")[0].isdigit() else 0
    checks.append(
        Check(
            "gpu driver",
            "ok" if major >= MIN_DRIVER_MAJOR else "fail",
            f"{driver} (the CUDA 12.8 images need {MIN_DRIVER_MAJOR} or newer)",
        )
    )
    ids = {g[0] for g in gpus}
    for key in ("ENGINE_GPU", "WORKER_GPU"):
        wanted = env.get(key, "0")
        if wanted not in ids:
            checks.append(Check(f"env {key}", "fail", f"GPU {wanted} not present ({sorted(ids)})"))
    return checks


def check_tools() -> list[Check]:
    checks: list[Check] = []
    if shutil.which("docker") is None:
        checks.append(Check("docker", "fail", "docker not found: install Docker Engine"))
    else:
        checks.append(Check("docker", "ok", str(shutil.which("docker"))))
    return checks


def port_free(port: int, host: str = "0.0.0.0") -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def check_ports(env: dict[str, str]) -> list[Check]:
    raw = env.get("HTTP_PORT", "8080")
    if not raw.isdigit():
        return [Check("port HTTP_PORT", "fail", f"not a port number: {raw!r}")]
    port = int(raw)
    if port_free(port):
        return [Check(f"port {port}", "ok", "free")]
    return [Check(f"port {port}", "fail", "in use: stop what listens there or set HTTP_PORT")]


def check_probe(record_path: Path) -> list[Check]:
    """The last `medchat engine probe`: does the engine compute the model's own logprobs?"""
    record = read_record(record_path)
    line = describe(record)
    if record is None:
        hint = "; run `medchat engine probe --model MODEL_DIR` once the engine is up"
        return [Check("engine probe", "warn", f"{NEVER_RUN} ({record_path}){hint}")]
    verdicts: dict[str, Status] = {"pass": "ok", "fail": "fail"}
    status = verdicts.get(str(record.get("verdict")), "warn")
    detail = f"{line} [{record_path}]"
    if status == "fail":
        detail += ": the engine does not compute this model; see the probe's table"
    return [Check("engine probe", status, detail)]


def check_retention(env: dict[str, str]) -> list[Check]:
    """Consultation records' retention (MEDCHAT_CONSULTATION_RETENTION_DAYS, else the older
    MEDCHAT_RETENTION_DAYS): a warning under 3 years, never a failure (README, Retention)."""
    for key in ("MEDCHAT_CONSULTATION_RETENTION_DAYS", "MEDCHAT_RETENTION_DAYS"):
        raw = env.get(key, "").strip()
        if not raw:
            continue
        if not raw.isdigit():
            return [Check("retention", "fail", f"{key}={raw!r} is not a whole number of days")]
        warning = consultation_retention_warning(int(raw))
        return [Check("retention", "warn" if warning else "ok", warning or f"{key}={raw}")]
    return [Check("retention", "ok", "consultation records kept until deleted (no retention)")]


def run_checks(env_file: Path, docker_root: Path, probe_record: Path | None = None) -> list[Check]:
    if not env_file.is_file():
        return [
            Check("env file", "fail", f"{env_file} not found: cp .env.example .env and fill it in")
        ]
    env = read_env_file(env_file)
    return [
        Check("env file", "ok", str(env_file)),
        *check_env(env),
        *check_model(env),
        *check_gpu(env),
        *check_disk(env, docker_root),
        *check_ports(env),
        *check_retention(env),
        *check_tools(),
        *check_probe(probe_record or default_probe_record()),
    ]


def default_probe_record() -> Path:
    from services.gateway.config import GatewaySettings

    return GatewaySettings().probe_record_path


@click.command()
@click.option(
    "--env-file",
    type=click.Path(path_type=Path),
    default=Path(".env"),
    show_default=True,
    help="The .env that docker compose will read.",
)
@click.option(
    "--docker-root",
    type=click.Path(path_type=Path),
    default=Path("/var/lib/docker"),
    show_default=True,
    help="Where Docker keeps images (for the disk check).",
)
@click.option(
    "--probe-record",
    type=click.Path(dir_okay=False, path_type=Path),
    help="The last `medchat engine probe` result. Default: MEDCHAT_PROBE_RECORD.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the checks as JSON.")
def doctor(env_file: Path, docker_root: Path, probe_record: Path | None, as_json: bool) -> None:
    """Check this host for a `docker compose` deployment: GPU and driver, disk for the model,
    ports, .env, and the last engine probe. Exit 1 when something must be fixed first."""
    checks = run_checks(env_file, docker_root, probe_record)
    if as_json:
        click.echo(json.dumps([asdict(c) for c in checks], indent=2))
    else:
        table = Table("check", "", "detail")
        style = {
            "ok": "[green]ok[/green]",
            "warn": "[yellow]warn[/yellow]",
            "fail": "[red]FAIL[/red]",
        }
        for c in checks:
            table.add_row(c.name, style[c.status], c.detail)
        Console().print(table)
    if any(c.status == "fail" for c in checks):
        raise SystemExit(1)
