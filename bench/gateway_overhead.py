"""Benchmark: what the gateway adds to a streaming chat completion, against the engine alone.

The same streaming load (OpenAI chat completions, 64 tokens per answer) goes, interleaved in one
run, to four targets:

  direct        the engine emulator's own /v1/chat/completions;
  passthrough   the bare FastAPI + aiohttp pass-through (../shared/bench/gateway/minimal_proxy.py,
                run from the kit, with the kit's interpreter): no auth, no parsing, no
                persistence, the floor a Python gateway can reach on this machine;
  gateway       the gateway's /v1/chat/completions (API key, rate limit, prompt rendering, TGI
                /generate_stream to the same emulator, usage recorded in Postgres);
  direct_again  the emulator again: an A/A check whose "overhead" is the noise of the run.

The emulator (../shared/bench/gateway/upstream.py) sends token i at arrival + 20 ms + i * 10 ms
and honours the requested token count, on both protocols; the gateway passes the client's
max_tokens on as max_new_tokens (MEDCHAT_MAX_NEW_TOKENS is set to at least --tokens), so both
paths stream the same 64 tokens, and the load generator (../shared/bench/gateway/bench.py, in its
own process: closed-loop streaming clients, interleaved rounds, steady-state timing) counts any
other token count as an error.

What it sets up, and removes at the end (also on Ctrl-C or an error; processes by PID):
  * a tiny Baichuan-shaped tokenizer (`medchat dev-tokenizer`) in bench/out/;
  * a throw-away Postgres database (migrated with `medchat db upgrade`) and one integrator key
    (`medchat apikey create`); Redis db 14;
  * the emulator, and the gateway as ONE uvicorn worker process (uvloop, httptools, no access
    log, keep-alive 75 s like the emulator). The gateway is started by this file
    (`--serve-gateway PORT`): `services.gateway.app:create_app()` with its settings from
    MEDCHAT_* environment variables, plus a SQLAlchemy statement counter and a
    GET /_bench/sql route that reports it (the only addition; it costs microseconds).
    The rate limits are raised (MEDCHAT_RATE_LIMIT_*_PER_MINUTE) so that they never refuse
    the load; the limiter itself still runs on every request. The emulator has no /tokenize,
    so MEDCHAT_ENGINE_TOKENIZATION_CHECK=warn (the startup canary reports, never blocks).

Printed per concurrency level: TTFT and total-time p50/p99 for each target, the overhead
(gateway - direct, passthrough - direct, and the A/A noise), errors, throughput ratio, the CPU
ms per request of the gateway and of the pass-through, SQL statements per gateway request, the
most Postgres connections the gateway held (and how many sat idle in a transaction), and
PASS/MISS for the issue's targets that apply:
  * C = 32:  TTFT overhead p50 <= 3 ms and p99 <= 12 ms, gateway CPU per request <= 1.3x the
             pass-through's (measured in the same run);
  * C = 500: zero errors and TTFT overhead p99 <= 50 ms;
  * Postgres writes per chat turn <= 3 statements (a few patient chat turns,
    POST /api/sessions/{id}/messages, are counted after the load; the OpenAI route's writes
    per request are shown per level).

Run from the repository root:

    .venv/bin/python bench/gateway_overhead.py --quick      # smoke run: C = 1, 8
    .venv/bin/python bench/gateway_overhead.py              # C = 1, 32
    .venv/bin/python bench/gateway_overhead.py --big        # C = 1, 32, 500
    .venv/bin/python bench/gateway_overhead.py --concurrency 1,32,128 --profile
    .venv/bin/python bench/gateway_overhead.py --issue      # C = 32, 128, 500, three repeats

With --repeat N every level runs N times (same processes, same database) and the closing table
gives each figure's median over the repeats (the machine is shared: one run is noise).

Tools: upstream.py and bench.py need starlette, uvicorn, uvloop, httptools, aiohttp, orjson and
(optionally) psutil; the repository's venv has all but psutil. They run with --tools-python,
by default /tmp/gwb-venv/bin/python when it exists (create it with
`python3 -m venv /tmp/gwb-venv && /tmp/gwb-venv/bin/pip install -r
../shared/bench/gateway/requirements.txt py-spy`), else this interpreter. Nothing is installed
into the repository's venv. --profile samples the gateway with py-spy during the last level and
prints the hottest frames (needs py-spy: on PATH, --py-spy, or /tmp/gwb-venv/bin/py-spy).

A level that has not finished after --level-timeout seconds (default 300) is stopped and
reported as unfinished (MISS for its targets), with the Postgres connection figures above.

Raw results: one JSON line per level is appended to bench/out/gateway_overhead.jsonl
(bench.py's format; ../shared/bench/gateway/summarize.py reads it), logs go to bench/out/logs/.
Needs Postgres (user postgres, trust auth) and Redis on 127.0.0.1 unless told otherwise.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import resource
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import types
import urllib.error
import urllib.request
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

KIT = REPO.parent / "shared" / "bench" / "gateway"
SFT_EXAMPLES = REPO.parent / "shared" / "data" / "disc-medllm" / "sft_examples.jsonl"
OUT = REPO / "bench" / "out"
TOOLS_VENV_PYTHON = Path("/tmp/gwb-venv/bin/python")
TOOLS_VENV_PYSPY = Path("/tmp/gwb-venv/bin/py-spy")
HOST = "127.0.0.1"
MODEL = "medllm"
SQL_ROUTE = "/_bench/sql"
WRITE_VERBS = ("INSERT", "UPDATE", "DELETE", "MERGE")
WRITES = (*WRITE_VERBS, "WITH(write)")

# The issue's targets (one gateway worker process).
TARGET_C = 32
TARGET_P50_MS = 3.0
TARGET_P99_MS = 12.0
TARGET_CPU_RATIO = 1.3  # gateway CPU ms per request / the pass-through's, same run
BIG_C = 500
BIG_P99_MS = 50.0
TARGET_WRITES_PER_TURN = 3.0

Json = dict[str, Any]


# ------------------------------------------------------------------------------ gateway launcher


def serve_gateway(port: int) -> None:
    """Run the gateway in this process: one uvicorn worker, settings from MEDCHAT_*."""
    import uvicorn
    from sqlalchemy import event
    from sqlalchemy.engine import Engine

    from services.gateway.app import create_app

    counts: Counter[str] = Counter()

    @event.listens_for(Engine, "before_cursor_execute")
    def _count(*args: Any) -> None:  # (conn, cursor, statement, parameters, context, many)
        sql = str(args[2])
        words = sql.split(None, 1)
        verb = words[0].upper() if words else "?"
        if verb == "WITH":  # a CTE: a write when it inserts, updates or deletes
            upper = sql.upper()
            verb = "WITH(write)" if any(f"{w} " in upper for w in WRITE_VERBS) else "WITH"
        counts[verb] += 1

    app = create_app()

    @app.get(SQL_ROUTE, include_in_schema=False)
    async def sql_counts() -> dict[str, int]:
        return dict(counts)

    # Ahead of the web UI's catch-all mount, which create_app adds last.
    app.router.routes.insert(0, app.router.routes.pop())

    uvicorn.run(
        app,
        host=HOST,
        port=port,
        loop="uvloop",
        http="httptools",
        log_level="warning",
        access_log=False,
        backlog=4096,
        timeout_keep_alive=75,
    )


# ------------------------------------------------------------------------------ helpers


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def http(
    method: str, url: str, body: Json | None = None, headers: dict[str, str] | None = None
) -> tuple[int, bytes]:
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method, headers=dict(headers or {}))
    if data is not None:
        req.add_header("content-type", "application/json")
    try:
        with urllib.request.urlopen(req, timeout=60) as resp:
            return int(resp.status), resp.read()
    except urllib.error.HTTPError as exc:
        return int(exc.code), exc.read()


def wait_http(url: str, proc: subprocess.Popen[bytes], log: Path, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{url}: the process exited ({proc.returncode}); see {log}")
        with contextlib.suppress(OSError):
            if http("GET", url)[0] == 200:
                return
        time.sleep(0.2)
    raise RuntimeError(f"{url} did not answer 200 within {timeout_s:.0f} s; see {log}")


def tail(path: Path, lines: int = 25) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def pg_url(admin_url: str, database: str, driver: str = "postgresql") -> str:
    parts = urlsplit(admin_url)
    return urlunsplit((driver, parts.netloc, "/" + database, parts.query, ""))


async def _pg(url: str, sql: str) -> Any:
    import asyncpg

    conn = await asyncpg.connect(url)
    try:
        return await conn.fetchval(sql)
    finally:
        await conn.close()


def pg(url: str, sql: str) -> Any:
    return asyncio.run(_pg(url, sql))


def fmt(x: float | None, sign: bool = False, digits: int = 1) -> str:
    if x is None:
        return "-"
    return f"{x:+.{digits}f}" if sign else f"{x:.{digits}f}"


def verdict(ok: bool) -> str:
    return "PASS" if ok else "MISS"


def get(d: Any, *keys: str) -> Any:
    for k in keys:
        if not isinstance(d, dict):
            return None
        d = d.get(k)
    return d


# ------------------------------------------------------------------------------ the run


@dataclass
class Level:
    concurrency: int
    requests: int
    result: Json | None  # None: bench.py did not finish within --level-timeout
    sql: Counter[str]
    key_requests: int
    db: dict[str, int]  # most connections to the bench database seen, and of them idle in tx
    pool_timeouts: int  # SQLAlchemy QueuePool timeouts in the gateway's log during the level
    wall_s: float
    profile: list[str] = field(default_factory=list)


class DbSampler:
    """Polls pg_stat_activity twice a second: how many connections the gateway holds, and
    how many of them sit idle inside a transaction (held across a streamed answer)."""

    def __init__(self, admin_url: str, database: str):
        self.admin_url = admin_url
        self.database = database
        self.most = {"connections": 0, "idle_in_transaction": 0}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=lambda: asyncio.run(self._poll()), daemon=True)

    async def _poll(self) -> None:
        import asyncpg

        conn = await asyncpg.connect(self.admin_url)
        try:
            while not self._stop.is_set():
                row = await conn.fetchrow(
                    "SELECT count(*) AS n, count(*) FILTER (WHERE state = 'idle in transaction')"
                    " AS idle_tx FROM pg_stat_activity WHERE datname = $1",
                    self.database,
                )
                self.most["connections"] = max(self.most["connections"], int(row["n"]))
                self.most["idle_in_transaction"] = max(
                    self.most["idle_in_transaction"], int(row["idle_tx"])
                )
                await asyncio.sleep(0.5)
        finally:
            await conn.close()

    def __enter__(self) -> DbSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(5)


class Bench:
    def __init__(self, args: argparse.Namespace):
        self.a = args
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self.logs = OUT / "logs"
        self.db_name = f"medchat_bench_{os.getpid()}_{secrets.token_hex(3)}"
        self.db_created = False
        self.admin_url: str = args.pg_admin_url
        self.db_url = pg_url(self.admin_url, self.db_name)
        self.gw_db_url = pg_url(self.admin_url, self.db_name, "postgresql+asyncpg")
        self.tokenizer = OUT / "gateway-tokenizer"
        self.key = ""
        self.up_port = free_port()
        self.gw_port = free_port()
        self.px_port = free_port()
        self.up_url = f"http://{HOST}:{self.up_port}"
        self.px_url = f"http://{HOST}:{self.px_port}"
        self.gw_url = f"http://{HOST}:{self.gw_port}"

    # --- processes ---------------------------------------------------------------------------

    def start(
        self, name: str, cmd: list[str], env: dict[str, str] | None = None, cwd: Path = REPO
    ) -> int:
        log = self.logs / f"{name}.log"
        with log.open("wb") as f:
            proc = subprocess.Popen(
                cmd,
                cwd=cwd,
                env=env,
                stdout=f,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # Ctrl-C reaches only us; we stop them by PID
            )
        self.procs[name] = proc
        return proc.pid

    def stop(self, name: str, sig: int = signal.SIGTERM, wait_s: float = 15.0) -> None:
        proc = self.procs.pop(name, None)
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(sig)
        try:
            proc.wait(wait_s)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)

    # --- setup ---------------------------------------------------------------------------------

    def medchat(self, *argv: str) -> str:
        exe = Path(sys.executable).with_name("medchat")
        cmd = [str(exe), *argv]
        done = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise RuntimeError(f"medchat {argv[0]} failed:\n{done.stdout}\n{done.stderr}")
        return done.stdout

    def setup(self) -> None:
        self.logs.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(ValueError, OSError):  # 500 streams need ~2,000 sockets
            _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        self.say(f"building the tokenizer in {self.tokenizer.relative_to(REPO)}")
        shutil.rmtree(self.tokenizer, ignore_errors=True)
        self.medchat("dev-tokenizer", str(self.tokenizer), "--from", str(SFT_EXAMPLES))
        self.say(f"creating database {self.db_name}")
        pg(self.admin_url, f'CREATE DATABASE "{self.db_name}"')
        self.db_created = True
        self.medchat("db", "upgrade", "--database-url", self.gw_db_url)
        out = self.medchat(
            "apikey", "create", "--name", "bench", "--role", "integrator", "--database-url",
            self.gw_db_url,
        )  # fmt: skip
        self.key = next(w for w in out.split() if w.startswith("mk-"))

        tools = str(self.a.tools_python)
        self.say(f"starting the emulator on :{self.up_port} ({tools})")
        self.start(
            "upstream",
            [
                tools, str(self.a.kit / "upstream.py"), "--host", HOST, "--port", str(self.up_port),
                "--tokens", str(self.a.tokens), "--ttft-ms", "20", "--itl-ms", "10",
            ],
        )  # fmt: skip
        self.say(f"starting the bare pass-through on :{self.px_port} (aiohttp)")
        self.start(
            "passthrough",
            [
                tools, str(self.a.kit / "minimal_proxy.py"), "--host", HOST,
                "--port", str(self.px_port), "--upstream", self.up_url, "--client", "aiohttp",
            ],
            cwd=self.a.kit,
        )  # fmt: skip
        env = {k: v for k, v in os.environ.items() if not k.startswith("MEDCHAT_")}
        env.update(self.gateway_env())
        self.say(f"starting the gateway on :{self.gw_port} (one uvicorn worker)")
        self.start(
            "gateway", [sys.executable, str(Path(__file__).resolve()), "--serve-gateway",
                        str(self.gw_port)], env,
        )  # fmt: skip
        wait_http(self.up_url + "/health", self.procs["upstream"], self.logs / "upstream.log", 30)
        wait_http(
            self.px_url + "/health", self.procs["passthrough"], self.logs / "passthrough.log", 30
        )
        wait_http(self.gw_url + "/healthz", self.procs["gateway"], self.logs / "gateway.log", 60)
        status, body = http("GET", self.gw_url + "/readyz")
        self.say(f"gateway /readyz {status}: {body.decode(errors='replace')}")
        self.check_same_tokens()

    def gateway_env(self) -> dict[str, str]:
        """The gateway's MEDCHAT_* settings for this bench (also used by gateway_inprocess.py)."""
        return dict(
            MEDCHAT_ENVIRONMENT="dev",
            MEDCHAT_DATABASE_URL=self.gw_db_url,
            MEDCHAT_REDIS_URL=self.a.redis_url,
            MEDCHAT_ENGINE_URL=self.up_url,
            MEDCHAT_ENGINE_PROTOCOL="tgi",
            MEDCHAT_TOKENIZER_PATH=str(self.tokenizer),
            MEDCHAT_MAX_NEW_TOKENS=str(max(64, self.a.tokens)),
            # The limiter still runs (one Redis script per request) but must not refuse the
            # load: the bench sends far more than an integrator's default allowance.
            MEDCHAT_RATE_LIMIT_KEY_PER_MINUTE="100000000",
            MEDCHAT_RATE_LIMIT_PATIENT_PER_MINUTE="100000000",
            # The emulator has no /tokenize, so the startup tokenization canary cannot pass;
            # "warn" lets the gateway serve anyway (the canary is not what is measured).
            MEDCHAT_ENGINE_TOKENIZATION_CHECK="warn",
        )

    def check_same_tokens(self) -> None:
        """One non-streamed request each way: both must return exactly --tokens tokens."""
        body: Json = {
            "model": MODEL,
            "messages": [{"role": "user", "content": "医生您好，我头痛。"}],
            "max_tokens": self.a.tokens,
        }
        auth = {"authorization": f"Bearer {self.key}"}
        counts = {}
        for name, url, headers in (
            ("direct", self.up_url, {}),
            ("gateway", self.gw_url, auth),
        ):
            status, raw = http("POST", url + "/v1/chat/completions", body, headers)
            if status != 200:
                raise RuntimeError(f"{name} answered {status}: {raw[:500]!r}")
            counts[name] = get(json.loads(raw), "usage", "completion_tokens")
        self.say(f"completion tokens for max_tokens={self.a.tokens}: {counts}")
        if len(set(counts.values())) != 1 or counts["direct"] != self.a.tokens:
            raise RuntimeError(f"token counts differ between the paths: {counts}")

    # --- measurements ------------------------------------------------------------------------

    def sql_counts(self) -> Counter[str]:
        status, raw = http("GET", self.gw_url + SQL_ROUTE)
        if status != 200:
            raise RuntimeError(f"{SQL_ROUTE} answered {status}")
        return Counter({str(k): int(v) for k, v in json.loads(raw).items()})

    def key_requests(self) -> int:
        return int(pg(self.db_url, "SELECT coalesce(sum(requests), 0) FROM api_keys"))

    def level(self, conc: int, nreq: int, blocks: int, profile: bool) -> Level:
        gw_target = f"gateway={self.gw_url};model={MODEL};key={self.key}"
        cmd = [
            str(self.a.tools_python), str(self.a.kit / "bench.py"), "--protocol", "openai-chat",
            "--target", f"direct={self.up_url}", "--target", f"passthrough={self.px_url}",
            "--target", gw_target,
            "--target", f"direct_again={self.up_url}", "--baseline", "direct",
            "--concurrency", str(conc), "--requests", str(nreq), "--blocks", str(blocks),
            "--warmup", str(self.a.warmup), "--tokens", str(self.a.tokens),
            "--upstream-stats", self.up_url + "/stats",
            "--pid", f"gateway={self.procs['gateway'].pid}",
            "--pid", f"upstream={self.procs['upstream'].pid}",
            "--pid", f"passthrough={self.procs['passthrough'].pid}",
            "--out", str(self.a.out), "--label", self.a.label, "-v",
        ]  # fmt: skip
        sql0, keys0 = self.sql_counts(), self.key_requests()
        gw_log = self.logs / "gateway.log"
        log0 = gw_log.stat().st_size
        prof_file = OUT / f"gateway-profile-c{conc}.txt"
        if profile:
            self.start_profile(prof_file)
        self.say(f"C={conc}: {nreq} requests per target in {blocks} rounds")
        t0 = time.monotonic()
        result: Json | None = None
        with DbSampler(self.admin_url, self.db_name) as db:
            proc = subprocess.Popen(
                cmd, cwd=self.a.kit, stdout=subprocess.PIPE, start_new_session=True
            )
            self.procs["bench"] = proc
            try:
                stdout, _ = proc.communicate(timeout=self.a.level_timeout)
            except subprocess.TimeoutExpired:
                self.say(f"C={conc}: not finished after {self.a.level_timeout:g} s; stopping it")
                self.stop("bench")
                stdout = b""
            else:
                if proc.returncode != 0:
                    raise RuntimeError(f"bench.py exited {proc.returncode}")
                lines = [ln for ln in stdout.decode().splitlines() if ln.startswith("{")]
                result = json.loads(lines[-1])
            finally:
                self.procs.pop("bench", None)
                if profile:
                    self.stop("py-spy", signal.SIGINT, 60)
        wall = time.monotonic() - t0
        with gw_log.open("rb") as f:
            f.seek(log0)
            pool_timeouts = f.read().count(b"QueuePool limit")
        sql = self.sql_counts()
        sql.subtract(sql0)
        lvl = Level(
            conc, nreq, result, sql, self.key_requests() - keys0, db.most, pool_timeouts, wall
        )
        if profile:
            lvl.profile = top_frames(prof_file)
        return lvl

    def start_profile(self, out_file: Path) -> None:
        spy = self.a.py_spy
        if not spy:
            self.say("--profile: py-spy not found (see --py-spy); not profiling")
            return
        self.start(
            "py-spy",
            [
                str(spy), "record", "--pid", str(self.procs["gateway"].pid),
                "--rate", str(self.a.profile_rate),
                "--format", "raw", "--full-filenames", "--nolineno", "--nonblocking",
                "--output", str(out_file),
            ],
        )  # fmt: skip
        time.sleep(1.0)

    def chat_turn_writes(self, turns: int) -> list[Counter[str]]:
        """SQL statements of each of a few patient chat turns (streamed, one session)."""
        auth = {"authorization": f"Bearer {self.key}"}
        status, raw = http("POST", self.gw_url + "/api/sessions", {"title": "bench"}, auth)
        if status != 201:
            raise RuntimeError(f"POST /api/sessions answered {status}: {raw[:300]!r}")
        sid = json.loads(raw)["id"]
        out: list[Counter[str]] = []
        for i in range(turns):
            before = self.sql_counts()
            body = {"content": f"医生您好，我发烧第{i + 1}天了，怎么办？", "stream": True,
                    "max_new_tokens": self.a.tokens}  # fmt: skip
            status, raw = http("POST", f"{self.gw_url}/api/sessions/{sid}/messages", body, auth)
            if status != 200 or b"event: done" not in raw:
                raise RuntimeError(f"chat turn {i + 1}: {status} {raw[-300:]!r}")
            after = self.sql_counts()
            after.subtract(before)
            out.append(+after)
        return out

    # --- teardown ------------------------------------------------------------------------------

    def teardown(self) -> None:
        for name in ("bench", "py-spy", "gateway", "passthrough", "upstream"):
            try:
                self.stop(name, signal.SIGINT if name == "py-spy" else signal.SIGTERM)
            except Exception as exc:  # keep going: every process must be stopped
                self.say(f"stopping {name}: {exc}")
        for name in list(self.procs):
            self.stop(name)
        if self.db_created and not self.a.keep_db:
            try:
                pg(self.admin_url, f'DROP DATABASE IF EXISTS "{self.db_name}" WITH (FORCE)')
                self.say(f"dropped database {self.db_name}")
            except Exception as exc:
                self.say(f"could not drop database {self.db_name}: {exc}")
        elif self.db_created:
            self.say(f"kept database {self.db_name} ({self.gw_db_url})")

    @staticmethod
    def say(msg: str) -> None:
        print(f"[gateway_overhead] {msg}", file=sys.stderr, flush=True)


