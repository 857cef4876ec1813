"""`medchat doctor`: the checks that need no GPU, on a fake host layout."""

from __future__ import annotations

import json
import socket
from pathlib import Path

from click.testing import CliRunner

from services.cli.doctor import check_env, check_model, port_free, read_env_file, run_checks
from services.cli.main import cli

from .manifests import ROOT


def write_env(tmp_path: Path, **values: str) -> Path:
    base = read_env_file(ROOT / ".env.example")
    base.update(values)
    path = tmp_path / ".env"
    path.write_text("".join(f"{k}={v}\n" for k, v in base.items()))
    return path


def model_dir(tmp_path: Path, config: dict[str, object]) -> Path:
    model = tmp_path / "model"
    model.mkdir()
    (model / "config.json").write_text(json.dumps(config))
    (model / "tokenizer.model").write_bytes(b"x" * 1000)
    return model


BAICHUAN_13B = {"model_type": "baichuan", "hidden_size": 5120}
BAICHUAN2_7B = {"model_type": "baichuan", "hidden_size": 4096}


def test_env_example_reads_as_compose_reads_it() -> None:
    env = read_env_file(ROOT / ".env.example")
    assert env["COMPOSE_PROFILES"] == "vllm" and env["POSTGRES_PASSWORD"] == ""


def test_missing_secret_and_model_dir_fail(tmp_path: Path) -> None:
    env = read_env_file(write_env(tmp_path, MODEL_DIR=""))
    failed = {c.name for c in check_env(env) if c.status == "fail"}
    assert failed == {"env POSTGRES_PASSWORD", "env MODEL_DIR"}


def test_the_engine_profile_and_protocol_must_agree(tmp_path: Path) -> None:
    env = read_env_file(write_env(tmp_path, COMPOSE_PROFILES="tgi", ENGINE_PROTOCOL="openai"))
    (profile,) = [c for c in check_env(env) if c.name == "engine profile"]
    assert profile.status == "fail" and "tgi speaks ENGINE_PROTOCOL=tgi" in profile.detail
    env = read_env_file(write_env(tmp_path, COMPOSE_PROFILES="cpu"))
    assert [c.name for c in check_env(env) if c.status == "fail"][-1] == "engine sampling"


def test_tgi_is_refused_for_baichuan_13b_but_not_for_7b(tmp_path: Path) -> None:
    model = model_dir(tmp_path, BAICHUAN_13B)
    env = {"MODEL_DIR": str(model), "COMPOSE_PROFILES": "tgi"}
    (engine,) = [c for c in check_model(env) if c.name == "model engine"]
    assert engine.status == "fail" and "ALiBi" in engine.detail
    env["COMPOSE_PROFILES"] = "vllm"
    assert all(c.status == "ok" for c in check_model(env))
    (model / "config.json").write_text(json.dumps(BAICHUAN2_7B))
    env["COMPOSE_PROFILES"] = "tgi"
    assert all(c.status == "ok" for c in check_model(env))


def test_a_busy_port_is_reported() -> None:
    with socket.socket() as sock:
        sock.bind(("0.0.0.0", 0))
        sock.listen()
        assert not port_free(sock.getsockname()[1])


def test_cpu_host_passes_and_the_command_exits_by_the_result(tmp_path: Path) -> None:
    model = model_dir(tmp_path, {"model_type": "qwen2"})
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        free = sock.getsockname()[1]
    env_file = write_env(
        tmp_path,
        COMPOSE_PROFILES="cpu",
        ENGINE_SAMPLING_EXTRAS="false",
        POSTGRES_PASSWORD="s3cret-Pass",
        MODEL_DIR=str(model),
        HTTP_PORT=str(free),
    )
    checks = {c.name: c for c in run_checks(env_file, docker_root=tmp_path)}
    assert checks["gpu"].status == "ok"
    assert checks["model engine"].status == "ok"
    runner = CliRunner()
    result = runner.invoke(cli, ["doctor", "--env-file", str(tmp_path / "absent"), "--json"])
    assert result.exit_code == 1
    assert json.loads(result.output)[0]["name"] == "env file"
