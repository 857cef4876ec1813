"""`medchat up`: the whole stack natively, for development. Ctrl-C stops what it started."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import click
import httpx
from rich.console import Console

from services.core.devtools.processes import NotReady, free_port, wait_for_http
from services.gateway.config import GatewaySettings

from . import demo
from .local_stack import DEFAULT_DATA_DIR, database_url, redis_url
from .supervisor import Child, StateFile, Supervisor, leftover_servers

out = Console(stderr=True, highlight=False, soft_wrap=True)  # commands stay copyable


def _wait(url: str, what: str, proc: subprocess.Popen[bytes], timeout_s: float) -> None:
    try:
        wait_for_http(url, proc, timeout_s=timeout_s, what=what, ready=_ANSWERED)
    except NotReady as exc:
        raise click.ClickException(str(exc)) from None


_ANSWERED = tuple(range(200, 500))  # any answer but a server error: it is up


def _engine(model: str, engine_url: str) -> tuple[Child, str]:
    """`transformers serve`, unpinned so that it loads whichever model directory a request
    names (the admin's serving choice), idle models kept loaded. Returns the child and the
    engine's name for `model`."""
    port = engine_url.rsplit(":", 1)[1]
    name = str(Path(model).resolve()) if Path(model).is_dir() else model
    child = Child(
        "the engine",
        [
            *(sys.executable, "-m", "transformers.cli.transformers", "serve"),
            *("--host", "127.0.0.1", "--port", port, "--device", "cpu", "--model-timeout", "-1"),
        ],
        # Offline: the model is local, and the CLI would ask PyPI for a newer version.
        env={**os.environ, "HF_HUB_OFFLINE": "1", "HF_HUB_DISABLE_UPDATE_CHECK": "1"},
    )
    return child, name


def _servable(model: Path, data_dir: Path) -> Path:
    """The directory `transformers serve` loads for `model`. It reads tokenizers through
    `tokenizer.json`; a model shipped with only a SentencePiece `tokenizer.model` (DISC-MedLLM
    as released) would be converted by transformers, which drops its normalization and
    tokenizes the prompts differently. So the exact conversion is written instead, into a
    directory of links beside the data (the model's own directory may be read-only)."""
    if (model / "tokenizer.json").is_file() or not (model / "tokenizer.model").is_file():
        return model
    from services.core.chatformat.sentencepiece_json import write_fast_tokenizer

    shadow = data_dir / "engine-models" / model.resolve().name
    shutil.rmtree(shadow, ignore_errors=True)
    shadow.mkdir(parents=True)
    replaced = {"tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"}
    for item in model.resolve().iterdir():
        if item.name not in replaced:
            (shadow / item.name).symlink_to(item)
    write_fast_tokenizer(model, shadow)
    out.print(f"{model} has no tokenizer.json: the engine loads {shadow}, with one written from")
    out.print("its tokenizer.model exactly (services/core/chatformat/sentencepiece_json.py)")
    return shadow


def _load_model(engine_url: str, name: str, proc: subprocess.Popen[bytes]) -> None:
    """The first request loads the model; the gateway's checks then find it listed."""
    try:
        _wait(f"{engine_url}/v1/models", "transformers serve", proc, 300)
        httpx.post(
            f"{engine_url}/v1/completions",
            json={"model": name, "prompt": "hello", "max_tokens": 1},
            timeout=300,
        ).raise_for_status()
    except (httpx.HTTPError, click.ClickException) as exc:
        raise click.ClickException(f"transformers serve could not load {name}: {exc}") from exc


def _register_base(models_dir: Path, model: Path) -> str:
    """The served model can be fine-tuned: link it into the registry under its directory's
    name, which is then its id everywhere (/v1/models, fine-tunes, the console)."""
    link = models_dir / model.resolve().name
    if link.is_symlink() and link.resolve() != model.resolve():
        link.unlink()  # the same name now means another directory
    if not link.exists():
        models_dir.mkdir(parents=True, exist_ok=True)
        link.symlink_to(model.resolve(), target_is_directory=True)
        out.print(f"registered {model} as base model {link.name!r} for fine-tunes")
    return link.name


def _check_port(port: int) -> None:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            raise click.ClickException(
                f"port {port} is taken by another program: stop it, or choose --port"
            ) from None


def _wait_worker(redis_url: str, proc: subprocess.Popen[bytes], timeout_s: float) -> None:
    """Until the Celery worker answers a control ping through the broker."""
    from celery import Celery

    from services.store.tasks import broker_url

    probe = Celery(broker=broker_url(redis_url))
    deadline = time.monotonic() + timeout_s
    try:
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise click.ClickException(f"the worker exited with status {proc.returncode}")
            if probe.control.ping(timeout=0.5):
                return
    finally:
        probe.close()
    raise click.ClickException(f"the worker did not answer a ping within {timeout_s:.0f} s")


@click.command()
@click.option(
    "--demo",
    "demo_mode",
    is_flag=True,
    help="Train (once, about two minutes on a CPU) and serve a tiny demo model: no GPU, no"
    " download. Prints the web address, an admin login and key, and API examples.",
)
@click.option(
    "--demo-data",
    type=click.Path(path_type=Path),
    default=demo.DEFAULT_DATA,
    show_default=True,
    help="DISC-MedLLM JSONL the demo model is trained on.",
)
@click.option(
    "--model", help="Model directory to serve with `transformers serve` (needs the 'serve' extra)."
)
@click.option("--engine-url", help="Use a running engine instead of starting one.")
@click.option(
    "--engine",
    "protocol",
    type=click.Choice(["tgi", "openai"]),
    default="tgi",
    show_default=True,
    help="Protocol of --engine-url.",
)
@click.option(
    "--profile",
    default="disc-medllm",
    show_default=True,
    help="Model profile: disc-medllm, baichuan2, generic.",
)
@click.option(
    "--tokenizer",
    type=click.Path(exists=True, path_type=Path),
    help="Tokenizer of the served model (default: --model).",
)
@click.option(
    "--data-dir",
    type=click.Path(path_type=Path),
    help=f"Where Postgres and Redis keep their data [default: {DEFAULT_DATA_DIR},"
    f" with --demo {demo.DEFAULT_CACHE / 'data'}]",
)
@click.option("--port", default=8000, show_default=True, type=int, help="Gateway port.")
def up(
    demo_mode: bool,
    demo_data: Path,
    model: str | None,
    engine_url: str | None,
    protocol: str,
    profile: str,
    tokenizer: Path | None,
    data_dir: Path | None,
    port: int,
) -> None:
    """Start Postgres, Redis, migrations, an engine, the worker and the gateway (with the web
    UI); Ctrl-C stops them."""
    if demo_mode and (model or engine_url):
        raise click.UsageError("--demo serves its own model: leave out --model and --engine-url")
    if not (demo_mode or model or engine_url):
        raise click.UsageError("give --demo, --model DIR (served here) or --engine-url URL")
    if tokenizer is None and engine_url:
        raise click.UsageError("--tokenizer DIR is needed with --engine-url")
    data_dir = data_dir or (demo.DEFAULT_CACHE / "data" if demo_mode else DEFAULT_DATA_DIR)
    data_dir.mkdir(parents=True, exist_ok=True)
    base = f"http://127.0.0.1:{port}"
    state = StateFile(data_dir)
    if state.running() is None:
        _check_port(port)  # a live stack on this directory is named first
    state.claim(base, out)
    keep: list[Any] = []  # in-process servers that live as long as this command
    supervisor = Supervisor(state, out)

    def stop(*_: object) -> None:
        raise KeyboardInterrupt

    # A closed terminal (SIGHUP) stops everything as Ctrl-C does, leaving no orphans.
    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGHUP, stop)
    try:
        if demo_mode:
            model = str(demo.demo_model(demo.DEFAULT_CACHE, demo_data, out))
        tokenizer = tokenizer or (Path(model) if model else None)
        assert tokenizer is not None
        for server in leftover_servers(data_dir):
            out.print(f"reusing the {server} an earlier run left running")
        db = database_url(data_dir, stop_on_exit=True)
        redis = redis_url(data_dir, keep)
        state.update(redis=redis)
        out.print(f"postgres  {db}\nredis     {redis}")
        from services.gateway.migrate import upgrade

        upgrade(db)
        engine_model = None
        if model and not engine_url:
            engine_url, protocol = f"http://127.0.0.1:{free_port()}", "openai"
            engine, engine_model = _engine(str(_servable(Path(model), data_dir)), engine_url)
            _load_model(engine_url, engine_model, supervisor.add(engine))
        assert engine_url is not None
        model_name = None
        if model and Path(model).is_dir():
            model_name = _register_base(data_dir / "models", Path(model))
        env = {
            **os.environ,
            "MEDCHAT_DATABASE_URL": db,
            "MEDCHAT_REDIS_URL": redis,
            "MEDCHAT_ENGINE_URL": engine_url,
            "MEDCHAT_ENGINE_PROTOCOL": protocol,
            "MEDCHAT_ENGINE_MODEL": engine_model or model or GatewaySettings().engine_model,
            "MEDCHAT_TOKENIZER_PATH": str(tokenizer),
            "MEDCHAT_PROFILE": profile,
            "MEDCHAT_FILES_DIR": str(data_dir / "files"),
            "MEDCHAT_MODELS_DIR": str(data_dir / "models"),
        }
        if model_name is not None:  # listed, fine-tuned and chosen under its registry name
            env["MEDCHAT_MODEL_NAME"] = model_name
        if engine_model is not None:
            # `transformers serve` refuses sampling fields outside OpenAI's schema.
            env.setdefault("MEDCHAT_ENGINE_SAMPLING_EXTRAS", "false")
            # It loads any model directory asked for: a fine-tune the admin chooses to serve
            # is named by its directory.
            env["MEDCHAT_ENGINE_MODEL_REF"] = "path"
        # The worker first: once the gateway answers, fine-tunes can be queued and run.
        worker = Child(
            "the worker",
            [
                *(sys.executable, "-m", "celery", "-A", "services.worker.celery_app", "worker"),
                *("-Q", "validate,train", "--pool", "solo", "--loglevel", "INFO"),
                # Embedded beat: the periodic retention pass.
                *("-B", "--schedule", str(data_dir / "celerybeat-schedule")),
                *("--hostname", f"medchat-{port}@%h"),
            ],
            env=env,
        )
        _wait_worker(redis, supervisor.add(worker), 90)
        gateway = Child(
            "the gateway",
            [sys.executable, "-m", "services.cli", "serve", "--port", str(port)],
            env=env,
            restart=False,
        )
        _wait(f"{base}/healthz", "the gateway", supervisor.add(gateway), 60)
        if demo_mode:
            out.print(demo.banner(base, *demo.create_admin(db)))
        else:
            out.print(
                f"[bold green]DISC-MedChat is up[/bold green]\n"
                f"gateway   {base}   (web UI, API docs {base}/docs, readiness {base}/readyz)\n"
                f"engine    {engine_url} ({protocol})\n"
                f"worker    celery (fine-tunes), broker {redis}\n"
                f"chat      medchat chat --url {base}\n"
                "[dim]Ctrl-C stops everything.[/dim]"
            )
        supervisor.watch()
    except KeyboardInterrupt:
        out.print("stopping…")
    finally:
        supervisor.stop_all()
        for server in keep:
            server.shutdown()
        state.release()
