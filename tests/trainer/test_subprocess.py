"""`python -m trainer.train` as the worker runs it: a real process, progress on an inherited
file descriptor (MEDCHAT_PROGRESS_FD), a directory that loads afterwards."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

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
