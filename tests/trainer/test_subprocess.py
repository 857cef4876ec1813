"""`python -m trainer.train` as the worker runs it: a real process, progress on an inherited
file descriptor (MEDCHAT_PROGRESS_FD), a directory that loads afterwards."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from transformers import AutoModelForCausalLM

from tests.support.tokenizers import SFT_EXAMPLES

ROOT = Path(__file__).resolve().parents[2]


def test_python_module_end_to_end(tiny_model_dir: Path, tmp_path: Path) -> None:
    args = tmp_path / "sft.json"
    args.write_text(
        json.dumps(
            {
                "model_name_or_path": str(tiny_model_dir),
                "train_file": str(SFT_EXAMPLES),
                "output_dir": str(tmp_path / "ignored"),
                "max_seq_length": 96,
                "packing": True,
                "per_device_train_batch_size": 2,
                "max_steps": 2,
                "logging_steps": 1,
                "report_to": [],
                "dataloader_pin_memory": False,
            }
        )
    )
    out = tmp_path / "out"  # a command-line override wins over the file
    read_fd, write_fd = os.pipe()
    env = {**os.environ, "MEDCHAT_PROGRESS_FD": str(write_fd), "OMP_NUM_THREADS": "2"}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "trainer.train",
            "--train_args_file",
            str(args),
            "--output_dir",
            str(out),
        ],
        cwd=ROOT,
        env=env,
        pass_fds=(write_fd,),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    os.close(write_fd)
    with os.fdopen(read_fd) as progress:
        lines = [json.loads(line) for line in progress]
    log, _ = proc.communicate(timeout=120)
    assert proc.returncode == 0, log[-3000:]
    assert "it/s" in log or "s/it" in log  # the tqdm bar on the console
    events = [line["event"] for line in lines]
    assert events[0] == "start" and events[-1] == "summary"
    assert events.count("progress") == 2
    assert lines[-1]["output_dir"] == str(out) and lines[-1]["trained_tokens"] > 0
    assert not (tmp_path / "ignored").exists()
    model = AutoModelForCausalLM.from_pretrained(out)
    assert model.config.num_hidden_layers == 2


@pytest.mark.slow
def test_two_ranks_equal_one_process(tiny_model_dir: Path, tmp_path: Path) -> None:
    """torchrun with 2 CPU ranks (gloo) × 4 rows = 1 process × 8 rows: the loss divides by the
    target count of every rank, so one SGD step lands on the same weights; the logged loss is
    the all-rank mean."""
    rows = [json.loads(line) for line in SFT_EXAMPLES.read_text().splitlines()[:8]]
    data = tmp_path / "eight.jsonl"
    data.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
    args = tmp_path / "args.json"
    args.write_text(
        json.dumps(
            {
                "model_name_or_path": str(tiny_model_dir),
                "train_file": str(data),
                "max_seq_length": 1024,  # every row keeps its answer: 8 rows, 8 samples
                "max_steps": 1,
                "optim": "sgd",
                "learning_rate": 1.0,
                "lr_scheduler_type": "constant",
                "weight_decay": 0.0,
                "max_grad_norm": 0.0,
                "logging_steps": 1,
                "save_strategy": "no",
                "report_to": [],
                "disable_tqdm": True,
                "dataloader_pin_memory": False,
                "use_cpu": True,
            }
        )
    )
    module = ["-m", "trainer.train", "--train_args_file", str(args)]
    runs = {
        "ddp": [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--standalone",
            "--nproc_per_node=2",
            *module,
            "--per_device_train_batch_size",
            "4",
        ],
        "single": [sys.executable, *module, "--per_device_train_batch_size", "8"],
    }
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    losses = {}
    for name, argv in runs.items():
        progress = tmp_path / f"{name}.jsonl"
        extra = ["--output_dir", str(tmp_path / name), "--progress_file", str(progress)]
        proc = subprocess.run(
            argv + extra, cwd=ROOT, env=env, capture_output=True, text=True, timeout=180
        )
        assert proc.returncode == 0, proc.stderr[-3000:]
        lines = [json.loads(x) for x in progress.read_text().splitlines()]
        assert lines[0]["world_size"] == (2 if name == "ddp" else 1)
        losses[name] = next(x["loss"] for x in lines if x["event"] == "progress")
    assert losses["ddp"] == pytest.approx(losses["single"], abs=1e-5)
    ddp = load_file(str(tmp_path / "ddp" / "model.safetensors"))
    single = load_file(str(tmp_path / "single" / "model.safetensors"))
    base = load_file(str(tiny_model_dir / "model.safetensors"))
    for key, value in single.items():
        assert (value - base[key]).abs().max() > 0  # the step moved every tensor
        assert torch.allclose(ddp[key], value, atol=1e-6), key
