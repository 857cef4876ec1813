"""`medchat up --demo`: the whole platform on a laptop-sized model it trains itself.

No GPU and no model download: a tiny Baichuan-shaped model (DISC-MedLLM's token ids and
turn markers, a 2-layer Llama body) is trained by the platform's own trainer on the shipped
DISC-Med-SFT rows, once, and cached; later starts reuse it. The model is a toy: it shows the
product working end to end, it is not DISC-MedLLM and says nothing medically meaningful.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import secrets
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

REPO = Path(__file__).resolve().parents[2]
DEFAULT_DATA = REPO.parent / "shared" / "data" / "disc-medllm" / "sft_examples.jsonl"
DEFAULT_CACHE = Path("var/demo")
MODEL_NAME = "disc-medchat-demo"  # the directory name is the model's id everywhere
STAMP = "medchat-demo.json"
ADMIN_EMAIL = "admin@demo.local"
CLINICIAN_EMAIL = "clinician@demo.local"  # the same password as the admin's, for the console

# Sized to train in under two minutes on two CPU cores (seen: 8 epochs in 45 s, loss 8.0 →
# 5.6; 16 epochs give Chinese that reads like a consultation and still fit the budget).
MODEL = {"vocab_size": 3000, "hidden_size": 128, "intermediate_size": 384, "layers": 2}
TRAINING = [
    *("--profile", "disc-medllm", "--max_seq_length", "512"),
    *("--num_train_epochs", "16", "--per_device_train_batch_size", "8"),
    *("--learning_rate", "5e-3", "--lr_scheduler_type", "cosine", "--warmup_steps", "10"),
    *("--logging_steps", "2", "--save_strategy", "no", "--report_to", "none"),
    *("--dataloader_num_workers", "0", "--disable_tqdm", "true", "--seed", "42"),
]


def recipe_key(data: Path) -> str:
    """Changes whenever the data or the recipe does: the cached model is rebuilt then."""
    h = hashlib.sha256(data.read_bytes())
    h.update(json.dumps([MODEL, TRAINING]).encode())
    return h.hexdigest()[:16]


def demo_model(cache: Path, data: Path, out: Console) -> Path:
    """The demo model's directory, trained now unless a matching one is cached."""
    if not data.is_file():
        raise click.ClickException(
            f"the demo trains on DISC-Med-SFT rows and cannot find {data}: give --demo-data"
            " FILE.jsonl (the repository expects ../shared/data/disc-medllm/ beside it)"
        )
    cache, data = cache.resolve(), data.resolve()  # the trainer runs from the repository
    model_dir = cache / MODEL_NAME
    key = recipe_key(data)
    try:
        if json.loads((model_dir / STAMP).read_text())["key"] == key:
            out.print(f"demo model: {model_dir} (cached)")
            return model_dir
    except (OSError, ValueError, KeyError):
        pass
    out.print(f"[bold]Training the demo model[/bold] on {data.name} (once; cached in {cache}/)")
    work = cache / "build"
    shutil.rmtree(work, ignore_errors=True)
    base = _random_base(work / "base", data)
    trained = _train(base, data, work, out)
    shutil.rmtree(model_dir, ignore_errors=True)
    trained.rename(model_dir)
    (model_dir / STAMP).write_text(json.dumps({"key": key, "data": str(data), "model": MODEL}))
    shutil.rmtree(work, ignore_errors=True)
    return model_dir


def _random_base(base: Path, data: Path) -> Path:
    """The tokenizer, trained on the data (seconds), and a randomly initialised model."""
    from transformers.utils import logging as hf_logging

    from services.core.devtools.tiny_model import save_random_llama
    from services.core.devtools.tiny_tokenizer import build_tiny_bpe_tokenizer, jsonl_texts

    hf_logging.disable_progress_bar()  # type: ignore[no-untyped-call]  # ours follows

    build_tiny_bpe_tokenizer(base, jsonl_texts(data), vocab_size=MODEL["vocab_size"])
    vocab = len(json.loads((base / "tokenizer.json").read_text())["model"]["vocab"])
    save_random_llama(
        base,
        vocab_size=vocab,
        hidden_size=MODEL["hidden_size"],
        intermediate_size=MODEL["intermediate_size"],
        layers=MODEL["layers"],
        tie_word_embeddings=True,
    )
    return base


def _train(base: Path, data: Path, work: Path, out: Console) -> Path:
    """The platform's trainer as a subprocess, its progress lines drawn as a bar."""
    output, progress_file, log = work / "out", work / "progress.jsonl", work / "train.log"
    command = [
        *(sys.executable, "-m", "trainer.train", "--model_name_or_path", str(base)),
        *("--train_file", str(data), "--output_dir", str(output)),
        *("--progress_file", str(progress_file), *TRAINING),
    ]
    with log.open("wb") as sink:
        proc = subprocess.Popen(command, stdout=sink, stderr=subprocess.STDOUT, cwd=REPO)
        try:
            _follow(proc, progress_file, out)
        finally:
            if proc.poll() is None:
                proc.terminate()
                proc.wait(10)
    if proc.returncode != 0:
        tail = log.read_text(errors="replace")[-2000:]
        raise click.ClickException(f"training the demo model failed (log {log}):\n{tail}")
    return output