# ------------------------------------------------------------------------------ profile


def frame_package(frame: str) -> str:
    """'func (path/to/file.py)' -> a package-level bucket."""
    path = frame.rsplit(" (", 1)[-1].rstrip(")")
    if path.endswith("asyncio/runners.py"):
        return "event loop (uvloop, native)"
    if "site-packages/" in path:
        return path.split("site-packages/", 1)[1].split("/", 1)[0].removesuffix(".py")
    if "/services/" in path or path.startswith("services/"):
        rel = "services/" + path.split("services/", 1)[1]
        return ".".join(rel.split("/")[:3]).removesuffix(".py")
    return "stdlib:" + Path(path).stem


def top_frames(path: Path, n: int = 12) -> list[str]:
    """The hottest frames (self time) and packages of a py-spy raw (collapsed) profile."""
    if not path.exists():
        return [f"(no profile at {path})"]
    own: Counter[str] = Counter()
    pkg: Counter[str] = Counter()
    repo_incl: Counter[str] = Counter()
    total = 0
    for line in path.read_text(errors="replace").splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        frames = stack.split(";")
        k = int(count)
        total += k
        own[frames[-1]] += k
        pkg[frame_package(frames[-1])] += k
        for f in set(frames):
            if "services/" in f:
                repo_incl[f] += k
    if not total:
        return ["(empty profile)"]
    lines = [f"py-spy: {total} samples of the gateway process (busy threads only)"]
    lines.append("  self time by package: " + ", ".join(
        f"{p} {c / total:.0%}" for p, c in pkg.most_common(10)))  # fmt: skip
    lines.append("  hottest frames (self):")
    lines += [f"    {c / total:6.1%}  {shorten(f)}" for f, c in own.most_common(n)]
    lines.append("  repository frames (inclusive):")
    lines += [f"    {c / total:6.1%}  {shorten(f)}" for f, c in repo_incl.most_common(8)]
    return lines


