"""Streaming JSONL validation: codes on the right lines, odd files, token statistics."""

from __future__ import annotations

import itertools
import json
import os
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.core.chatformat import chat_format, load_tokenizer
from services.core.chatformat.validate import ChunkValidator, Distribution, validate_file

from ...support.tokenizers import SFT_EXAMPLES

GOOD = {
    "conversation": [
        {"role": "user", "content": "头痛"},
        {"role": "assistant", "content": "多休息"},
    ]
}


def line(obj: Any) -> bytes:
    return json.dumps(obj, ensure_ascii=False).encode() + b"\n"


def problems(report: Any) -> list[tuple[int, str]]:
    return [(p.line, p.code) for p in report.problems]


FAULTY_ROWS = [
    line(GOOD),  # 1
    b'{"conversation": [{"role": "user", "content": "x"}\n',  # 2 invalid_json
    line({"foo": []}),  # 3 missing_messages
    line({"messages": [{"role": "nurse", "content": "x"}]}),  # 4 unrecognized_role
    line(
        {
            "messages": [
                {"role": "user", "content": "a"},
                {"role": "user", "content": "b"},
                {"role": "assistant", "content": "c"},
            ]
        }
    ),  # 5 consecutive_roles
    line(
        {"messages": [{"role": "user", "content": " "}, {"role": "assistant", "content": "c"}]}
    ),  # 6 empty_content
    line({"messages": [{"role": "user", "content": "a"}]}),  # 7 no_assistant_turn
    line(
        {
            "messages": [
                {"role": "user", "content": "a"},
                {"role": "assistant", "content": "b", "weight": 0.5},
            ]
        }
    ),  # 8
    b'{"messages": "\xff\xfe"}\n',  # 9 not_utf8
    line(GOOD),  # 10
]


def test_known_faults_on_known_lines(tmp_path: Path) -> None:
    path = tmp_path / "faults.jsonl"
    path.write_bytes(b"".join(FAULTY_ROWS))
    report = validate_file(path)
    assert problems(report) == [
        (2, "invalid_json"),
        (3, "missing_messages"),
        (4, "unrecognized_role"),
        (4, "no_assistant_turn"),
        (5, "consecutive_roles"),
        (6, "empty_content"),
        (7, "no_assistant_turn"),
        (8, "invalid_weight"),
        (9, "not_utf8"),
    ]
    assert not report.ok and report.errors == 9
    assert (report.rows, report.valid_rows) == (10, 2)


def test_too_long_reports_token_count_and_limit(tmp_path: Path, sp_dir: Path) -> None:
    fmt = chat_format(load_tokenizer(sp_dir))
    long_answer = {
        "conversation": [
            {"role": "user", "content": "头痛"},
            {"role": "assistant", "content": "多休息。" * 40},
            {"role": "user", "content": "还有呢"},
            {"role": "assistant", "content": "多喝水。" * 40},
        ]
    }
    first_too_long = {
        "conversation": [
            {"role": "user", "content": "头痛" * 200},
            {"role": "assistant", "content": "休息"},
        ]
    }
    path = tmp_path / "long.jsonl"
    path.write_bytes(line(GOOD) + line(long_answer) + line(first_too_long))
    report = validate_file(path, chat_format=fmt, max_seq_length=200)
    found = {(p.line, p.code, p.severity): p.message for p in report.problems}
    warning = found[(2, "too_long", "warning")]
    error = found[(3, "too_long", "error")]
    assert "max_seq_length 200" in warning and "nothing is left to train on" in error
    assert report.truncated_rows == 2 and report.trained_tokens_lost > 0
    assert report.valid_rows == 2 and not report.ok


def test_shipped_examples_validate_with_stats(sp_dir: Path) -> None:
    fmt = chat_format(load_tokenizer(sp_dir))
    report = validate_file(SFT_EXAMPLES, chat_format=fmt, max_seq_length=1200)
    assert report.ok and report.rows == report.valid_rows == 163
    assert report.turns == 837
    assert report.user_tokens.n == 420 and report.assistant_tokens.n == 417
    # Three shipped rows end with an unanswered user turn: warned, not rejected.
    assert report.code_counts == {"trailing_user_turn": 3}
    d = report.to_dict()
    assert d["tokens"]["row"]["p50"] <= d["tokens"]["row"]["p99"] <= d["tokens"]["row"]["max"]
    assert sum(d["tokens"]["row"]["histogram"]["counts"]) == 163


def test_empty_file(tmp_path: Path) -> None:
    path = tmp_path / "empty.jsonl"
    path.write_bytes(b"")
    report = validate_file(path)
    assert problems(report) == [(0, "empty_file")] and not report.ok


