"""Streaming JSONL validation: every problem with its line number and code, plus token stats.

Memory stays constant in the file size: lines are read one at a time, rows are tokenized in
batches of `batch_rows`, and statistics are kept as counters of lengths (exact percentiles
without keeping the rows). Only the first `max_details` problems are kept in full; every
problem is still counted by code.
"""

from __future__ import annotations

import math
import multiprocessing
import time
from collections import Counter
from collections.abc import Callable, Iterable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, BinaryIO

import orjson

from .readers import Issue, Row, Severity, read_row
from .render import ChatFormat, FormatError

BOM = b"\xef\xbb\xbf"
CHUNK_BYTES = 16 << 20  # one task of parallel validation


@dataclass(frozen=True, slots=True)
class Problem:
    line: int
    code: str
    message: str
    param: str | None = None
    severity: Severity = "error"

    def to_dict(self) -> dict[str, Any]:
        return {
            "line": self.line,
            "code": self.code,
            "message": self.message,
            "param": self.param,
            "severity": self.severity,
        }


@dataclass
class Distribution:
    """Exact distribution of integer values, kept as value → count."""

    counts: Counter[int] = field(default_factory=Counter)

    def add(self, value: int) -> None:
        self.counts[value] += 1

    def update(self, values: Iterable[int]) -> None:
        self.counts.update(values)

    @property
    def n(self) -> int:
        return sum(self.counts.values())

    def percentile(self, q: float) -> int:
        """Nearest-rank percentile (q in 0..100)."""
        n = self.n
        if n == 0:
            return 0
        rank = max(1, math.ceil(q / 100 * n))
        seen = 0
        for value in sorted(self.counts):
            seen += self.counts[value]
            if seen >= rank:
                return value
        return max(self.counts)

    def histogram(self, bins: int = 20) -> dict[str, list[int]]:
        if not self.counts:
            return {"edges": [], "counts": []}
        hi = max(self.counts)
        width = max(1, math.ceil((hi + 1) / bins))
        counts = [0] * math.ceil((hi + 1) / width)
        for value, c in self.counts.items():
            counts[value // width] += c
        return {"edges": [i * width for i in range(len(counts) + 1)], "counts": counts}

    def to_dict(self) -> dict[str, Any]:
        n = self.n
        if n == 0:
            return {"count": 0}
        total = sum(v * c for v, c in self.counts.items())
        return {
            "count": n,
            "mean": round(total / n, 1),
            "min": min(self.counts),
            "p50": self.percentile(50),
            "p90": self.percentile(90),
            "p95": self.percentile(95),
            "p99": self.percentile(99),
            "max": max(self.counts),
            "histogram": self.histogram(),
        }


@dataclass
class ValidationReport:
    path: str
    max_seq_length: int | None
    tokenizer: str | None
    bytes_read: int = 0
    lines: int = 0
    rows: int = 0  # non-blank lines
    valid_rows: int = 0
    turns: int = 0
    formats: Counter[str] = field(default_factory=Counter)
    code_counts: Counter[str] = field(default_factory=Counter)
    problems: list[Problem] = field(default_factory=list)  # the first max_details, in order
    errors: int = 0
    warnings: int = 0
    user_tokens: Distribution = field(default_factory=Distribution)
    assistant_tokens: Distribution = field(default_factory=Distribution)
    row_tokens: Distribution = field(default_factory=Distribution)
    truncated_rows: int = 0
    trained_tokens: int = 0  # target tokens kept after truncation
    trained_tokens_lost: int = 0
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return self.errors == 0

    def to_dict(self) -> dict[str, Any]:
        tokens = None
        if self.tokenizer is not None:
            tokens = {
                "user": self.user_tokens.to_dict(),
                "assistant": self.assistant_tokens.to_dict(),
                "row": self.row_tokens.to_dict(),
                "truncated_rows": self.truncated_rows,
                "trained_tokens": self.trained_tokens,
                "trained_tokens_lost": self.trained_tokens_lost,
            }
        return {
            "ok": self.ok,
            "path": self.path,
            "bytes": self.bytes_read,
            "lines": self.lines,
            "rows": self.rows,
            "valid_rows": self.valid_rows,
            "turns": self.turns,
            "formats": dict(self.formats),
            "errors": self.errors,
            "warnings": self.warnings,
            "counts_by_code": dict(self.code_counts),
            "problems": [p.to_dict() for p in self.problems],
            "problems_omitted": self.errors + self.warnings - len(self.problems),
            "max_seq_length": self.max_seq_length,
            "tokenizer": self.tokenizer,
            "tokens": tokens,
            "seconds": round(self.seconds, 3),
        }


class _Validator:
    """Validates consecutive lines into one (partial) report."""

    def __init__(
        self,
        report: ValidationReport,
        chat_format: ChatFormat | None,
        max_details: int,
        batch_rows: int,
    ):
        self.report = report
        self.format = chat_format
        self.max_details = max_details
        self.batch_rows = batch_rows
        self.pending: list[tuple[int, Row]] = []

    def problem(self, line: int, issue: Issue) -> None:
        r = self.report
        r.code_counts[issue.code] += 1
        if issue.severity == "error":
            r.errors += 1
        else:
            r.warnings += 1
        if len(r.problems) < self.max_details:
            r.problems.append(Problem(line, issue.code, issue.message, issue.param, issue.severity))

    def line(self, number: int, raw: bytes) -> None:
        r = self.report
        r.lines += 1
        r.bytes_read += len(raw)
        if number == 1 and raw.startswith(BOM):
            raw = raw[len(BOM) :]
            self.problem(
                1, Issue("utf8_bom", "file starts with a UTF-8 BOM; ignored", None, "warning")
            )
        if not raw.strip():
            self.problem(number, Issue("blank_line", "blank line skipped", None, "warning"))
            return
        r.rows += 1
        try:
            obj = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            try:
                raw.decode("utf-8")
            except UnicodeDecodeError as ude:
                self.problem(
                    number,
                    Issue(
                        "not_utf8", f"byte {ude.start} is not valid UTF-8; save the file as UTF-8"
                    ),
                )
            else:
                self.problem(number, Issue("invalid_json", f"not valid JSON: {exc}"))
            return
        row, issues = read_row(obj)
        for issue in issues:
            self.problem(number, issue)
        if row is None:
            return
        r.formats[row.source_format] += 1
        r.turns += len(row.roles)
        if self.format is None:
            r.valid_rows += 1
            return
        self.pending.append((number, row))
        if len(self.pending) >= self.batch_rows:
            self.flush()

    def flush(self) -> None:
        """Tokenize the pending rows with one batch call, then measure each."""
        if not self.pending or self.format is None:
            return
        r = self.report
        max_len = r.max_seq_length or self.format.profile.max_length
        texts: list[str] = []
        for _, row in self.pending:
            texts += row.contents
            if row.system:
                texts.append(row.system)
        lengths = self.format.content_lengths(texts)
        user: list[int] = []
        assistant: list[int] = []
        pos = 0
        for number, row in self.pending:
            n = len(row.roles)
            row_lengths = lengths[pos : pos + n + (1 if row.system else 0)]
            pos += len(row_lengths)
            for role, k in zip(row.roles, row_lengths, strict=False):
                (user if role == "user" else assistant).append(k)
            stats = self.format.measure_training(row, row_lengths, max_len)
            r.row_tokens.add(stats.full_length)
            r.trained_tokens += stats.trained_tokens
            r.trained_tokens_lost += stats.trained_tokens_lost
            if stats.truncated:
                r.truncated_rows += 1
                kept = stats.trained_tokens
                severity: Severity = "warning" if kept or not row.has_trained_turn else "error"
                self.problem(
                    number,
                    Issue(
                        "too_long",
                        f"{stats.full_length} tokens > max_seq_length {max_len}:"
                        f" {stats.trained_tokens_lost} trained tokens are cut"
                        + ("" if kept else ", nothing is left to train on"),
                        None,
                        severity,
                    ),
                )
                if severity == "error":
                    continue
            r.valid_rows += 1
        r.user_tokens.update(user)
        r.assistant_tokens.update(assistant)
        self.pending.clear()


def _merge(total: ValidationReport, part: ValidationReport, max_details: int) -> None:
    for name in (
        "bytes_read",
        "lines",
        "rows",
        "valid_rows",
        "turns",
        "errors",
        "warnings",
        "truncated_rows",
        "trained_tokens",
        "trained_tokens_lost",
    ):
        setattr(total, name, getattr(total, name) + getattr(part, name))
    total.formats.update(part.formats)
    total.code_counts.update(part.code_counts)
    total.problems += part.problems[: max(0, max_details - len(total.problems))]
    for name in ("user_tokens", "assistant_tokens", "row_tokens"):
        getattr(total, name).counts.update(getattr(part, name).counts)


# --- parallel validation: each worker process reads and validates its own byte range -------
_worker: dict[str, Any] = {}


def _init_worker(chat_format: ChatFormat | None, settings: dict[str, Any]) -> None:
    if chat_format is not None:
        chat_format.tokenizer.single_threaded()  # one process per core already
    _worker.update(settings, chat_format=chat_format)


def _validate_range(path: str, start: int, end: int) -> ValidationReport:
    """Validate the lines that start in [start, end); line numbers count from the range."""
    w = _worker
    part = ValidationReport("", w["max_seq_length"], None)
    v = _Validator(part, w["chat_format"], w["max_details"], w["batch_rows"])
    # Numbering from 0 in later ranges keeps the BOM check on the file's first line only.
    number = 0 if start == 0 else -1
    with open(path, "rb") as f:
        if start > 0:
            f.seek(start - 1)
            f.readline()  # the line in progress at `start` belongs to the previous range
        pos = f.tell()
        while pos < end and (raw := f.readline()):
            number += 1
            v.line(number, raw)
            pos += len(raw)
        v.flush()
    if start > 0:
        _shift_lines(part, 1)
    return part


def _shift_lines(part: ValidationReport, offset: int) -> None:
    part.problems = [replace(p, line=p.line + offset) for p in part.problems]


def _validate_parallel(
    path: str,
    report: ValidationReport,
    chat_format: ChatFormat | None,
    workers: int,
    settings: dict[str, Any],
    progress: Callable[[int], None] | None,
) -> None:
    size = Path(path).stat().st_size
    ranges = [(s, min(s + CHUNK_BYTES, size)) for s in range(0, size, CHUNK_BYTES)]
    ctx = multiprocessing.get_context("spawn")  # no fork of a process that may hold threads
    with ProcessPoolExecutor(
        workers, mp_context=ctx, initializer=_init_worker, initargs=(chat_format, settings)
    ) as pool:
        futures = [pool.submit(_validate_range, path, s, e) for s, e in ranges]
        for future in futures:  # merged in file order, so line numbers add up
            part = future.result()
            _shift_lines(part, report.lines)
            _merge(report, part, settings["max_details"])
            if progress is not None:
                progress(report.bytes_read)


def validate_stream(
    stream: BinaryIO,
    *,
    name: str,
    chat_format: ChatFormat | None = None,
    max_seq_length: int | None = None,
    max_details: int = 1000,
    batch_rows: int = 256,
    workers: int = 1,
    progress: Callable[[int], None] | None = None,
) -> ValidationReport:
    """Validate JSONL from a binary stream. `progress` receives bytes read so far.

    `workers` > 1 validates byte ranges of a regular file in that many processes (the same
    report; each worker reads its own range, so no data is copied between processes).
    """
    started = time.perf_counter()
    tokenizer = chat_format.tokenizer.name if chat_format else None
    if chat_format and max_seq_length is None:
        max_seq_length = chat_format.profile.max_length
    if chat_format and max_seq_length and max_seq_length > chat_format.profile.max_length:
        raise FormatError(
            f"max_seq_length {max_seq_length} exceeds what {chat_format.profile.name} supports"
            f" ({chat_format.profile.max_length})"
        )
    report = ValidationReport(name, max_seq_length, tokenizer)
    path = getattr(stream, "name", None)
    if workers > 1 and isinstance(path, str) and Path(path).is_file():
        settings = {
            "max_seq_length": max_seq_length,
            "max_details": max_details,
            "batch_rows": batch_rows,
        }
        _validate_parallel(path, report, chat_format, workers, settings, progress)
        v = _Validator(report, None, max_details, batch_rows)
    else:
        v = _Validator(report, chat_format, max_details, batch_rows)
        for number, raw in enumerate(stream, start=1):
            v.line(number, raw)
            if progress is not None and number % 1024 == 0:
                progress(report.bytes_read)
    if progress is not None:
        progress(report.bytes_read)
    return _finish(v, started)


def _finish(v: _Validator, started: float) -> ValidationReport:
    v.flush()
    report = v.report
    if report.bytes_read == 0:
        v.problem(0, Issue("empty_file", "the file is empty; upload one JSON object per line"))
    report.problems.sort(key=lambda p: p.line)  # batched too_long checks arrive late
    report.seconds = time.perf_counter() - started
    return report


class ChunkValidator:
    """Validates JSONL that arrives in chunks of any size (an upload), line by line as
    `validate_stream` does; memory stays that of the longest line."""

    def __init__(
        self,
        name: str,
        *,
        chat_format: ChatFormat | None = None,
        max_seq_length: int | None = None,
        max_details: int = 1000,
        batch_rows: int = 256,
    ):
        self._started = time.perf_counter()
        tokenizer = chat_format.tokenizer.name if chat_format else None
        report = ValidationReport(name, max_seq_length, tokenizer)
        self._v = _Validator(report, chat_format, max_details, batch_rows)
        self._tail = bytearray()  # the line still arriving
        self._number = 0

    @property
    def report(self) -> ValidationReport:
        return self._v.report

    def feed(self, chunk: bytes) -> None:
        last = chunk.rfind(b"\n")
        if last < 0:
            self._tail += chunk
            return
        self._tail += chunk[: last + 1]
        lines = bytes(self._tail).split(b"\n")[:-1]  # as file iteration splits: on \n only
        self._tail = bytearray(chunk[last + 1 :])
        for raw in lines:
            self._number += 1
            self._v.line(self._number, raw + b"\n")

    def finish(self) -> ValidationReport:
        if self._tail:
            self._number += 1
            self._v.line(self._number, bytes(self._tail))
            self._tail.clear()
        return _finish(self._v, self._started)


def validate_file(path: str | Path, **kwargs: Any) -> ValidationReport:
    p = Path(path)
    with p.open("rb") as f:
        return validate_stream(f, name=str(p), **kwargs)