def shorten(frame: str) -> str:
    func, _, path = frame.rpartition(" (")
    path = path.rstrip(")")
    for marker in ("site-packages/", "/work/main/", "lib/python3"):
        if marker in path:
            path = path.split(marker, 1)[1]
            break
    return f"{func} ({path})"


# ------------------------------------------------------------------------------ report


def print_unfinished(lvl: Level) -> list[tuple[str, bool, str]]:
    c = lvl.concurrency
    print()
    print(
        f"== C={c}: did NOT finish within {lvl.wall_s:.0f} s ({lvl.requests} requests per "
        "target asked); bench.py was stopped, no latency figures"
    )
    print(
        f"gateway: {lvl.key_requests} requests recorded by the key, "
        f"{lvl.pool_timeouts} QueuePool timeouts in its log; Postgres: at most "
        f"{lvl.db['connections']} connections to the bench database, "
        f"{lvl.db['idle_in_transaction']} of them idle in transaction"
    )
    checks: list[tuple[str, bool, str]] = []
    if c == TARGET_C:
        checks.append((f"C={c} TTFT overhead p50 <= {TARGET_P50_MS:g} ms", False, "unfinished"))
        checks.append((f"C={c} TTFT overhead p99 <= {TARGET_P99_MS:g} ms", False, "unfinished"))
    if c == BIG_C:
        checks.append((f"C={c} zero errors", False, "unfinished"))
        checks.append((f"C={c} TTFT overhead p99 <= {BIG_P99_MS:g} ms", False, "unfinished"))
    for name, ok, value in checks:
        print(f"{verdict(ok)}  {name}: {value}")
    return checks


