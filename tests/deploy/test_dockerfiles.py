"""docker/*.Dockerfile: hadolint, then the issue's rules (multi-stage, pinned bases, a
non-root user, every COPY source in the repository, no torch in the gateway image), and
nginx's own syntax check of the frontend's configuration."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from .manifests import DOCKERFILES, ROOT, dockerfile_instructions


def tool(name: str) -> str | None:
    """A tool from this virtual environment (pip-installed wrappers), else the PATH."""
    local = Path(sys.executable).parent / name
    return str(local) if local.exists() else shutil.which(name)


def test_there_is_one_dockerfile_per_service_and_a_dockerignore() -> None:
    names = {p.name for p in DOCKERFILES}
    assert names == {
        "gateway.Dockerfile",
        "worker.Dockerfile",
        "frontend.Dockerfile",
        "engine-cpu.Dockerfile",
        "engine-vllm.Dockerfile",
    }
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert {".git", ".env", ".venv", "frontend/node_modules"} <= set(ignored)


@pytest.mark.skipif(tool("hadolint") is None, reason="hadolint is not installed")
@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.name)
def test_hadolint(dockerfile: Path) -> None:
    hadolint = tool("hadolint")
    assert hadolint is not None
    result = subprocess.run(
        [hadolint, "--no-color", str(dockerfile)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.name)
def test_multi_stage_pinned_non_root(dockerfile: Path) -> None:
    steps = dockerfile_instructions(dockerfile)
    bases = [args.split()[0] for op, args in steps if op == "FROM"]
    assert len(bases) >= 2, "multi-stage: build tools stay out of the final image"
    for base in bases:
        tag = base.rsplit(":", 1)[-1]
        assert ":" in base and tag != "latest" and any(c.isdigit() for c in tag), base
    users = [args for op, args in steps if op == "USER"]
    assert users and users[-1].split(":")[0] not in {"root", "0"}
    final = max(i for i, (op, _) in enumerate(steps) if op == "FROM")
    assert any(op == "USER" for op, _ in steps[final:]), "the final stage sets the user"
    assert any(op == "HEALTHCHECK" for op, _ in steps[final:])


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.name)
def test_every_copied_path_exists(dockerfile: Path) -> None:
    for op, args in dockerfile_instructions(dockerfile):
        if op != "COPY" or "--from=" in args:
            continue
        *sources, _ = [a for a in args.split() if not a.startswith("--")]
        for source in sources:
            assert list(ROOT.glob(source)), f"{dockerfile.name}: COPY {source} matches nothing"


def test_the_gateway_image_has_no_torch() -> None:
    runs = [
        a for op, a in dockerfile_instructions(ROOT / "docker/gateway.Dockerfile") if op == "RUN"
    ]
    installs = " ".join(runs)
    assert "pip install --no-cache-dir -c requirements.lock . " in installs  # no extras
    assert "torch" not in installs.replace("pip show torch", "").replace("torch must not", "")
    worker = " ".join(
        a for op, a in dockerfile_instructions(ROOT / "docker/worker.Dockerfile") if op == "RUN"
    )
    assert "torch==2.13.0" in worker and '-c requirements.lock ".[train]"' in worker


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.name)
def test_python_installs_take_the_locked_versions(dockerfile: Path) -> None:
    """Every pip install but torch's own (the lock leaves torch to each image) is constrained
    by requirements.lock, so an image holds what the tests passed with."""
    for op, args in dockerfile_instructions(dockerfile):
        for command in args.split("&&") if op == "RUN" else []:
            if "pip install" in command and "torch==" not in command:
                assert "requirements.lock" in command, f"{dockerfile.name}: {command.strip()}"


@pytest.mark.skipif(shutil.which("nginx") is None, reason="nginx is not installed")
def test_nginx_configuration_is_valid(tmp_path: Path) -> None:
    conf = (ROOT / "docker" / "nginx.conf").read_text()
    # The Compose/Kubernetes name `gateway` does not resolve here; nginx -t resolves upstreams.
    (tmp_path / "default.conf").write_text(
        conf.replace("server gateway:8000", "server 127.0.0.1:8000")
    )
    (tmp_path / "nginx.conf").write_text(
        f"pid {tmp_path}/nginx.pid;\nerror_log stderr;\nevents {{}}\n"
        f"http {{ access_log off; client_body_temp_path {tmp_path};\n"
        f"  include {tmp_path}/default.conf; }}\n"
    )
    result = subprocess.run(
        ["nginx", "-t", "-p", str(tmp_path), "-c", str(tmp_path / "nginx.conf")],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 0, result.stderr
    for directive in ("proxy_buffering off;", "proxy_read_timeout 900s;", "location ~ ^/(api|v1)"):
        assert directive in conf


def test_one_torch_version_everywhere() -> None:
    """The lock leaves torch out; the scripts and images that install it name one version."""
    places = [ROOT / "scripts/install.sh", ROOT / "scripts/lock.sh", *DOCKERFILES]
    versions = {
        p.name: set(re.findall(r"torch==(\d[\w.]*)|TORCH_VERSION=(\S+)", p.read_text()))
        for p in places
    }
    found = {v for pairs in versions.values() for pair in pairs for v in pair if v}
    assert len(found) == 1, versions
    assert not any(line.startswith("torch==") for line in (ROOT / "requirements.lock").open())