def _follow(proc: subprocess.Popen[bytes], progress_file: Path, out: Console) -> None:
    columns = (
        TextColumn("  training"),
        BarColumn(),
        TextColumn("step {task.completed}/{task.total}  loss {task.fields[loss]}"),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=out, transient=False) as bar:
        task = bar.add_task("train", total=None, loss="…")
        seen = 0
        while True:
            done = proc.poll() is not None
            lines = progress_file.read_text().splitlines() if progress_file.exists() else []
            for line in lines[seen:]:
                event: dict[str, Any] = json.loads(line)
                if event["event"] == "start":
                    bar.update(task, total=event["max_steps"])
                elif event["event"] == "progress":
                    bar.update(task, completed=event["step"], loss=f"{event['loss']:.2f}")
            seen = len(lines)
            if done:
                return
            time.sleep(0.5)


def create_admin(database_url: str) -> tuple[str, str, str]:
    """The demo's admin: a console login with a fresh password and an admin API key, both
    new at every start (earlier demo keys are revoked), and a clinician with the same password
    for the clinician console. Returns the admin's email, the password, the key."""
    from sqlalchemy import select, update

    from services.core.db import utcnow
    from services.gateway.audit.service import record
    from services.gateway.auth.service import hash_password
    from services.gateway.db import make_engine, make_sessionmaker
    from services.store.apikeys import create_api_key
    from services.store.tables.auth import ApiKey, User

    password = secrets.token_urlsafe(12)

    async def work() -> str:
        engine = make_engine(database_url)
        try:
            async with make_sessionmaker(engine)() as db:
                user = (
                    await db.execute(select(User).where(User.email == ADMIN_EMAIL))
                ).scalar_one_or_none()
                if user is None:
                    user = User(email=ADMIN_EMAIL, role="admin")
                    db.add(user)
                user.role, user.password_hash = "admin", hash_password(password)
                clinician = (
                    await db.execute(select(User).where(User.email == CLINICIAN_EMAIL))
                ).scalar_one_or_none() or User(
                    email=CLINICIAN_EMAIL, display_name="演示医生 Demo Clinician"
                )
                clinician.role, clinician.password_hash = "clinician", user.password_hash
                db.add(clinician)
                await db.flush()
                await db.execute(
                    update(ApiKey)
                    .where(ApiKey.user_id == user.id, ApiKey.revoked_at.is_(None))
                    .values(revoked_at=utcnow())
                )
                row, key = await create_api_key(db=db, name="demo", role="admin", user_id=user.id)
                record(
                    db,
                    "admin.key_create",
                    via="cli",
                    target_type="api_key",
                    target_id=row.id,
                    details={"role": "admin", "name": "demo", "demo": True},
                )
                await db.commit()
                return key
        finally:
            await engine.dispose()

    return ADMIN_EMAIL, password, asyncio.run(work())


def banner(base: str, email: str, password: str, key: str) -> str:
    body = json.dumps(
        {"model": MODEL_NAME, "messages": [{"role": "user", "content": "我头痛三天了，怎么办？"}]},
        ensure_ascii=False,
    )
    sdk = (
        "from openai import OpenAI; "
        f"c = OpenAI(base_url='{base}/v1', api_key='{key}'); "
        f"print(c.chat.completions.create(model='{MODEL_NAME}', "
        "messages=[{'role': 'user', 'content': '我头痛三天了'}]).choices[0].message.content)"
    )
    return (
        "[bold green]DISC-MedChat demo is up[/bold green]\n"
        f"  patient chat  {base}/\n"
        f"  admin console {base}/admin   sign in as {email} / {password}\n"
        f"  clinicians    {base}/clinician   sign in as {CLINICIAN_EMAIL} / {password}\n"
        f"  API key       {key}   (admin; new at every start)\n"
        f"  curl          curl -s {base}/v1/chat/completions -H 'Authorization: Bearer {key}'"
        f" -H 'Content-Type: application/json' -d '{body}'\n"
        f'  openai SDK    .venv/bin/python -c "{sdk}"\n'
        f"  API docs      {base}/docs\n"
        "[bold yellow]The demo model is tiny (a 2-layer toy) and was trained here on 163"
        " DISC-Med-SFT dialogues: it is not DISC-MedLLM, its answers are noise, and nothing it"
        " says is medical advice.[/bold yellow]\n"
        "[dim]Ctrl-C stops everything.[/dim]"
    )
