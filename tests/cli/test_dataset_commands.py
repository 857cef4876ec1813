"""`medchat validate` and `medchat render`, run as a user runs them (a real subprocess)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from ..support.tokenizers import SFT_EXAMPLES

MEDCHAT = Path(sys.executable).with_name("medchat")


def medchat(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(MEDCHAT), *map(str, args)],
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
    )


def test_entry_point_installed() -> None:
    assert MEDCHAT.exists(), "pip install -e . must install the medchat command"
    assert "validate" in medchat("--help").stdout


def test_validate_shipped_examples_json(sp_dir: Path) -> None:
    r = medchat(
        "validate", SFT_EXAMPLES, "--tokenizer", sp_dir, "--max-seq-length", "1200", "--json"
    )
    assert r.returncode == 0, r.stderr
    report = json.loads(r.stdout)
    assert report["ok"] and report["valid_rows"] == 163
    assert report["tokens"]["assistant"]["count"] == 417


def test_validate_human_report_and_exit_code(tmp_path: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"messages": [{"role": "user", "content": "x"}]}\n{oops\n')
    r = medchat("validate", bad)
    assert r.returncode == 1
    assert "no_assistant_turn" in r.stdout and "invalid_json" in r.stdout
    assert "invalid" in r.stdout


def test_validate_rejects_length_beyond_model(sp_dir: Path) -> None:
    r = medchat("validate", SFT_EXAMPLES, "--tokenizer", sp_dir, "--max-seq-length", "8192")
    assert r.returncode == 2 and "exceeds" in r.stderr


def test_render_training_json(sp_dir: Path) -> None:
    r = medchat("render", SFT_EXAMPLES, "--tokenizer", sp_dir, "--max-seq-length", "1200", "--json")
    assert r.returncode == 0, r.stderr
    rows = [json.loads(x) for x in r.stdout.splitlines()]
    assert len(rows) == 163
    assert all(
        row["input_ids"][0] == 1 and len(row["input_ids"]) == len(row["target_mask"])
        for row in rows
    )


def test_render_prompt_json(sp_dir: Path, tmp_path: Path) -> None:
    path = tmp_path / "one.jsonl"
    path.write_text(
        json.dumps(
            {
                "conversation": [
                    {"role": "user", "content": "头痛"},
                    {"role": "assistant", "content": "休息"},
                    {"role": "user", "content": "发烧"},
                    {"role": "assistant", "content": "就医"},
                ]
            },
            ensure_ascii=False,
        )
        + "\n",
        encoding="utf-8",
    )
    r = medchat("render", path, "--tokenizer", sp_dir, "--prompt", "--budget", "4096", "--json")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert (
        out["text"] == "<s><reserved_102>头痛<reserved_103>休息</s><reserved_102>发烧<reserved_103>"
    )
    assert out["turns_kept"] == 3 and out["input_ids"][-1] == 196


@pytest.mark.parametrize("as_prompt", [False, True])
def test_render_reports_bad_lines(sp_dir: Path, tmp_path: Path, as_prompt: bool) -> None:
    path = tmp_path / "mixed.jsonl"
    path.write_text(
        '{"conversation": [{"role": "user", "content": "头痛"}, '
        '{"role": "assistant", "content": "休息"}]}\nnot json\n',
        encoding="utf-8",
    )
    args = ["--prompt"] if as_prompt else []
    r = medchat("render", path, "--tokenizer", sp_dir, *args, "--json")
    assert r.returncode == 1
    lines = [json.loads(x) for x in r.stdout.splitlines()]
    assert "input_ids" in lines[0] and lines[1]["line"] == 2
    assert "invalid_json" in lines[1]["error"]


def test_render_coloured_view(sp_dir: Path) -> None:
    r = medchat("render", SFT_EXAMPLES, "--tokenizer", sp_dir)
    assert r.returncode == 0
    assert "<s><reserved_102>中央型肺癌" in r.stdout.replace("\n", "")
    assert "trained (green)" in r.stdout


def test_dev_tokenizer_builds_a_baichuan_shaped_model(tmp_path: Path) -> None:
    r = medchat("dev-tokenizer", tmp_path / "tok", "--from", SFT_EXAMPLES)
    assert r.returncode == 0, r.stderr
    from services.core.chatformat import load_tokenizer

    tok = load_tokenizer(tmp_path / "tok")
    assert tok.token_to_id("<reserved_102>") == 195 and tok.token_to_id("<reserved_103>") == 196
