"""Benchmark: what each engine client costs per streamed generation, ours vs the maintained ones.

The gateway speaks to the engine through its own aiohttp clients
(services/gateway/engine/client.py). The issue asks to prefer the maintained clients unless
they cost more. This file measures, in one run and one client process, the cost of consuming
a 64-token streamed generation through each of:

  ours-tgi      our `TGIClient.generate()`           POST /generate_stream     (aiohttp)
  hf-tgi        huggingface_hub `AsyncInferenceClient(base_url).text_generation(
                    prompt, stream=True, details=True, max_new_tokens=64)`
                                                      POST / with "stream": true (httpx2)
  ours-openai   our `OpenAICompletionsClient.generate()`  POST /v1/completions  (aiohttp)
  openai-sdk    openai `AsyncOpenAI(base_url=.../v1).completions.create(
                    model, prompt, stream=True, max_tokens=64,
                    stream_options={"include_usage": True})`      (httpx2, the SDK default)
  openai-sdk-aio  the same with `http_client=openai.DefaultAioHttpClient()`, the SDK's own
                aiohttp transport (an extra, not in the issue; leave out with --clients)

Both TGI routes and both OpenAI requests reach the same code of the same emulator, and every
client asks for the same thing (64 tokens, greedy, details / usage on), so the engine side is
identical and what differs is the client.

Engine: ../shared/bench/gateway/upstream.py, started here as a separate process on a free port
and stopped at the end (by PID). It sends token i at arrival + ttft + i * itl, on both
protocols. Two modes:
  paced  --ttft-ms 20 --itl-ms 10: a realistic stream, 20 ms to the first token, 650 ms to
         the last; latency differences there are the client's own added latency.
  max    --ttft-ms 0 --itl-ms 0: the emulator sends as fast as it can; the streams per second
         and the client CPU per stream show each client's ceiling. The client and the emulator
         share the machine's cores, so read throughput together with the CPU figures.

Method: one pooled client object per kind for the whole run (as a server holds one). Each
concurrency level C first warms every client up (C streams each, discarded), then runs
--rounds rounds; in each round every client gets one batch of S streams from C closed-loop
workers, and the clients take turns, A B C D, D C B A, ... so drift hits all alike. Worker
starts are spread over one stream's duration in paced mode (no thundering herd at t=0).
Around each batch: gc.collect() before (untimed) and after (timed, so each client pays for its
own garbage; the objects alive after the warm-up are frozen out of the collector with
gc.freeze(), so a collection scans only what the batch made), and time.process_time()
deltas: the client process's CPU (user + system, all threads) for that batch. Only the
client runs in this process during a batch; the emulator runs in its own. uvloop is used when
installed.

Figures (per mode, client, C):
  ttft p50/p99     request sent -> first non-empty token, ms (nearest-rank percentiles over
                   all rounds' streams; with few streams p99 is close to the max).
  total p50/p99    request sent -> the stream's end (final event / [DONE] consumed), ms.
  ok / err         streams that delivered exactly 64 tokens, the expected text and a final
                   event, and the ones that did not (exception, short stream, wrong text).
  cpu ms/stream    client-process CPU per stream: the sum of the batches' CPU over the sum of
                   their streams; "range" gives the per-round spread (its width is the noise).
  vs ours          that client's CPU per stream / our client's for the same protocol, and
                   its ttft p50 minus ours.
  cores            client CPU seconds / wall seconds during the batches: near 1.0 the client
                   is CPU-bound and its latencies include its own queueing.
  streams/s        streams completed / batch wall time (closed loop; paced mode is capped by
                   the emulator's 650 ms per stream).
  emu late p99     how late the emulator sent tokens (from its /stats): a late emulator
                   inflates every client's latency alike.

Client settings: ours as the gateway builds them (make_client defaults); openai SDK defaults
(httpx2 pool max 1000 connections, 100 kept alive; 2 retries); huggingface_hub's async client
with its default factory (event hooks, follow_redirects) but the same pool limits as the openai
SDK, since httpx2's default of 100 connections would queue at C=128 and measure the pool,
not the client (huggingface_hub.set_async_client_factory is how a server would set it).

Run from the repository root:

    .venv/bin/python bench/engine_clients.py --quick                  # C = 1, 32; 2 rounds
    .venv/bin/python bench/engine_clients.py                          # C = 1, 32, 128; 3 rounds
    .venv/bin/python bench/engine_clients.py --concurrency 1,32 --rounds 5 --modes paced

Prints a table and one JSON line per (mode, client, C) on stdout, and appends the same lines
(with a run id) to bench/out/engine_clients.jsonl. The emulator's stderr goes to
bench/out/logs/engine_clients-emulator.log.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import importlib.util
import json
import subprocess
import sys
import time
import urllib.error
import urllib.request
from abc import ABC, abstractmethod
from collections import Counter
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

import httpx2  # noqa: E402  (after the sys.path set-up, like the other imports of ours)
import huggingface_hub  # noqa: E402
import openai  # noqa: E402
from huggingface_hub import AsyncInferenceClient  # noqa: E402
from huggingface_hub.utils import _http as hf_http  # noqa: E402

from services.core.devtools.processes import (  # noqa: E402
    NotReady,
    free_port,
    stop_process,
    wait_for_http,
)
from services.gateway.engine import (  # noqa: E402
    Finish,
    GenerationParams,
    OpenAICompletionsClient,
    TGIClient,
    Token,
)

KIT = REPO.parent / "shared" / "bench" / "gateway"
UPSTREAM = KIT / "upstream.py"
OUT = REPO / "bench" / "out"
HOST = "127.0.0.1"
MODEL = "emulator/medllm"
TOKENS = 64
PROMPT = "<reserved_102>我最近三天一直发烧，38.5 度，还有点咳嗽，需要去医院吗？<reserved_103>"
MODES: dict[str, tuple[float, float]] = {"paced": (20.0, 10.0), "max": (0.0, 0.0)}
CLIENTS = ("ours-tgi", "hf-tgi", "ours-openai", "openai-sdk", "openai-sdk-aio")
BASELINE = {"hf-tgi": "ours-tgi", "openai-sdk": "ours-openai", "openai-sdk-aio": "ours-openai"}
# Pool limits of the openai SDK (openai._constants.DEFAULT_CONNECTION_LIMITS), given to the
# huggingface_hub client too.
POOL_LIMITS = httpx2.Limits(max_connections=1000, max_keepalive_connections=100)

Json = dict[str, Any]


# ------------------------------------------------------------------------------ results


@dataclass(slots=True)
class Sample:
    ttft_s: float
    total_s: float


@dataclass
class Tally:
    """Everything one client gathered at one level, over all its rounds."""

    samples: list[Sample] = field(default_factory=list)
    errors: Counter[str] = field(default_factory=Counter)
    cpu_s: float = 0.0
    wall_s: float = 0.0
    streams: int = 0
    cpu_ms_per_stream_by_round: list[float] = field(default_factory=list)
    emulator_late_ms_p99: list[float] = field(default_factory=list)
    emulator_max_active: int = 0


class StreamError(Exception):
    """A stream that ended without the expected tokens, text or final event."""


# ------------------------------------------------------------------------------ the clients


class Bench(ABC):
    """One client kind: `stream()` consumes one generation and checks it."""

    name: str

    def __init__(self, expected_text: str):
        self.expected_text = expected_text

    @abstractmethod
    async def stream(self) -> Sample: ...

    @abstractmethod
    async def close(self) -> None: ...

    def check(self, pieces: list[str], finished: bool) -> None:
        if len(pieces) != TOKENS:
            raise StreamError(f"tokens={len(pieces)}")
        if not finished:
            raise StreamError("no final event")
        if "".join(pieces) != self.expected_text:
            raise StreamError("wrong text")


class OursBench(Bench):
    def __init__(self, name: str, client: TGIClient | OpenAICompletionsClient, expected: str):
        super().__init__(expected)
        self.name = name
        self.client = client
        self.params = GenerationParams(max_new_tokens=TOKENS)

    async def stream(self) -> Sample:
        t0 = time.perf_counter()
        first: float | None = None
        pieces: list[str] = []
        finished = False
        async for event in self.client.generate(PROMPT, self.params):
            if isinstance(event, Token):
                if event.text:
                    if first is None:
                        first = time.perf_counter()
                    pieces.append(event.text)
            elif isinstance(event, Finish):
                finished = event.completion_tokens == TOKENS
        end = time.perf_counter()
        self.check(pieces, finished)
        return Sample((first or end) - t0, end - t0)

    async def close(self) -> None:
        await self.client.close()


class HFBench(Bench):
    name = "hf-tgi"

    def __init__(self, base_url: str, expected: str):
        super().__init__(expected)
        self.client = AsyncInferenceClient(base_url=base_url)

    async def stream(self) -> Sample:
        t0 = time.perf_counter()
        first: float | None = None
        pieces: list[str] = []
        finished = False
        outputs = await self.client.text_generation(
            PROMPT, stream=True, details=True, max_new_tokens=TOKENS
        )
        async for output in outputs:
            if not output.token.special and output.token.text:
                if first is None:
                    first = time.perf_counter()
                pieces.append(output.token.text)
            if output.details is not None:
                finished = output.details.generated_tokens == TOKENS
        end = time.perf_counter()
        self.check(pieces, finished)
        return Sample((first or end) - t0, end - t0)

    def exit_stack_entries(self) -> int:
        """Streams whose context the client keeps on its exit stack until close()."""
        return len(getattr(self.client.exit_stack, "_exit_callbacks", ()))

    async def close(self) -> None:
        await self.client.close()  # type: ignore[no-untyped-call]


class OpenAISDKBench(Bench):
    def __init__(self, name: str, base_url: str, expected: str, *, aiohttp_transport: bool):
        super().__init__(expected)
        self.name = name
        http_client = openai.DefaultAioHttpClient() if aiohttp_transport else None
        self.client = openai.AsyncOpenAI(
            base_url=base_url + "/v1", api_key="x", http_client=http_client
        )

    async def stream(self) -> Sample:
        t0 = time.perf_counter()
        first: float | None = None
        pieces: list[str] = []
        finished = False
        chunks = await self.client.completions.create(
            model=MODEL,
            prompt=PROMPT,
            stream=True,
            max_tokens=TOKENS,
            stream_options={"include_usage": True},
        )
        async for chunk in chunks:
            for choice in chunk.choices:
                if choice.text:
                    if first is None:
                        first = time.perf_counter()
                    pieces.append(choice.text)
                if choice.finish_reason:
                    finished = True
        end = time.perf_counter()
        self.check(pieces, finished)
        return Sample((first or end) - t0, end - t0)

    async def close(self) -> None:
        await self.client.close()


def hf_async_client_factory() -> httpx2.AsyncClient:
    """huggingface_hub's default async client, with the openai SDK's pool limits."""
    return httpx2.AsyncClient(
        event_hooks={
            "request": [hf_http.async_hf_request_event_hook],
            "response": [hf_http.async_hf_response_event_hook],
        },
        follow_redirects=True,
        timeout=None,
        limits=POOL_LIMITS,
    )


def make_benches(names: Sequence[str], base_url: str, expected: str) -> list[Bench]:
    huggingface_hub.set_async_client_factory(hf_async_client_factory)
    benches: list[Bench] = []
    for name in names:
        if name == "ours-tgi":
            benches.append(OursBench(name, TGIClient(base_url), expected))
        elif name == "hf-tgi":
            benches.append(HFBench(base_url, expected))
        elif name == "ours-openai":
            benches.append(
                OursBench(name, OpenAICompletionsClient(base_url, model=MODEL), expected)
            )
        elif name == "openai-sdk":
            benches.append(OpenAISDKBench(name, base_url, expected, aiohttp_transport=False))
        elif name == "openai-sdk-aio":
            benches.append(OpenAISDKBench(name, base_url, expected, aiohttp_transport=True))
        else:
            raise SystemExit(f"unknown client {name!r}; choose from {', '.join(CLIENTS)}")
    return benches


# ------------------------------------------------------------------------------ the emulator


def load_upstream() -> ModuleType:
    """The emulator's module, for its deterministic reply text (needs starlette)."""
    spec = importlib.util.spec_from_file_location("gateway_bench_upstream", UPSTREAM)
    if spec is None or spec.loader is None:
        raise SystemExit(f"cannot load {UPSTREAM}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class Emulator:
    def __init__(self, ttft_ms: float, itl_ms: float, log_path: Path):
        self.port = free_port()
        self.base_url = f"http://{HOST}:{self.port}"
        log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log = log_path.open("ab")
        self.process = subprocess.Popen(
            [
                *(sys.executable, str(UPSTREAM), "--host", HOST, "--port", str(self.port)),
                *("--tokens", str(TOKENS), "--ttft-ms", str(ttft_ms), "--itl-ms", str(itl_ms)),
            ],
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        try:
            wait_for_http(self.base_url + "/health", self.process, timeout_s=20, log=log_path)
        except NotReady as exc:
            self.stop()
            raise SystemExit(f"the emulator did not start: {exc}") from None

    def stats(self, reset: bool) -> Json:
        url = self.base_url + "/stats" + ("?reset=1" if reset else "")
        with urllib.request.urlopen(url, timeout=5) as response:
            body: Json = json.loads(response.read())
            return body

    def stop(self) -> None:
        if self.process.poll() is None:
            stop_process(self.process)
        self._log.close()


# ------------------------------------------------------------------------------ the load


@dataclass
class Batch:
    samples: list[Sample]
    errors: Counter[str]
    cpu_s: float
    wall_s: float


async def run_batch(bench: Bench, concurrency: int, streams: int, stagger_s: float) -> Batch:
    """`streams` streams from `concurrency` closed-loop workers; CPU measured around it."""
    samples: list[Sample] = []
    errors: Counter[str] = Counter()

    async def worker(index: int, count: int) -> None:
        if stagger_s:
            await asyncio.sleep(index * stagger_s / concurrency)
        for _ in range(count):
            try:
                samples.append(await bench.stream())
            except Exception as exc:  # every failure is counted, never timed
                errors[f"{type(exc).__name__}: {str(exc)[:80]}"] += 1

    counts = [streams // concurrency + (i < streams % concurrency) for i in range(concurrency)]
    gc.collect()
    cpu0, wall0 = time.process_time(), time.perf_counter()
    await asyncio.gather(*(worker(i, n) for i, n in enumerate(counts) if n))
    gc.collect()
    cpu1, wall1 = time.process_time(), time.perf_counter()
    return Batch(samples, errors, cpu1 - cpu0, wall1 - wall0)


def pct(values: Sequence[float], p: float) -> float | None:
    """Nearest-rank percentile."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, min(len(ordered), round(p / 100 * len(ordered) + 0.4999)))
    return ordered[rank - 1]


def ms(value: float | None) -> float | None:
    return None if value is None else round(value * 1000, 2)


async def run_level(
    emulator: Emulator,
    benches: list[Bench],
    concurrency: int,
    rounds: int,
    streams: int,
    stagger_s: float,
) -> dict[str, Tally]:
    tallies = {b.name: Tally() for b in benches}
    for bench in benches:  # warm-up: opens the pools' connections; discarded
        await run_batch(bench, concurrency, concurrency, stagger_s)
    # What survives set-up and warm-up is never scanned again: a full collection of the
    # ~100k objects the imports leave costs ~55 ms, which would otherwise land on the batches.
    gc.collect()
    gc.freeze()
    for r in range(rounds):
        for bench in benches if r % 2 == 0 else benches[::-1]:
            emulator.stats(reset=True)
            batch = await run_batch(bench, concurrency, streams, stagger_s)
            upstream = emulator.stats(reset=False)
            tally = tallies[bench.name]
            tally.samples += batch.samples
            tally.errors += batch.errors
            tally.cpu_s += batch.cpu_s
            tally.wall_s += batch.wall_s
            tally.streams += streams
            tally.cpu_ms_per_stream_by_round.append(batch.cpu_s * 1000 / streams)
            if upstream.get("late_ms_p99") is not None:
                tally.emulator_late_ms_p99.append(float(upstream["late_ms_p99"]))
            tally.emulator_max_active = max(
                tally.emulator_max_active, int(upstream.get("max_active") or 0)
            )
    return tallies


def summarize(
    run_id: str, mode: str, concurrency: int, streams: int, tallies: dict[str, Tally]
) -> list[Json]:
    rows: list[Json] = []
    cpu_per_stream = {n: t.cpu_s * 1000 / t.streams for n, t in tallies.items() if t.streams}
    ttft_p50 = {n: pct([s.ttft_s for s in t.samples], 50) for n, t in tallies.items()}
    for name, t in tallies.items():
        ttft = [s.ttft_s for s in t.samples]
        total = [s.total_s for s in t.samples]
        row: Json = {
            "bench": "engine_clients",
            "run": run_id,
            "mode": mode,
            "client": name,
            "concurrency": concurrency,
            "streams_per_round": streams,
            "rounds": len(t.cpu_ms_per_stream_by_round),
            "ok": len(t.samples),
            "errors": sum(t.errors.values()),
            "error_kinds": dict(t.errors.most_common(3)),
            "ttft_ms_p50": ms(pct(ttft, 50)),
            "ttft_ms_p99": ms(pct(ttft, 99)),
            "total_ms_p50": ms(pct(total, 50)),
            "total_ms_p99": ms(pct(total, 99)),
            "cpu_ms_per_stream": round(cpu_per_stream.get(name, 0.0), 3),
            "cpu_ms_per_stream_by_round": [round(v, 3) for v in t.cpu_ms_per_stream_by_round],
            "client_cores": round(t.cpu_s / t.wall_s, 3) if t.wall_s else None,
            "streams_per_s": round(t.streams / t.wall_s, 2) if t.wall_s else None,
            "emulator_late_ms_p99_max": max(t.emulator_late_ms_p99, default=None),
            "emulator_max_active": t.emulator_max_active,
        }
        base = BASELINE.get(name)
        if base in tallies and cpu_per_stream.get(base):
            row["vs"] = base
            row["cpu_ratio_vs_ours"] = round(cpu_per_stream[name] / cpu_per_stream[base], 3)
            a, b = ttft_p50.get(name), ttft_p50.get(base)
            row["ttft_p50_diff_ms_vs_ours"] = ms(a - b) if a is not None and b is not None else None
        rows.append(row)
    return rows


# ------------------------------------------------------------------------------ output


def print_table(rows: list[Json], meta: Json) -> None:
    from rich.console import Console
    from rich.table import Table

    def f(value: Any, digits: int = 1) -> str:
        return "-" if value is None else f"{value:.{digits}f}"

    table = Table(title=f"engine clients, {TOKENS}-token streams ({meta['versions']})")
    for column in (
        "mode",
        "C",
        "client",
        "ok/err",
        "ttft p50/p99 ms",
        "total p50/p99 ms",
        "cpu ms/stream (range)",
        "vs ours cpu×, Δttft p50",
        "cores",
        "streams/s",
        "emu late p99",
    ):
        table.add_column(column, justify="left" if column in ("mode", "client") else "right")
    previous: tuple[str, int] | None = None
    for row in rows:
        level = (row["mode"], row["concurrency"])
        if previous is not None and level != previous:
            table.add_section()
        previous = level
        by_round = row["cpu_ms_per_stream_by_round"]
        vs = (
            f"{row['cpu_ratio_vs_ours']:.2f}×, {row['ttft_p50_diff_ms_vs_ours']:+.1f}"
            if "cpu_ratio_vs_ours" in row and row.get("ttft_p50_diff_ms_vs_ours") is not None
            else ""
        )
        table.add_row(
            row["mode"],
            str(row["concurrency"]),
            row["client"],
            f"{row['ok']}/{row['errors']}",
            f"{f(row['ttft_ms_p50'])}/{f(row['ttft_ms_p99'])}",
            f"{f(row['total_ms_p50'])}/{f(row['total_ms_p99'])}",
            f"{row['cpu_ms_per_stream']:.2f} ({min(by_round):.2f}-{max(by_round):.2f})",
            vs,
            f(row["client_cores"], 2),
            f(row["streams_per_s"]),
            f(row["emulator_late_ms_p99_max"]),
        )
    Console(width=200).print(table)


def versions() -> str:
    import aiohttp

    loop = type(asyncio.get_running_loop()).__module__.split(".")[0]
    return (
        f"aiohttp {aiohttp.__version__}, huggingface_hub {huggingface_hub.__version__}, "
        f"openai {openai.__version__}, httpx2 {httpx2.__version__}, loop {loop}"
    )


# ------------------------------------------------------------------------------ main


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--concurrency", help="levels, e.g. 1,32 (default 1,32,128; quick 1,32)")
    ap.add_argument("--rounds", type=int, help="rounds per level (default 3; quick 2)")
    ap.add_argument("--modes", default="paced,max", help="paced and/or max (default both)")
    ap.add_argument("--clients", default=",".join(CLIENTS), help="which clients, in turn order")
    ap.add_argument(
        "--streams",
        type=int,
        help="streams per client per round (default: paced max(3C, 12), max max(4C, 128); "
        "quick: paced max(2C, 8), max max(2C, 64))",
    )
    ap.add_argument("--quick", action="store_true", help="a smoke run: C = 1, 32, fewer streams")
    ap.add_argument("--out", type=Path, default=OUT / "engine_clients.jsonl")
    return ap.parse_args(argv)


def streams_for(args: argparse.Namespace, mode: str, concurrency: int) -> int:
    if args.streams:
        return int(args.streams)
    if mode == "paced":
        return max(2 * concurrency, 8) if args.quick else max(3 * concurrency, 12)
    return max(2 * concurrency, 64) if args.quick else max(4 * concurrency, 128)


async def amain(args: argparse.Namespace) -> list[Json]:
    levels = [
        int(c) for c in (args.concurrency or ("1,32" if args.quick else "1,32,128")).split(",")
    ]
    rounds = args.rounds or (2 if args.quick else 3)
    names = [n.strip() for n in args.clients.split(",") if n.strip()]
    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    for mode in modes:
        if mode not in MODES:
            raise SystemExit(f"unknown mode {mode!r}; choose from {', '.join(MODES)}")
    expected = str(load_upstream().full_text(TOKENS))
    run_id = time.strftime("%Y%m%dT%H%M%S")
    meta: Json = {"versions": versions()}
    rows: list[Json] = []
    notes: list[str] = []
    for mode in modes:
        ttft_ms, itl_ms = MODES[mode]
        emulator = Emulator(ttft_ms, itl_ms, OUT / "logs" / "engine_clients-emulator.log")
        benches = make_benches(names, emulator.base_url, expected)
        stagger_s = (ttft_ms + (TOKENS - 1) * itl_ms) / 1000
        try:
            for concurrency in levels:
                streams = streams_for(args, mode, concurrency)
                print(
                    f"[{mode}] C={concurrency}: {rounds} rounds x {len(benches)} clients "
                    f"x {streams} streams",
                    file=sys.stderr,
                    flush=True,
                )
                tallies = await run_level(
                    emulator, benches, concurrency, rounds, streams, stagger_s
                )
                level_rows = summarize(run_id, mode, concurrency, streams, tallies)
                for row in level_rows:
                    row["versions"] = meta["versions"]
                    print(json.dumps(row, ensure_ascii=False), flush=True)
                rows += level_rows
            for bench in benches:
                if isinstance(bench, HFBench):
                    notes.append(
                        f"[{mode}] huggingface_hub AsyncInferenceClient held "
                        f"{bench.exit_stack_entries()} stream contexts on its exit stack "
                        "at the end of the mode (they are released only by close())"
                    )
        finally:
            for bench in benches:
                await bench.close()
            emulator.stop()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with args.out.open("a", encoding="utf-8") as out:
        for row in rows:
            out.write(json.dumps(row, ensure_ascii=False) + "\n")
    print_table(rows, meta)
    for note in notes:
        print(note)
    print(f"appended {len(rows)} lines to {args.out}", file=sys.stderr)
    return rows


def run(main: Callable[[], Coroutine[Any, Any, Any]]) -> None:
    try:
        import uvloop
    except ImportError:
        asyncio.run(main())
        return
    uvloop.run(main())


def cli(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    run(lambda: amain(args))


if __name__ == "__main__":
    cli()
