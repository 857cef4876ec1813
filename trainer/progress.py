"""Machine-readable progress: JSON lines on a stream of their own (a file, or a file
descriptor the worker passes down in MEDCHAT_PROGRESS_FD), written by rank 0 alone. The
console keeps Trainer's tqdm bar.

Lines, one JSON object each, told apart by "event":
  start       max_steps, num_train_epochs, start_step (above 0 when resuming)
  progress    step, max_steps, epoch, loss, learning_rate, grad_norm, tokens_per_s (real,
              non-padding tokens, all ranks), eta_s
  eval        step, eval_loss, ...
  checkpoint  step, path, loss
  summary     trained_tokens, target_tokens, train_runtime_s, final_loss, train_loss (the
              mean of the logged losses),
              global_step, output_dir, saved ("full", "adapter" or "merged")
  error       message (a run that could not start)
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import IO, Any

from transformers import TrainerCallback

PROGRESS_FD_ENV = "MEDCHAT_PROGRESS_FD"


def open_stream(path: str | None, environ: Any = os.environ) -> IO[str] | None:
    """The progress stream: `path` (appended to), else the inherited descriptor named by
    MEDCHAT_PROGRESS_FD, else none. Line-buffered: a reader sees each line when written."""
    if path:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        return open(path, "a", buffering=1, encoding="utf-8")
    fd = environ.get(PROGRESS_FD_ENV)
    if fd:
        return os.fdopen(int(fd), "a", buffering=1, encoding="utf-8", closefd=False)
    return None


def is_rank_zero(environ: Any = os.environ) -> bool:
    """Before the process group exists: the launchers' RANK variable."""
    return str(environ.get("RANK", "0")) == "0"


def write_line(stream: IO[str] | None, line: dict[str, Any]) -> None:
    if stream is not None:
        stream.write(json.dumps(line, ensure_ascii=False) + "\n")


def _round(value: Any, digits: int = 6) -> Any:
    return round(value, digits) if isinstance(value, float) else value


class ProgressCallback(TrainerCallback):
    def __init__(self, path: str | None) -> None:
        self.path = path
        self.stream: IO[str] | None = None
        self.started = time.monotonic()
        self.start_step = 0
        self.last_loss: float | None = None
        self.logged_losses: list[float] = []
        self.runtime_s: float | None = None
        self.real_tokens = 0
        self.target_tokens = 0
        self._last_log: tuple[float, int] = (self.started, 0)  # time, real tokens

    def write(self, line: dict[str, Any]) -> None:
        write_line(self.stream, line)

    def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if not state.is_world_process_zero:
            return
        if self.stream is None:
            self.stream = open_stream(self.path)
        self.started = time.monotonic()
        self._last_log = (self.started, 0)
        self.start_step = state.global_step
        self.write(
            {
                "event": "start",
                "max_steps": state.max_steps,
                "num_train_epochs": args.num_train_epochs,
                "start_step": state.global_step,
                "world_size": args.world_size,
            }
        )

    def on_log(
        self, args: Any, state: Any, control: Any, logs: dict[str, Any] | None = None, **kwargs: Any
    ) -> None:
        if not state.is_world_process_zero or not logs:
            return
        self.real_tokens = int(logs.get("real_tokens", self.real_tokens))
        self.target_tokens = int(logs.get("target_tokens", self.target_tokens))
        if "train_runtime" in logs:  # Trainer's end-of-training log
            # Its train_loss is not used: under DDP, steps after the last logging step count
            # rank 0's share only (transformers 5.24); the logged losses are all-rank means.
            self.runtime_s = logs.get("train_runtime")
            return
        if "loss" in logs:
            self.last_loss = float(logs["loss"])
            self.logged_losses.append(self.last_loss)
            self.write(self._progress(state, logs))
        elif any(k.startswith("eval_") for k in logs):
            eval_logs = {k: _round(v) for k, v in logs.items() if k.startswith("eval_")}
            self.write({"event": "eval", "step": state.global_step, **eval_logs})

    def _progress(self, state: Any, logs: dict[str, Any]) -> dict[str, Any]:
        now = time.monotonic()
        then, tokens_then = self._last_log
        self._last_log = (now, self.real_tokens)
        done = state.global_step - self.start_step
        eta = (now - self.started) / done * (state.max_steps - state.global_step) if done else None
        return {
            "event": "progress",
            "step": state.global_step,
            "max_steps": state.max_steps,
            "epoch": _round(state.epoch, 4),
            "loss": _round(logs["loss"]),
            "learning_rate": logs.get("learning_rate"),
            "grad_norm": _round(logs.get("grad_norm")),
            "tokens_per_s": round((self.real_tokens - tokens_then) / max(now - then, 1e-9), 1),
            "eta_s": round(eta, 1) if eta is not None else None,
        }

    def on_save(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if state.is_world_process_zero:
            path = Path(args.output_dir) / f"checkpoint-{state.global_step}"
            self.write(
                {
                    "event": "checkpoint",
                    "step": state.global_step,
                    "path": str(path),
                    "loss": self.last_loss,
                }
            )

    def finish(self, state: Any, output_dir: str, saved: str) -> dict[str, Any]:
        """The summary line, written after the final model is saved (rank 0 only calls it)."""
        mean_loss = sum(self.logged_losses) / max(len(self.logged_losses), 1)
        summary = {
            "event": "summary",
            "trained_tokens": self.real_tokens,
            "target_tokens": self.target_tokens,
            "train_runtime_s": _round(self.runtime_s, 3),
            "final_loss": _round(self.last_loss),
            "train_loss": _round(mean_loss) if self.logged_losses else None,
            "global_step": state.global_step,
            "output_dir": output_dir,
            "saved": saved,
        }
        self.write(summary)
        if self.stream is not None:
            self.stream.close()
            self.stream = None
        return summary