def print_level(lvl: Level) -> list[tuple[str, bool, str]]:
    r = lvl.result
    if r is None:
        return print_unfinished(lvl)
    t = r["targets"]
    c = lvl.concurrency
    names = [n for n in ("direct", "passthrough", "gateway", "direct_again") if n in t]
    steady = all(t[n]["steady_state"] for n in names)
    print()
    print(
        f"== C={c}: {lvl.requests} requests per target, {r['rounds']} rounds, "
        f"{r['tokens']} tokens, steady state {'yes' if steady else 'NO'}, "
        f"level {r['level_wall_s']} s"
    )
    head = (
        f"{'':<22}{'TTFT p50':>10}{'TTFT p99':>10}{'total p50':>11}{'total p99':>11}"
        f"{'errors':>8}{'req/s':>8}{'tokens':>8}"
    )
    print(head)
    for n in names:
        x = t[n]
        print(
            f"{n:<22}{fmt(get(x, 'ttft_ms', 'p50')):>10}{fmt(get(x, 'ttft_ms', 'p99')):>10}"
            f"{fmt(get(x, 'total_ms', 'p50')):>11}{fmt(get(x, 'total_ms', 'p99')):>11}"
            f"{x['errors']:>8}{fmt(x.get('throughput_rps')):>8}{fmt(x.get('tokens_mean')):>8}"
        )
    for n, label in (
        ("gateway", "overhead gw-direct"),
        ("passthrough", "overhead px-direct"),
        ("direct_again", "A/A again-direct"),
    ):
        o = r["overhead"].get(n, {})
        print(
            f"{label:<22}{fmt(get(o, 'ttft_ms', 'p50', 'diff'), True):>10}"
            f"{fmt(get(o, 'ttft_ms', 'p99', 'diff'), True):>10}"
            f"{fmt(get(o, 'total_ms', 'p50', 'diff'), True):>11}"
            f"{fmt(get(o, 'total_ms', 'p99', 'diff'), True):>11}"
            f"{'':>8}{fmt(o.get('throughput_ratio'), digits=3) + 'x':>8}"
        )
    gw = t.get("gateway", {})
    gw_cpu = get(gw, "pid_cpu", "gateway")
    px_cpu = get(t.get("passthrough", {}), "pid_cpu", "passthrough")
    up_cpu = get(t.get("direct", {}), "pid_cpu", "upstream", "cpu_ms_per_request")
    ratio = cpu_ratio(r)
    print(
        f"gateway CPU: {fmt(get(gw_cpu, 'cpu_ms_per_request'), digits=2)} ms/request "
        f"({fmt(get(gw_cpu, 'cores'), digits=2)} cores during its blocks); pass-through "
        f"{fmt(get(px_cpu, 'cpu_ms_per_request'), digits=2)} ms/request "
        f"({fmt(get(px_cpu, 'cores'), digits=2)} cores); gateway/pass-through "
        f"{fmt(ratio, digits=2)}x; emulator CPU {fmt(up_cpu, digits=2)} ms/request direct"
    )
    rounds = get(r["overhead"], "gateway", "ttft_p50_diff_by_round_ms")
    px_rounds = get(r["overhead"], "passthrough", "ttft_p50_diff_by_round_ms")
    aa_rounds = get(r["overhead"], "direct_again", "ttft_p50_diff_by_round_ms")
    print(
        f"TTFT p50 overhead by round: gateway {rounds}, pass-through {px_rounds}, A/A {aa_rounds}"
    )
    if gw.get("error_types"):
        print(f"gateway errors: {gw['error_types']}")
    sql = +lvl.sql
    writes = sum(v for k, v in sql.items() if k in WRITES)
    per = lvl.key_requests or 0
    sql_text = ", ".join(f"{k} {v / per:.2f}" for k, v in sorted(sql.items())) if per else "-"
    print(
        f"SQL per gateway request ({per} recorded by the key, warm-up included): {sql_text}"
        f"; writes {writes / per if per else float('nan'):.2f}"
    )
    print(
        f"Postgres: at most {lvl.db['connections']} connections to the bench database, "
        f"{lvl.db['idle_in_transaction']} idle in transaction; "
        f"{lvl.pool_timeouts} QueuePool timeouts in the gateway's log"
    )
    cl = [t[n]["client"] for n in names]
    up = [t[n].get("upstream") or {} for n in names]
    mach = [t[n].get("machine") or {} for n in names]
    print(
        "honesty: client max "
        f"{max((x.get('cpu_cores_max_block') or 0) for x in cl):.2f} cores, loop lag p99 "
        f"{max((get(x, 'loop_lag_ms', 'p99') or 0) for x in cl):.1f} ms; emulator late p99 "
        f"{max((u.get('late_ms_p99_worst_block') or 0) for u in up):.1f} ms, max streams "
        f"{[u.get('max_active_streams') for u in up]}; machine busy "
        f"{[m.get('busy_cores') for m in mach]} cores"
    )
    for w in r.get("warnings", []):
        print(f"warning: {w}")

    checks: list[tuple[str, bool, str]] = []
    o = r["overhead"].get("gateway", {})
    p50 = get(o, "ttft_ms", "p50", "diff")
    p99 = get(o, "ttft_ms", "p99", "diff")
    if c == TARGET_C and p50 is not None and p99 is not None:
        checks.append(
            (
                f"C={c} TTFT overhead p50 <= {TARGET_P50_MS:g} ms",
                p50 <= TARGET_P50_MS,
                f"{p50:+.1f}",
            )
        )
        checks.append(
            (
                f"C={c} TTFT overhead p99 <= {TARGET_P99_MS:g} ms",
                p99 <= TARGET_P99_MS,
                f"{p99:+.1f}",
            )
        )
        checks.append(
            (
                f"C={c} CPU per request <= {TARGET_CPU_RATIO:g}x the pass-through's",
                ratio is not None and ratio <= TARGET_CPU_RATIO,
                f"{fmt(ratio, digits=2)}x",
            )
        )
    if c == BIG_C:
        errors = int(gw.get("errors", 0))
        checks.append((f"C={c} zero errors", errors == 0, str(errors)))
        ok = p99 is not None and p99 <= BIG_P99_MS
        checks.append((f"C={c} TTFT overhead p99 <= {BIG_P99_MS:g} ms", ok, fmt(p99, True)))
    for name, ok, value in checks:
        print(f"{verdict(ok)}  {name}: {value}")
    return checks


