"""Trainer fixtures: a tiny random Llama that speaks the marker tokenizer's ids (2 layers,
hidden 64), and helpers to run the trainer on it in-process."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch

from services.core.chatformat import DISC_MEDLLM, Tokenizer, load_tokenizer
from tests.support.tiny_model import build_tiny_marker_model
from tests.support.tokenizers import SFT_EXAMPLES
from trainer.data import Features, build_features, read_conversations, render_samples

torch.set_num_threads(2)  # the suite's machines have 2 cores; more threads only contend


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory, hf_marker_dir: Path) -> Path:
    return build_tiny_marker_model(tmp_path_factory.mktemp("tiny_model"), hf_marker_dir)


@pytest.fixture(scope="session")
def tokenizer(hf_marker_dir: Path) -> Tokenizer:
    return load_tokenizer(hf_marker_dir)


@pytest.fixture(scope="session")
def sft_features(tokenizer: Tokenizer) -> list[Features]:
    """The real DISC-Med-SFT rows rendered at 128 tokens."""
    samples = render_samples(read_conversations(SFT_EXAMPLES), tokenizer, 128, DISC_MEDLLM)
    return build_features(samples)[0]


def write_jsonl(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), "utf-8")
    return path


def first_rows(n: int) -> list[dict[str, Any]]:
    with SFT_EXAMPLES.open(encoding="utf-8") as f:
        return [json.loads(next(f)) for _ in range(n)]


RunTrainer = Callable[..., dict[str, Any]]


@pytest.fixture
def run_trainer(tiny_model_dir: Path, tmp_path: Path) -> RunTrainer:
    """main() with an arguments file holding the small-run defaults, `overrides` on top."""
    from trainer.train import main

    def run(**overrides: Any) -> dict[str, Any]:
        args: dict[str, Any] = {
            "model_name_or_path": str(tiny_model_dir),
            "train_file": str(SFT_EXAMPLES),
            "output_dir": str(tmp_path / "out"),
            "max_seq_length": 128,
            "per_device_train_batch_size": 4,
            "max_steps": 2,
            "logging_steps": 1,
            "save_strategy": "no",
            "report_to": [],
            "disable_tqdm": True,
            "dataloader_pin_memory": False,
            "seed": 0,
            **overrides,
        }
        path = tmp_path / "train_args.json"
        path.write_text(json.dumps(args))
        summary = main(["--train_args_file", str(path)])
        assert summary is not None
        return summary

    return run


def read_progress(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]
