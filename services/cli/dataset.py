"""`medchat validate` and `medchat render`: check and inspect dialogue JSONL files."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click
import orjson
from rich.console import Console
from rich.progress import BarColumn, DownloadColumn, Progress, TransferSpeedColumn
from rich.table import Table
from rich.text import Text

from services.core.chatformat import (
    ChatFormat,
    ConversationError,
    FormatError,
    Issue,
    PromptTooLong,
    TokenizerLoadError,
    chat_format,
    get_profile,
    load_tokenizer,
    to_conversation,
)
from services.core.chatformat.validate import ValidationReport, validate_file

err = Console(stderr=True)
# Starting worker processes costs about a second; below this size one process is faster.
PARALLEL_FROM_BYTES = 64 << 20


def _bind(tokenizer_dir: Path, profile_name: str) -> ChatFormat:
    try:
        return chat_format(load_tokenizer(tokenizer_dir), get_profile(profile_name))
    except (TokenizerLoadError, FormatError, ValueError) as exc:
        raise click.UsageError(str(exc)) from exc


tokenizer_option = click.option(
    "--tokenizer",
    "tokenizer_dir",
    type=click.Path(exists=True, path_type=Path),
    help="Tokenizer directory (tokenizer.json, or a bare SentencePiece tokenizer.model).",
)
profile_option = click.option(
    "--profile",
    "profile_name",
    default="disc-medllm",
    show_default=True,
    help="Model profile: disc-medllm, baichuan2, or generic (the tokenizer's chat template).",
)
max_len_option = click.option(
    "--max-seq-length",
    type=click.IntRange(min=2),
    default=None,
    help="Training length limit in tokens (default: the profile's model maximum).",
)


@click.command()
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@tokenizer_option
@profile_option
@max_len_option
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@click.option("--max-details", default=1000, show_default=True, help="Problems listed in full.")
@click.option(
    "--workers",
    type=click.IntRange(min=1),
    default=None,
    help="Processes to validate with (default: one per core for files over 64 MB).",
)
def validate(
    file: Path,
    tokenizer_dir: Path | None,
    profile_name: str,
    max_seq_length: int | None,
    as_json: bool,
    max_details: int,
    workers: int | None,
) -> None:
    """Check a dialogue JSONL file; exit 1 when any line has an error.

    Without --tokenizer only the structure is checked; with it, token statistics and
    truncation at --max-seq-length are reported too.
    """
    fmt = _bind(tokenizer_dir, profile_name) if tokenizer_dir else None
    size = file.stat().st_size
    if workers is None:
        workers = (os.cpu_count() or 1) if size > PARALLEL_FROM_BYTES else 1
    progress = Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        console=err,
        transient=True,
        disable=not err.is_terminal,
    )
    with progress:
        task = progress.add_task(f"validating {file.name}", total=size)
        try:
            report = validate_file(
                file,
                chat_format=fmt,
                max_seq_length=max_seq_length,
                max_details=max_details,
                workers=workers,
                progress=lambda done: progress.update(task, completed=done),
            )
        except FormatError as exc:
            raise click.UsageError(str(exc)) from exc
    if as_json:
        sys.stdout.buffer.write(orjson.dumps(report.to_dict(), option=orjson.OPT_INDENT_2))
        sys.stdout.buffer.write(b"\n")
    else:
        _print_report(report)
    sys.exit(0 if report.ok else 1)


def _print_report(report: ValidationReport) -> None:
    out = Console()
    verdict = "[green]valid[/green]" if report.ok else "[red]invalid[/red]"
    out.print(
        f"[bold]{report.path}[/bold]: {verdict} — {report.rows} rows, {report.valid_rows} valid,"
        f" {report.turns} turns, {report.errors} errors, {report.warnings} warnings"
        f" ({report.bytes_read / 1e6:.1f} MB in {report.seconds:.1f} s)"
    )
    if report.problems:
        table = Table("line", "code", "severity", "where", "message", title="Problems")
        for p in report.problems:
            colour = "red" if p.severity == "error" else "yellow"
            table.add_row(
                str(p.line), p.code, f"[{colour}]{p.severity}[/{colour}]", p.param or "", p.message
            )
        out.print(table)
        omitted = report.errors + report.warnings - len(report.problems)
        if omitted:
            out.print(f"… and {omitted} more (see --json or raise --max-details)")
    if report.code_counts:
        out.print("By code: " + ", ".join(f"{c}={n}" for c, n in report.code_counts.items()))
    if report.tokenizer is None:
        return
    stats = Table(
        "tokens",
        "count",
        "mean",
        "p50",
        "p90",
        "p99",
        "max",
        title=f"Token statistics ({report.tokenizer})",
    )
    for name, dist in (
        ("user message", report.user_tokens),
        ("assistant message", report.assistant_tokens),
        ("row (rendered)", report.row_tokens),
    ):
        d = dist.to_dict()
        if d["count"]:
            stats.add_row(
                name,
                str(d["count"]),
                str(d["mean"]),
                str(d["p50"]),
                str(d["p90"]),
                str(d["p99"]),
                str(d["max"]),
            )
    out.print(stats)
    lost_share = report.trained_tokens_lost / max(
        1, report.trained_tokens + report.trained_tokens_lost
    )
    out.print(
        f"{report.truncated_rows} rows longer than max_seq_length {report.max_seq_length};"
        f" {report.trained_tokens_lost} of their assistant tokens are cut ({lost_share:.1%})"
    )


@click.command()
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--tokenizer",
    "tokenizer_dir",
    required=True,
    type=click.Path(exists=True, path_type=Path),
    help="Tokenizer directory (tokenizer.json, or a bare SentencePiece tokenizer.model).",
)
@profile_option
@max_len_option
@click.option(
    "--prompt",
    "as_prompt",
    is_flag=True,
    help="Render the conversation without its final answer as an inference prompt.",
)
@click.option(
    "--budget",
    type=click.IntRange(min=1),
    default=None,
    help="Prompt token budget with --prompt (default: the profile's maximum).",
)
@click.option("--json", "as_json", is_flag=True, help="One JSON object per input line.")
def render(
    file: Path,
    tokenizer_dir: Path,
    profile_name: str,
    max_seq_length: int | None,
    as_prompt: bool,
    budget: int | None,
    as_json: bool,
) -> None:
    """Show exactly what the model sees for each line: which tokens train, or the prompt."""
    fmt = _bind(tokenizer_dir, profile_name)
    max_len = max_seq_length or fmt.profile.max_length
    out = Console(highlight=False)
    failed = False
    for number, obj in _read_lines(file):
        try:
            if isinstance(obj, orjson.JSONDecodeError):
                raise ConversationError([Issue("invalid_json", f"not valid JSON: {obj}")])
            conversation = to_conversation(obj)
            if as_prompt:
                turns = list(conversation.turns)
                while turns and turns[-1].role == "assistant":
                    turns.pop()
                p = fmt.render_prompt(turns, budget or max_len, conversation.system)
                result: dict[str, Any] = {
                    "input_ids": p.input_ids,
                    "text": p.text,
                    "turns_kept": p.turns_kept,
                }
            else:
                s = fmt.render_training(conversation, max_len)
                result = {"input_ids": s.input_ids, "target_mask": s.target_mask}
        except (ConversationError, FormatError, PromptTooLong) as exc:
            failed = True
            result = {"line": number, "error": str(exc)}
        if as_json:
            sys.stdout.buffer.write(orjson.dumps(result) + b"\n")
        else:
            _show(out, fmt, number, result)
    sys.exit(1 if failed else 0)


def _read_lines(file: Path) -> Iterator[tuple[int, Any]]:
    with file.open("rb") as f:
        for number, raw in enumerate(f, start=1):
            raw = raw.removeprefix(b"\xef\xbb\xbf") if number == 1 else raw
            if not raw.strip():
                continue
            try:
                yield number, orjson.loads(raw)
            except orjson.JSONDecodeError as exc:
                yield number, exc


def _show(out: Console, fmt: ChatFormat, number: int, result: dict[str, Any]) -> None:
    out.rule(f"line {number}")
    if "error" in result:
        out.print(f"[red]{result['error']}[/red]")
        return
    if "text" in result:
        out.print(Text(result["text"]))
        out.print(
            f"[dim]{len(result['input_ids'])} tokens, {result['turns_kept']} turns kept[/dim]"
        )
        return
    ids, mask = result["input_ids"], result["target_mask"]
    special = fmt.tokenizer.special_ids
    view = Text()
    start = 0
    # Runs of tokens that share (trained?, control?) are decoded together so that
    # multi-byte characters split over byte-fallback pieces print correctly.
    for i in range(1, len(ids) + 1):
        if i < len(ids) and (mask[i], ids[i] in special) == (mask[start], ids[start] in special):
            continue
        run = ids[start:i]
        if ids[start] in special:
            piece = "".join(fmt.tokenizer.id_to_token(t) for t in run)
            view.append(piece, style="bold magenta")
        else:
            view.append(fmt.tokenizer.decode(run), style="green" if mask[start] else "dim")
        start = i
    out.print(view)
    out.print(f"[dim]{len(ids)} tokens, {sum(mask)} trained (green); control tokens magenta[/dim]")


@click.command("dev-tokenizer")
@click.argument("out_dir", type=click.Path(file_okay=False, path_type=Path))
@click.option(
    "--from",
    "source",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    required=True,
    help="JSONL dialogues to train on.",
)
def dev_tokenizer(out_dir: Path, source: Path) -> None:
    """Build a tiny Baichuan-shaped tokenizer (for development without model downloads)."""
    from services.core.devtools.tiny_tokenizer import build_tiny_tokenizer, jsonl_texts

    build_tiny_tokenizer(out_dir, jsonl_texts(source))
    err.print(f"wrote {out_dir / 'tokenizer.model'} (<reserved_102>=195, <reserved_103>=196)")