def cpu_ratio(r: Json) -> float | None:
    """Gateway CPU ms per request over the pass-through's, both from this level's blocks."""
    t = r["targets"]
    gw = get(t.get("gateway", {}), "pid_cpu", "gateway", "cpu_ms_per_request")
    px = get(t.get("passthrough", {}), "pid_cpu", "passthrough", "cpu_ms_per_request")
    return gw / px if gw and px else None


def level_row(lvl: Level) -> dict[str, float | None]:
    """The figures of the closing table for one run of one level."""
    r = lvl.result
    if r is None:
        return {}
    t, o = r["targets"], r["overhead"]
    return {
        "gw_p50": get(o, "gateway", "ttft_ms", "p50", "diff"),
        "gw_p99": get(o, "gateway", "ttft_ms", "p99", "diff"),
        "px_p50": get(o, "passthrough", "ttft_ms", "p50", "diff"),
        "px_p99": get(o, "passthrough", "ttft_ms", "p99", "diff"),
        "aa_p50": get(o, "direct_again", "ttft_ms", "p50", "diff"),
        "aa_p99": get(o, "direct_again", "ttft_ms", "p99", "diff"),
        "gw_cpu": get(t.get("gateway", {}), "pid_cpu", "gateway", "cpu_ms_per_request"),
        "px_cpu": get(t.get("passthrough", {}), "pid_cpu", "passthrough", "cpu_ms_per_request"),
        "ratio": cpu_ratio(r),
        "gw_err": float(get(t, "gateway", "errors") or 0),
        "px_err": float(get(t, "passthrough", "errors") or 0),
        "gw_thr": get(o, "gateway", "throughput_ratio"),
        "px_thr": get(o, "passthrough", "throughput_ratio"),
    }


