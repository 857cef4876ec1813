"""Benchmark: a large JSONL dataset uploaded and validated through the API.

What it does, in one run:
  1. writes a JSONL file of --size-mb megabytes (DISC-MedLLM's shipped training rows, repeated)
     under bench/out/;
  2. measures the validator's own throughput on that file in this process (the format module's
     `validate_file` with the tokenizer, as the worker runs it), the baseline;
  3. starts a throw-away Postgres database (migrated), a gateway (`medchat serve`, one
     process) and a Celery worker (`--pool solo`), and uploads the file with an admin key,
     streamed from disk (`POST /v1/files`: the gateway streams it to the store, hashing and
     checking every line as it arrives), then waits for the worker's token-level report
     (`GET /v1/files/{id}` until `report` is set);
  4. prints upload MB/s, end-to-end MB/s (upload start to report ready) against the
     validator's own, and the growth of the gateway's and worker's resident memory (VmHWM,
     the kernel's peak, minus the RSS before the upload).

With --backend s3 the files go to an S3-compatible bucket instead of a directory: an
S3 server (moto's `moto_server`, a process of its own on this machine, in memory) is started
and the gateway and worker get MEDCHAT_FILES_BACKEND=s3 (multipart upload in 8 MiB parts;
the worker reads a downloaded copy).

Targets (the fine-tune jobs issue): gateway RSS grows < 50 MB during the upload; end to end
>= 50% of the validator's own throughput.

    .venv/bin/python bench/upload.py --size-mb 100     # quick
    .venv/bin/python bench/upload.py                   # 1 GB
    .venv/bin/python bench/upload.py --size-mb 200 --backend s3

Needs Postgres (user postgres, trust) and Redis on 127.0.0.1; cleans up after itself.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx

from services.core.devtools.processes import free_port, wait_for_http

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "bench" / "out"
SHARED_ROWS = ROOT.parent / "shared" / "data" / "disc-medllm" / "sft_examples.jsonl"
MEDCHAT = str(Path(sys.executable).with_name("medchat"))


def memory_kb(pid: int, field: str) -> int:
    """VmRSS (now) or VmHWM (the peak so far) of a process, in kB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"no {field} for pid {pid}")


def make_dataset(path: Path, size_mb: int) -> None:
    if path.exists() and path.stat().st_size >= size_mb << 20:
        return
    rows = SHARED_ROWS.read_bytes()
    with path.open("wb") as f:
        while f.tell() < size_mb << 20:
            f.write(rows)


async def _admin_sql(sql: str) -> None:
    import asyncpg

    conn = await asyncpg.connect("postgresql://postgres@127.0.0.1:5432/postgres")
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


