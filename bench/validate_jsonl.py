"""Benchmark: streaming JSONL validation against the tokenizer's own batch-encode speed.

What it measures, on a generated JSONL file of realistic dialogues (about --size-mb MB, built
with a fixed seed by recombining real DISC-MedLLM turns from
../shared/data/disc-medllm/sft_examples.jsonl into rows of 1-7 rounds, in a random mix of the
DISC, OpenAI and Firefly formats):

  a. structural validation alone: `validate_file(path)`;
  b. full validation with token statistics:
     `validate_file(path, chat_format=chat_format(tok), max_seq_length=1200)`;
  c. baseline: `tok.encode_batch(...)` on the same message contents, in batches of 256 rows,
     timing only the encode calls (JSON parsing is excluded).

Each phase runs in its own child process, so the peak RSS reported is that phase's alone.
Throughput is file MB (10^6 bytes) per second; phase c also reports content MB/s. The targets
checked (PASS/MISS, never an exception): peak RSS of b < 300 MB, b >= 80% of c's throughput,
a >= 100 MB/s.

Run from the repository root:

    .venv/bin/python bench/validate_jsonl.py [--size-mb N] [--tokenizer DIR] [--keep]

Without --tokenizer a tiny Baichuan-shaped SentencePiece tokenizer is trained (in about a
second) from the same data. Generated files go to bench/out/ and are deleted at the end unless
--keep is given.
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import json
import os
import random
import resource
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

SFT_EXAMPLES = REPO.parent / "shared" / "data" / "disc-medllm" / "sft_examples.jsonl"
OUT = REPO / "bench" / "out"
SEED = 20240611
BATCH_ROWS = 256
MAX_SEQ_LENGTH = 1200
MB = 1_000_000
RESULT_PREFIX = "BENCH_RESULT "

TARGET_RSS_MB = 300.0
TARGET_RATIO = 0.80
TARGET_STRUCTURAL_MBPS = 100.0

SYSTEM_PROMPTS = (
    "你是一个专业的医疗助手，请根据患者的描述给出建议。",
    "You are DISC-MedLLM, a medical assistant. Answer carefully and suggest seeing a doctor.",
    "请用通俗易懂的语言回答患者的问题，必要时建议就医。",
    "你是一名经验丰富的全科医生。",
)


# ---------------------------------------------------------------------------- generation


def load_rounds(path: Path) -> list[tuple[str, str]]:
    """Every (user, assistant) pair of consecutive turns in the real data."""
    rounds: list[tuple[str, str]] = []
    with path.open("rb") as f:
        for line in f:
            turns = orjson.loads(line)["conversation"]
            for first, second in itertools.pairwise(turns):
                if first["role"] == "user" and second["role"] == "assistant":
                    rounds.append((first["content"], second["content"]))
    return rounds


def make_row(rng: random.Random, rounds: list[tuple[str, str]], index: int) -> dict[str, Any]:
    picked = [rounds[rng.randrange(len(rounds))] for _ in range(rng.randint(1, 7))]
    fmt = rng.randrange(3)
    if fmt == 0:  # DISC-MedLLM
        conversation = []
        for user, assistant in picked:
            conversation.append({"role": "user", "content": user})
            conversation.append({"role": "assistant", "content": assistant})
        return {"_id": f"bench-{index}", "source": "bench", "conversation": conversation}
    if fmt == 1:  # OpenAI, optional system message
        messages = []
        if rng.random() < 0.5:
            messages.append({"role": "system", "content": rng.choice(SYSTEM_PROMPTS)})
        for user, assistant in picked:
            messages.append({"role": "user", "content": user})
            messages.append({"role": "assistant", "content": assistant})
        return {"messages": messages}
    # Firefly
    return {"conversation": [{"human": u, "assistant": a} for u, a in picked]}


def generate(path: Path, size_mb: float) -> tuple[int, int]:
    """Write about `size_mb` MB of JSONL rows; returns (rows, bytes)."""
    rounds = load_rounds(SFT_EXAMPLES)
    rng = random.Random(SEED)
    target = int(size_mb * MB)
    written = rows = 0
    chunk: list[bytes] = []
    chunk_bytes = 0
    dumps = orjson.dumps
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as f:
        while written + chunk_bytes < target:
            line = dumps(make_row(rng, rounds, rows)) + b"\n"
            chunk.append(line)
            chunk_bytes += len(line)
            rows += 1
            if chunk_bytes >= 16 * 1024 * 1024:
                f.write(b"".join(chunk))
                written += chunk_bytes
                chunk, chunk_bytes = [], 0
        f.write(b"".join(chunk))
        written += chunk_bytes
    return rows, written


# ---------------------------------------------------------------------------- phases


def peak_rss_mb() -> float:
    """This process's peak RSS in MB.

    Linux carries ru_maxrss across fork+exec, so a child's ru_maxrss starts at its parent's
    peak; VmHWM (the high-water mark of this process's own address space, reset by exec) is
    the per-phase figure. ru_maxrss is the fallback where /proc is missing.
    """
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024 / MB  # kB
    except OSError:
        pass
    # Linux reports ru_maxrss in KiB.
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / MB


def phase_structural(path: Path, workers: int) -> dict[str, Any]:
    from services.core.chatformat.validate import validate_file

    started = time.perf_counter()
    report = validate_file(path, workers=workers)
    seconds = time.perf_counter() - started
    return {
        "seconds": seconds,
        "rows": report.rows,
        "valid_rows": report.valid_rows,
        "errors": report.errors,
        "warnings": report.warnings,
        "formats": dict(report.formats),
    }


def phase_full(path: Path, tokenizer_dir: Path, workers: int) -> dict[str, Any]:
    from services.core.chatformat import chat_format, load_tokenizer
    from services.core.chatformat.validate import validate_file

    fmt = chat_format(load_tokenizer(tokenizer_dir))
    fmt.encode_contents(["预热"])  # one-time setup (neutralizer tables) outside the timing
    started = time.perf_counter()
    report = validate_file(path, chat_format=fmt, max_seq_length=MAX_SEQ_LENGTH, workers=workers)
    seconds = time.perf_counter() - started
    tokens = report.to_dict()["tokens"]
    return {
        "seconds": seconds,
        "rows": report.rows,
        "valid_rows": report.valid_rows,
        "truncated_rows": report.truncated_rows,
        "errors": report.errors,
        "warnings": report.warnings,
        "row_tokens_p50": tokens["row"].get("p50"),
        "row_tokens_p99": tokens["row"].get("p99"),
        "trained_tokens": report.trained_tokens,
    }


def contents(row: Any) -> Iterator[str]:
    """Every message text of a DISC / OpenAI / Firefly row (system text included)."""
    if "messages" in row:
        for message in row["messages"]:
            yield message["content"]
        return
    if isinstance(row.get("system"), str):
        yield row["system"]
    for item in row["conversation"]:
        if "role" in item:
            yield item["content"]
        else:
            yield item["human"]
            yield item["assistant"]


def phase_tokenize(path: Path, tokenizer_dir: Path) -> dict[str, Any]:
    from services.core.chatformat import load_tokenizer

    tok = load_tokenizer(tokenizer_dir)
    tok.encode_batch(["预热"])
    encode_seconds = 0.0
    content_bytes = tokens = rows = 0
    batch: list[str] = []
    batch_rows = 0
    clock = time.perf_counter

    def encode(texts: list[str]) -> None:
        nonlocal encode_seconds, tokens
        started = clock()
        ids = tok.encode_batch(texts)
        encode_seconds += clock() - started
        tokens += sum(map(len, ids))

    started_all = clock()
    with path.open("rb") as f:
        for line in f:
            row = orjson.loads(line)
            rows += 1
            for text in contents(row):
                batch.append(text)
                content_bytes += len(text.encode("utf-8"))
            batch_rows += 1
            if batch_rows >= BATCH_ROWS:
                encode(batch)
                batch, batch_rows = [], 0
    if batch:
        encode(batch)
    return {
        "seconds": encode_seconds,
        "wall_seconds": clock() - started_all,
        "rows": rows,
        "content_bytes": content_bytes,
        "tokens": tokens,
    }


def run_phase(argv: list[str]) -> None:
    """Child process entry point: run one phase, print its result as one JSON line."""
    phase, path, tokenizer_dir = argv[0], Path(argv[1]), Path(argv[2])
    workers = int(argv[3])
    if phase == "structural":
        result = phase_structural(path, workers)
    elif phase == "full":
        result = phase_full(path, tokenizer_dir, workers)
    else:
        result = phase_tokenize(path, tokenizer_dir)
    # Worker processes (workers > 1) count too: their largest peak (ru_maxrss of reaped
    # children, an upper bound as exec keeps the parent's figure) times their number.
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024 / MB
    result["peak_rss_mb"] = peak_rss_mb() + (workers * children if workers > 1 else 0)
    print(RESULT_PREFIX + json.dumps(result), flush=True)


def spawn(phase: str, path: Path, tokenizer_dir: Path, workers: int) -> dict[str, Any] | None:
    cmd = [sys.executable, str(Path(__file__).resolve()), "--phase", phase, str(path)]
    cmd += [str(tokenizer_dir), str(workers)]
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, text=True, check=False)
    for line in proc.stdout.splitlines():
        if line.startswith(RESULT_PREFIX):
            result: dict[str, Any] = json.loads(line[len(RESULT_PREFIX) :])
            return result
    print(f"phase {phase} failed (exit {proc.returncode}):\n{proc.stdout}", file=sys.stderr)
    return None


# ---------------------------------------------------------------------------- report


def warm_page_cache(path: Path) -> None:
    with path.open("rb") as f:
        while f.read(64 * 1024 * 1024):
            pass


def verdict(ok: bool) -> str:
    return "PASS" if ok else "MISS"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--size-mb", type=float, default=1024, help="file size (default 1024)")
    parser.add_argument("--tokenizer", type=Path, help="tokenizer dir (default: tiny SP model)")
    parser.add_argument("--keep", action="store_true", help="keep bench/out/ afterwards")
    parser.add_argument("--phase", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.phase:
        run_phase(args.phase)
        return 0

    OUT.mkdir(parents=True, exist_ok=True)
    path = OUT / f"dialogues_{args.size_mb:g}mb.jsonl"
    try:
        if args.tokenizer is not None:
            tokenizer_dir = args.tokenizer
            tokenizer_label = str(tokenizer_dir)
        else:
            from tests.support.tokenizers import build_baichuan_like_sentencepiece

            tokenizer_dir = build_baichuan_like_sentencepiece(OUT / "tokenizer")
            tokenizer_label = "tiny Baichuan-like SentencePiece (tests.support)"
        started = time.perf_counter()
        rows, size = generate(path, args.size_mb)
        gen_seconds = time.perf_counter() - started
        print(
            f"generated {path.relative_to(REPO)}: {rows:,} rows, {size / MB:,.1f} MB"
            f" in {gen_seconds:.1f} s ({size / MB / gen_seconds:,.0f} MB/s)"
        )
        print(f"tokenizer: {tokenizer_label}; batch {BATCH_ROWS} rows; max_seq {MAX_SEQ_LENGTH}")
        warm_page_cache(path)

        workers = os.cpu_count() or 1
        results: dict[str, dict[str, Any] | None] = {}
        for key, phase, n in PHASES(workers):
            print(f"running {key}...", flush=True)
            results[key] = spawn(phase, path, tokenizer_dir, n)
        report(results, size, workers)
    finally:
        if not args.keep:
            path.unlink(missing_ok=True)
            shutil.rmtree(OUT / "tokenizer", ignore_errors=True)
            with contextlib.suppress(OSError):
                OUT.rmdir()  # only when nothing else is left there
    return 0


def PHASES(workers: int) -> list[tuple[str, str, int]]:
    return [
        ("structural", "structural", 1),
        ("structural_par", "structural", workers),
        ("full", "full", 1),
        ("full_par", "full", workers),
        ("tokenize", "tokenize", 1),
    ]


def report(results: dict[str, dict[str, Any] | None], size: int, workers: int) -> None:
    labels = {
        "structural": "a. structural, 1 process",
        "structural_par": f"a. structural, {workers} processes",
        "full": "b. full + tokens, 1 process",
        "full_par": f"b. full + tokens, {workers} proc.",
        "tokenize": "c. tokenizer encode_batch",
    }
    mbps: dict[str, float] = {}
    print()
    print(f"{'phase':<32} {'seconds':>9} {'MB/s':>9} {'peak RSS MB':>12}")
    for phase, label in labels.items():
        r = results[phase]
        if r is None:
            print(f"{label:<32} {'failed':>9}")
            continue
        mbps[phase] = size / MB / r["seconds"]
        print(f"{label:<32} {r['seconds']:>9.2f} {mbps[phase]:>9.2f} {r['peak_rss_mb']:>12.1f}")
    print()
    a, b, c = results["structural"], results["full_par"], results["tokenize"]
    if a is not None:
        print(
            f"a: rows {a['rows']:,}, valid {a['valid_rows']:,}, errors {a['errors']},"
            f" warnings {a['warnings']}, formats {a['formats']}"
        )
    if b is not None:
        print(
            f"b: rows {b['rows']:,}, valid {b['valid_rows']:,},"
            f" truncated rows (> {MAX_SEQ_LENGTH} tokens) {b['truncated_rows']:,},"
            f" errors {b['errors']}, warnings {b['warnings']},"
            f" row tokens p50 {b['row_tokens_p50']} p99 {b['row_tokens_p99']}"
        )
    if c is not None:
        print(
            f"c: {c['content_bytes'] / MB:,.1f} MB of content, {c['tokens']:,} tokens;"
            f" encode {c['seconds']:.2f} s ({c['content_bytes'] / MB / c['seconds']:.2f}"
            f" content MB/s, {mbps['tokenize']:.2f} file MB/s, all cores);"
            f" whole pass incl. JSON parsing {c['wall_seconds']:.2f} s"
        )
    print()
    print("targets (b as `medchat validate` runs it: one process per core):")
    if b is not None:
        rss = b["peak_rss_mb"]
        print(
            f"  {verdict(rss < TARGET_RSS_MB)}  peak RSS of b {rss:.1f} MB < {TARGET_RSS_MB:g} MB"
        )
    if b is not None and c is not None:
        ratio = mbps["full_par"] / mbps["tokenize"]
        print(
            f"  {verdict(ratio >= TARGET_RATIO)}  validation {ratio:.1%} of pure tokenization"
            f" throughput >= {TARGET_RATIO:.0%}"
            f" (1 process: {mbps.get('full', 0) / mbps['tokenize']:.1%})"
        )
    if a is not None:
        print(
            f"  {verdict(mbps['structural'] >= TARGET_STRUCTURAL_MBPS)}  structural validation"
            f" {mbps['structural']:.1f} MB/s (1 process) >= {TARGET_STRUCTURAL_MBPS:g} MB/s"
        )


if __name__ == "__main__":
    sys.exit(main())