Rows = list[dict[str, float | None]]


def median(xs: list[float]) -> float | None:
    xs = sorted(xs)
    if not xs:
        return None
    mid = len(xs) // 2
    return xs[mid] if len(xs) % 2 else (xs[mid - 1] + xs[mid]) / 2


def print_summary(results: list[Level]) -> None:
    """One line per concurrency level: medians over the repeats of TTFT overhead against the
    direct engine, CPU per request, errors (summed) and throughput ratio."""
    by_c: dict[int, list[dict[str, float | None]]] = {}
    for lvl in results:
        by_c.setdefault(lvl.concurrency, []).append(level_row(lvl))
    print()
    print(
        "== Summary: TTFT overhead vs direct engine (ms, median over repeats), CPU ms/request,"
        " errors (sum), throughput x direct"
    )
    print(
        "| C | runs | gateway p50 / p99 | pass-through p50 / p99 | A/A p50 / p99 | gateway CPU"
        " | pass-through CPU | CPU ratio | errors gw / px | thr gw / px |"
    )
    print("| --- " * 10 + "|")
    for c, rows in by_c.items():
        done = [x for x in rows if x]

        def m(k: str, digits: int = 1, sign: bool = False, rows: Rows = done) -> str:
            return fmt(median([v for x in rows if (v := x.get(k)) is not None]), sign, digits)

        def total(k: str, rows: Rows = done) -> str:
            return str(int(sum(x.get(k) or 0 for x in rows)))

        print(
            f"| {c} | {len(done)}/{len(rows)} | {m('gw_p50', sign=True)} / "
            f"{m('gw_p99', sign=True)} | {m('px_p50', sign=True)} / {m('px_p99', sign=True)} | "
            f"{m('aa_p50', sign=True)} / {m('aa_p99', sign=True)} | {m('gw_cpu', 2)} | "
            f"{m('px_cpu', 2)} | {m('ratio', 2)}x | {total('gw_err')} / {total('px_err')} | "
            f"{m('gw_thr', 2)} / {m('px_thr', 2)} |"
        )