def start_s3(log: Path) -> tuple[subprocess.Popen[bytes], dict[str, str]]:
    """moto's S3 server with one bucket; the settings and credentials that point at it."""
    import boto3

    port = free_port()
    url = f"http://127.0.0.1:{port}"
    proc = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
    )
    wait_for_http(f"{url}/moto-api/data.json", proc, timeout_s=30, what="moto", log=log)
    creds = {"AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench-secret"}
    bucket = "medchat-bench"
    boto3.client(
        "s3",
        endpoint_url=url,
        region_name="us-east-1",
        aws_access_key_id=creds["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=creds["AWS_SECRET_ACCESS_KEY"],
    ).create_bucket(Bucket=bucket)
    return proc, creds | {
        "AWS_EC2_METADATA_DISABLED": "true",
        "MEDCHAT_FILES_BACKEND": "s3",
        "MEDCHAT_S3_BUCKET": bucket,
        "MEDCHAT_S3_ENDPOINT_URL": url,
        "MEDCHAT_S3_REGION": "us-east-1",
    }


def upload_body(path: Path, boundary: str) -> tuple[Iterator[bytes], int]:
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="purpose"\r\n\r\nfine-tune\r\n'
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{path.name}"\r\n'
        "Content-Type: application/jsonl\r\n\r\n"
    ).encode()
    tail = f"\r\n--{boundary}--\r\n".encode()

    def body() -> Iterator[bytes]:
        yield head
        with path.open("rb") as f:
            while block := f.read(1 << 20):
                yield block
        yield tail

    return body(), len(head) + path.stat().st_size + len(tail)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--size-mb", type=int, default=1024)
    ap.add_argument("--backend", choices=("dir", "s3"), default="dir", help="the file store")
    args = ap.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    data = OUT / f"upload_{args.size_mb}mb.jsonl"
    make_dataset(data, args.size_mb)
    size_mb = data.stat().st_size / (1 << 20)
    tokenizer = OUT / "tokenizer"
    if not (tokenizer / "tokenizer.model").exists():
        subprocess.run(
            [MEDCHAT, "dev-tokenizer", str(tokenizer), "--from", str(SHARED_ROWS)],
            check=True,
            capture_output=True,
        )

    from services.core.chatformat import chat_format, load_tokenizer
    from services.core.chatformat.validate import validate_file

    fmt = chat_format(load_tokenizer(tokenizer))
    started = time.perf_counter()
    own = validate_file(data, chat_format=fmt)
    own_s = time.perf_counter() - started
    print(f"validator alone: {size_mb / own_s:.1f} MB/s ({own.rows} rows, {own_s:.1f} s)")

    database = f"medchat_upload_{uuid.uuid4().hex[:8]}"
    asyncio.run(_admin_sql(f'CREATE DATABASE "{database}"'))
    work = OUT / f"upload-run-{uuid.uuid4().hex[:6]}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("MEDCHAT_")}
    env.update(
        MEDCHAT_DATABASE_URL=f"postgresql+asyncpg://postgres@127.0.0.1:5432/{database}",
        MEDCHAT_REDIS_URL="redis://127.0.0.1:6379/9",
        MEDCHAT_FILES_DIR=str(work / "files"),
        MEDCHAT_MODELS_DIR=str(work / "models"),
        MEDCHAT_TOKENIZER_PATH=str(tokenizer),
        MEDCHAT_MAX_FILE_BYTES=str(4 << 30),
        MEDCHAT_ENGINE_TOKENIZATION_CHECK="warn",  # no engine here: uploads need none
    )
    procs: list[subprocess.Popen[bytes]] = []
    try:
        log = (work / "logs").resolve()
        log.mkdir(parents=True)
        if args.backend == "s3":
            s3, s3_env = start_s3(log / "moto.log")
            procs.append(s3)
            env.update(s3_env)
        subprocess.run([MEDCHAT, "db", "upgrade"], env=env, check=True, capture_output=True)
        key = subprocess.run(
            [MEDCHAT, "apikey", "create", "--role", "admin", "--name", "bench"],
            env=env,
            check=True,
            capture_output=True,
            text=True,
        ).stdout.strip()
        port = free_port()
        gateway = subprocess.Popen(
            [MEDCHAT, "serve", "--port", str(port)],
            env=env,
            stdout=(log / "gateway.log").open("wb"),
            stderr=subprocess.STDOUT,
        )
        worker = subprocess.Popen(
            [
                *(sys.executable, "-m", "celery", "-A", "services.worker.celery_app", "worker"),
                *("-Q", "validate,train", "--pool", "solo", "-l", "WARNING"),
            ],
            env=env,
            stdout=(log / "worker.log").open("wb"),
            stderr=subprocess.STDOUT,
        )
        procs += [gateway, worker]
        base = f"http://127.0.0.1:{port}"
        wait_for_http(
            f"{base}/healthz", gateway, timeout_s=60, what="gateway", log=log / "gateway.log"
        )
        time.sleep(2)  # the worker imports its tasks
        client = httpx.Client(
            base_url=base, headers={"Authorization": f"Bearer {key}"}, timeout=None
        )
        gw_before, wk_before = memory_kb(gateway.pid, "VmRSS"), memory_kb(worker.pid, "VmRSS")
        boundary = uuid.uuid4().hex
        body, length = upload_body(data, boundary)
        t0 = time.perf_counter()
        r = client.post(
            "/v1/files",
            content=body,
            headers={
                "Content-Type": f"multipart/form-data; boundary={boundary}",
                "Content-Length": str(length),
            },
        )
        upload_s = time.perf_counter() - t0
        if r.status_code != 200:
            raise SystemExit(f"upload failed: {r.status_code} {r.text[:500]}")
        file_id = r.json()["id"]
        gw_peak = memory_kb(gateway.pid, "VmHWM")
        while client.get(f"/v1/files/{file_id}").json()["report"] is None:
            if worker.poll() is not None:
                raise SystemExit("the worker died; see " + str(log / "worker.log"))
            time.sleep(0.2)
        total_s = time.perf_counter() - t0
        wk_peak = memory_kb(worker.pid, "VmHWM")
    finally:
        for p in procs:
            p.send_signal(signal.SIGTERM)
        for p in procs:
            try:
                p.wait(20)
            except subprocess.TimeoutExpired:
                p.kill()
        asyncio.run(_admin_sql(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)'))
        import shutil

        shutil.rmtree(work, ignore_errors=True)

    gw_growth, wk_growth = (gw_peak - gw_before) / 1024, (wk_peak - wk_before) / 1024
    own_rate, e2e = size_mb / own_s, size_mb / total_s
    result = {
        "backend": args.backend,
        "size_mb": round(size_mb, 1),
        "validator_mb_s": round(own_rate, 1),
        "upload_mb_s": round(size_mb / upload_s, 1),
        "end_to_end_mb_s": round(e2e, 1),
        "end_to_end_vs_validator": round(e2e / own_rate, 3),
        "gateway_rss_growth_mb": round(gw_growth, 1),
        "worker_rss_growth_mb": round(wk_growth, 1),
        "gateway_rss_before_mb": round(gw_before / 1024, 1),
        "worker_rss_before_mb": round(wk_before / 1024, 1),
    }
    print(json.dumps(result))
    print(f"upload            {size_mb / upload_s:8.1f} MB/s  ({upload_s:.1f} s, lines checked)")
    print(f"end to end        {e2e:8.1f} MB/s  (upload start to the worker's report)")
    print(f"validator alone   {own_rate:8.1f} MB/s")
    print(f"gateway RSS       +{gw_growth:.1f} MB peak over {gw_before / 1024:.0f} MB")
    print(f"worker RSS        +{wk_growth:.1f} MB peak over {wk_before / 1024:.0f} MB")
    checks = [
        (gw_growth < 50, f"gateway RSS grows < 50 MB: +{gw_growth:.1f}"),
        (e2e >= 0.5 * own_rate, f"end to end >= 50% of the validator: {e2e / own_rate:.0%}"),
    ]
    for ok, text in checks:
        print(("PASS  " if ok else "MISS  ") + text)
    with (OUT / "upload.jsonl").open("a") as f:
        f.write(json.dumps(result) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
