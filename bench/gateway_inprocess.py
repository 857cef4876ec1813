"""Benchmark: the gateway's CPU per streamed answer, its ASGI app called in-process.

bench/gateway_overhead.py measures the whole gateway process over sockets, beside the bare
pass-through; on a shared 2-core machine its CPU ratio moves by ±0.05 from run to run. This
one calls both ASGI apps directly in ONE process, no uvicorn, no client sockets, and counts
the process's CPU time (time.process_time) over a closed-loop streaming load:

  passthrough   the bare FastAPI + aiohttp pass-through (../shared/bench/gateway/minimal_proxy.py,
                imported) to the emulator's /v1/chat/completions;
  gateway       services.gateway.app:create_app() (API key, rate limit, prompt rendering,
                TGI /generate_stream to the same emulator, usage recorded in Postgres).

What the apps do differently shows alone: the per-answer difference in ms is the gateway's own
work (the sockets, HTTP parsing and uvicorn, the same for both, are left out, so the ratio here
is not gateway_overhead's ratio). Rounds alternate the two apps; medians are printed.

The emulator, the throw-away database, the API key and the tokenizer are gateway_overhead's
(its `Bench.setup`, which also starts a gateway and a pass-through process that stay idle here).

    .venv/bin/python bench/gateway_inprocess.py                 # 64 tokens, C = 32, 5 rounds
    .venv/bin/python bench/gateway_inprocess.py --tokens 1      # the fixed cost per request
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import gateway_overhead as go  # the bench's setup, next to this file

App = Callable[[dict[str, Any], Any, Any], Awaitable[None]]
PATH = "/v1/chat/completions"


async def start(app: App) -> asyncio.Future[None]:
    """Run the app's lifespan start-up (as uvicorn would); returns the running lifespan."""
    inbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    outbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    await inbox.put({"type": "lifespan.startup"})
    scope = {"type": "lifespan", "asgi": {"version": "3.0"}, "state": {}}
    lifespan = asyncio.ensure_future(app(scope, inbox.get, outbox.put))
    message = await outbox.get()
    if message["type"] != "lifespan.startup.complete":
        raise RuntimeError(f"start-up failed: {message}")
    return lifespan


async def answer(app: App, body: bytes, auth: bytes | None, tokens: int) -> None:
    """One streamed request, as uvicorn would present it; fails unless all tokens came."""
    received, status, events = False, 0, 0

    async def receive() -> dict[str, Any]:
        nonlocal received
        if not received:
            received = True
            return {"type": "http.request", "body": body, "more_body": False}
        await asyncio.Event().wait()  # the client stays until the answer ends
        raise AssertionError("unreachable")

    async def send(message: dict[str, Any]) -> None:
        nonlocal status, events
        if message["type"] == "http.response.start":
            status = message["status"]
        else:
            events += message.get("body", b"").count(b"data:")

    headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(body))]
    if auth:
        headers.append((b"authorization", auth))
    scope = {
        "type": "http", "asgi": {"version": "3.0", "spec_version": "2.3"}, "http_version": "1.1",
        "method": "POST", "scheme": "http", "path": PATH, "raw_path": PATH.encode(),
        "query_string": b"", "root_path": "", "headers": headers,
        "client": (go.HOST, 50000), "server": (go.HOST, 8000), "state": {},
    }  # fmt: skip
    await app(scope, receive, send)
    if status != 200 or events < tokens:
        raise RuntimeError(f"{PATH} answered {status} with {events} events ({tokens} tokens asked)")


async def load(app: App, body: bytes, auth: bytes | None, a: argparse.Namespace, n: int) -> float:
    """CPU ms of this process per answer over `n` answers, `a.concurrency` at a time."""
    left = n

    async def client() -> None:
        nonlocal left
        while left > 0:
            left -= 1
            await answer(app, body, auth, a.tokens)

    cpu = time.process_time()
    await asyncio.gather(*(client() for _ in range(a.concurrency)))
    return (time.process_time() - cpu) * 1000 / n


async def run(bench: go.Bench, a: argparse.Namespace) -> None:
    os.environ.update(bench.gateway_env(), GWB_UPSTREAM=bench.up_url, GWB_CLIENT="aiohttp")
    sys.path.insert(0, str(bench.a.kit))
    import minimal_proxy  # the kit's pass-through; reads GWB_* when imported

    from services.gateway.app import create_app

    gateway = create_app()
    lifespan = await start(gateway)
    messages = [
        {"role": "system", "content": "你是一名医生。"},
        {
            "role": "user",
            "content": ("医生您好，我最近总是头痛，还有点发烧。" * 32)[: a.prompt_chars],
        },
    ]
    body = json.dumps(
        {"model": go.MODEL, "messages": messages, "stream": True, "max_tokens": a.tokens},
        ensure_ascii=False,
    ).encode()
    apps: dict[str, tuple[App, bytes | None]] = {
        "passthrough": (minimal_proxy.app, None),
        "gateway": (gateway, f"Bearer {bench.key}".encode()),
    }
    for app, auth in apps.values():  # warm-up: connections, caches
        await load(app, body, auth, a, 2 * a.concurrency)
    cpu: dict[str, list[float]] = {name: [] for name in apps}
    for r in range(a.rounds):
        for name, (app, auth) in apps.items():
            cpu[name].append(await load(app, body, auth, a, a.requests))
        print(f"round {r + 1}/{a.rounds}: " + ", ".join(f"{k} {v[-1]:.3f}" for k, v in cpu.items()))
    lifespan.cancel()
    gw, px = (statistics.median(cpu[k]) for k in ("gateway", "passthrough"))
    print(
        f"\n== C={a.concurrency}, {a.tokens} tokens, {a.requests} answers per app and round,"
        f" medians of {a.rounds} rounds (CPU ms per answer, one process)\n"
        f"gateway app {gw:.3f}, pass-through app {px:.3f}: the gateway's own work"
        f" {gw - px:+.3f} ms per answer ({gw / px:.2f}x in-process)"
    )


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--tokens", type=int, default=64)
    ap.add_argument("--concurrency", type=int, default=32)
    ap.add_argument("--requests", type=int, default=400, help="answers per app and round")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--prompt-chars", type=int, default=256)
    a = ap.parse_args()
    bench = go.Bench(go.parse_args(["--tokens", str(a.tokens)]))
    try:
        bench.setup()  # synchronous (it runs its own event loops): before ours starts
        import uvloop

        uvloop.install()
        asyncio.run(run(bench, a))
    finally:
        bench.teardown()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