def summary_checks(results: list[Level]) -> list[tuple[str, bool, str]]:
    """The issue's targets on the medians over repeats (errors: summed)."""
    rows = [level_row(x) for x in results if x.concurrency == TARGET_C and x.result]
    big = [level_row(x) for x in results if x.concurrency == BIG_C]
    checks: list[tuple[str, bool, str]] = []

    def med(rs: list[dict[str, float | None]], k: str) -> float | None:
        return median([v for x in rs if (v := x.get(k)) is not None])

    if rows:
        p50, p99, ratio = med(rows, "gw_p50"), med(rows, "gw_p99"), med(rows, "ratio")
        checks.append(
            (f"C={TARGET_C} TTFT overhead p50 <= {TARGET_P50_MS:g} ms",
             p50 is not None and p50 <= TARGET_P50_MS, fmt(p50, True))
        )  # fmt: skip
        checks.append(
            (f"C={TARGET_C} TTFT overhead p99 <= {TARGET_P99_MS:g} ms",
             p99 is not None and p99 <= TARGET_P99_MS, fmt(p99, True))
        )  # fmt: skip
        checks.append(
            (f"C={TARGET_C} CPU per request <= {TARGET_CPU_RATIO:g}x the pass-through's",
             ratio is not None and ratio <= TARGET_CPU_RATIO, f"{fmt(ratio, digits=2)}x")
        )  # fmt: skip
    if big:
        errors = int(sum(x.get("gw_err") or 0 for x in big))
        unfinished = sum(1 for x in big if not x)
        checks.append(
            (f"C={BIG_C} zero errors", errors == 0 and not unfinished,
             f"{errors}" + (f", {unfinished} unfinished" if unfinished else ""))
        )  # fmt: skip
        p99 = med(big, "gw_p99")
        checks.append(
            (f"C={BIG_C} TTFT overhead p99 <= {BIG_P99_MS:g} ms",
             p99 is not None and p99 <= BIG_P99_MS, fmt(p99, True))
        )  # fmt: skip
    return checks


def print_turns(turns: list[Counter[str]]) -> tuple[str, bool, str]:
    print()
    print("== Postgres statements per patient chat turn (POST /api/sessions/{id}/messages)")
    for i, c in enumerate(turns, 1):
        writes = sum(v for k, v in c.items() if k in WRITES)
        print(f"turn {i}: {dict(sorted(c.items()))} -> writes {writes}")
    worst = max((sum(v for k, v in c.items() if k in WRITES) for c in turns), default=0)
    check = (
        f"Postgres writes per chat turn <= {TARGET_WRITES_PER_TURN:g}",
        worst <= TARGET_WRITES_PER_TURN,
        f"max {worst}",
    )
    print(f"{verdict(check[1])}  {check[0]}: {check[2]}")
    return check


# ------------------------------------------------------------------------------ main


def git_state() -> str:
    """HEAD and how many files under services/ differ from it (the code measured)."""

    def git(*argv: str) -> str:
        done = subprocess.run(["git", *argv], cwd=REPO, capture_output=True, text=True, check=False)
        return done.stdout.strip()

    changed = git("status", "--short", "--", "services").splitlines()
    head = git("rev-parse", "--short", "HEAD") or "?"
    return f"HEAD {head}, {len(changed)} changed files in services/"