def test_binary_file(tmp_path: Path) -> None:
    path = tmp_path / "blob.jsonl"
    path.write_bytes(bytes(range(256)) * 64)
    report = validate_file(path)
    assert not report.ok
    assert set(report.code_counts) <= {"not_utf8", "invalid_json", "blank_line"}
    assert report.code_counts["not_utf8"] >= 1


def test_bom_and_crlf(tmp_path: Path) -> None:
    path = tmp_path / "windows.jsonl"
    body = line(GOOD).replace(b"\n", b"\r\n")
    path.write_bytes(b"\xef\xbb\xbf" + body * 3)
    report = validate_file(path)
    assert report.ok and report.valid_rows == 3
    assert problems(report) == [(1, "utf8_bom")]


def test_blank_lines_are_warnings(tmp_path: Path) -> None:
    path = tmp_path / "blank.jsonl"
    path.write_bytes(line(GOOD) + b"\n   \n" + line(GOOD))
    report = validate_file(path)
    assert report.ok and problems(report) == [(2, "blank_line"), (3, "blank_line")]


def test_ten_megabyte_single_line(tmp_path: Path, sp_dir: Path) -> None:
    fmt = chat_format(load_tokenizer(sp_dir))
    big = {
        "conversation": [
            {"role": "user", "content": "头痛"},
            {"role": "assistant", "content": "多喝水，注意休息。" * 400_000},
        ]
    }
    path = tmp_path / "big.jsonl"
    path.write_bytes(line(big))
    assert os.path.getsize(path) > 10_000_000
    report = validate_file(path, chat_format=fmt, max_seq_length=4096)
    assert report.code_counts == {"too_long": 1}
    assert report.assistant_tokens.n == 1 and report.row_tokens.percentile(100) > 1_000_000


def test_details_are_capped_but_all_counted(tmp_path: Path) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_bytes(b"not json\n" * 50)
    report = validate_file(path, max_details=10)
    assert len(report.problems) == 10 and report.errors == 50
    assert report.to_dict()["problems_omitted"] == 40


@pytest.mark.parametrize(("q", "expected"), [(0, 1), (50, 2), (90, 10), (100, 10)])
def test_distribution_percentiles(q: float, expected: int) -> None:
    d = Distribution()
    d.update([1, 2, 2, 3, 10])
    assert d.percentile(q) == expected


def test_parallel_validation_gives_the_same_report(
    tmp_path: Path, sp_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fmt = chat_format(load_tokenizer(sp_dir))
    path = tmp_path / "mixed.jsonl"
    shipped = SFT_EXAMPLES.read_bytes()
    path.write_bytes(b"\xef\xbb\xbf" + shipped + b"oops\n\n" + shipped.replace(b"\n", b"\r\n"))
    # Small chunks: many chunk boundaries, so line numbering across chunks is exercised.
    monkeypatch.setattr("services.core.chatformat.validate.CHUNK_BYTES", 16_384)
    serial = validate_file(path, chat_format=fmt, max_seq_length=300).to_dict()
    parallel = validate_file(path, chat_format=fmt, max_seq_length=300, workers=2).to_dict()
    serial.pop("seconds"), parallel.pop("seconds")
    assert parallel == serial
    assert serial["counts_by_code"]["invalid_json"] == 1 and serial["tokens"]["truncated_rows"] > 0
    assert [p["line"] for p in serial["problems"] if p["code"] == "invalid_json"] == [164]


@settings(max_examples=60, deadline=None)
@given(cuts=st.lists(st.integers(min_value=0, max_value=2000), max_size=12))
def test_chunked_validation_equals_file_validation(tmp_path_factory: Any, cuts: list[int]) -> None:
    """An upload validated as it arrives, cut anywhere (inside a line, a UTF-8 character or a
    CRLF), reports exactly what validating the stored file reports."""
    data = b"\xef\xbb\xbf" + b"".join(FAULTY_ROWS) + b"\r\n" + line(GOOD).rstrip(b"\n")
    path = tmp_path_factory.mktemp("chunks") / "upload.jsonl"
    path.write_bytes(data)
    validator = ChunkValidator(str(path))
    bounds = [0, *sorted(c % (len(data) + 1) for c in cuts), len(data)]
    for a, b in itertools.pairwise(bounds):
        validator.feed(data[a:b])
    chunked = validator.finish().to_dict()
    whole = validate_file(path).to_dict()
    chunked.pop("seconds"), whole.pop("seconds")
    assert chunked == whole
    assert chunked["errors"] == 9


def test_chunked_validation_of_nothing_is_an_empty_file() -> None:
    assert problems(ChunkValidator("x").finish()) == [(0, "empty_file")]