def default_requests(conc: int, quick: bool) -> int:
    if quick:
        return 16 if conc == 1 else 8 * conc
    if conc == 1:
        return 48
    return 12 * conc if conc <= 64 else 6 * conc


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--concurrency", default=None, help="comma list (default 1,32; --quick 1,8)")
    ap.add_argument("--big", action="store_true", help=f"add C={BIG_C}")
    ap.add_argument(
        "--issue",
        action="store_true",
        help=f"the issue's table: C={TARGET_C},128,{BIG_C}, at least 3 repeats",
    )
    ap.add_argument("--repeat", type=int, default=1, help="run every level this many times")
    ap.add_argument("--quick", action="store_true", help="smoke run: C=1,8, few requests")
    ap.add_argument(
        "--requests",
        default=None,
        help="requests per target per level, one value or one per level "
        "(default 48 at C=1, 12*C up to C=64, then 6*C)",
    )
    ap.add_argument("--blocks", type=int, default=None, help="rounds (default 4 at C=1, else 2)")
    ap.add_argument("--warmup", type=int, default=8, help="warm-up requests (at least C)")
    ap.add_argument("--tokens", type=int, default=64)
    ap.add_argument(
        "--level-timeout",
        type=float,
        default=300.0,
        help="stop a level's bench.py after this many seconds and report it unfinished",
    )
    ap.add_argument("--chat-turns", type=int, default=3, help="patient turns counted for SQL")
    ap.add_argument(
        "--tools-python",
        type=Path,
        default=TOOLS_VENV_PYTHON if TOOLS_VENV_PYTHON.exists() else Path(sys.executable),
        help="interpreter for upstream.py and bench.py (default /tmp/gwb-venv/bin/python "
        "when it exists, else this one)",
    )
    ap.add_argument("--kit", type=Path, default=KIT, help="the shared bench kit directory")
    ap.add_argument(
        "--pg-admin-url",
        default="postgresql://postgres@127.0.0.1:5432/postgres",
        help="a database to CREATE/DROP the throw-away one from",
    )
    ap.add_argument("--redis-url", default="redis://127.0.0.1:6379/14")
    ap.add_argument("--keep-db", action="store_true", help="do not drop the database")
    ap.add_argument("--profile", action="store_true", help="py-spy the gateway (last level)")
    found = shutil.which("py-spy") or (str(TOOLS_VENV_PYSPY) if TOOLS_VENV_PYSPY.exists() else "")
    ap.add_argument("--py-spy", default=found, help="py-spy executable")
    ap.add_argument(
        "--profile-rate", type=int, default=100, help="--profile samples per second (py-spy)"
    )
    ap.add_argument("--out", type=Path, default=OUT / "gateway_overhead.jsonl")
    ap.add_argument("--label", default="gateway_overhead")
    ap.add_argument("--serve-gateway", type=int, metavar="PORT", help=argparse.SUPPRESS)
    return ap.parse_args(argv)


def _raise_interrupt(signum: int, frame: types.FrameType | None) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    a = parse_args(argv)
    if a.serve_gateway:
        serve_gateway(a.serve_gateway)
        return 0
    a.out = a.out.resolve()
    if a.issue:
        a.concurrency = a.concurrency or f"{TARGET_C},128,{BIG_C}"
        a.repeat = max(a.repeat, 3)
    default_levels = "1,8" if a.quick else "1,32"
    levels = [int(x) for x in (a.concurrency or default_levels).split(",")]
    if a.big and BIG_C not in levels:
        levels.append(BIG_C)
    if a.requests:
        nreq = [int(x) for x in a.requests.split(",")]
        nreq = nreq * len(levels) if len(nreq) == 1 else nreq
        if len(nreq) != len(levels):
            raise SystemExit("--requests needs one value or one per level")
    else:
        nreq = [default_requests(c, a.quick) for c in levels]
    if a.quick:
        a.warmup = min(a.warmup, 4)

    signal.signal(signal.SIGTERM, _raise_interrupt)
    print(f"gateway code: {git_state()}; emulator: 64 tokens, first after 20 ms, then 10 ms apart")
    bench = Bench(a)
    checks: list[tuple[str, bool, str]] = []
    results: list[Level] = []
    rc = 0
    try:
        bench.setup()
        for rep in range(a.repeat):
            if a.repeat > 1:
                print(f"\n######## run {rep + 1} of {a.repeat}")
            for i, (c, n) in enumerate(zip(levels, nreq, strict=True)):
                blocks = a.blocks or (2 if a.quick or c > 1 else 4)
                last = rep == a.repeat - 1 and i == len(levels) - 1
                lvl = bench.level(c, n, blocks, profile=a.profile and last)
                results.append(lvl)
                level_checks = print_level(lvl)
                if a.repeat == 1:
                    checks += level_checks
                if lvl.profile:
                    print("\n".join(lvl.profile))
        print_summary(results)
        if a.repeat > 1:
            checks += summary_checks(results)
        if a.chat_turns:
            checks.append(print_turns(bench.chat_turn_writes(a.chat_turns)))
        print()
        label = f" (medians of {a.repeat} runs)" if a.repeat > 1 else ""
        print(f"== Targets (one gateway worker process){label}")
        for name, ok, value in checks:
            print(f"{verdict(ok)}  {name}: {value}")
        if not any(c in (TARGET_C, BIG_C) for c in levels):
            print(f"(TTFT targets apply at C={TARGET_C} and C={BIG_C}; neither ran)")
        print(f"raw results: {a.out}")
    except KeyboardInterrupt:
        bench.say("interrupted")
        rc = 130
    except Exception as exc:
        bench.say(f"failed: {exc}")
        for name in ("gateway", "upstream"):
            log = bench.logs / f"{name}.log"
            if log.exists():
                bench.say(f"--- {log} (tail)\n{tail(log)}")
        rc = 1
    finally:
        bench.teardown()
    return rc


if __name__ == "__main__":
    sys.exit(main())
