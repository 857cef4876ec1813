"""Bad input: each a clear message, before any model weight is loaded."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

import trainer.model
from trainer.args import ScriptArguments
from trainer.checks import PreflightError, check_model
from trainer.data import DataError
from trainer.train import run

from .conftest import RunTrainer, read_progress, write_jsonl

GOOD = {
    "conversation": [{"role": "user", "content": "头痛"}, {"role": "assistant", "content": "休息"}]
}


@pytest.fixture(autouse=True)
def no_model_loading(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("the model was loaded before the input was checked")

    monkeypatch.setattr(trainer.model, "load_model", refuse)


def test_unreadable_train_file(run_trainer: RunTrainer, tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"cannot read .*nowhere\.jsonl"):
        run_trainer(train_file=str(tmp_path / "nowhere.jsonl"))


def test_rejected_row_with_line_number(run_trainer: RunTrainer, tmp_path: Path) -> None:
    bad = {"conversation": [{"role": "user", "content": "只有问题"}]}
    data = write_jsonl(tmp_path / "d.jsonl", [GOOD, GOOD, GOOD, bad])
    progress = tmp_path / "p.jsonl"
    with pytest.raises(DataError, match=r"d\.jsonl, line 4: no_assistant_turn"):
        run_trainer(train_file=str(data), progress_file=str(progress))
    # The worker sees why on the progress stream too.
    (line,) = read_progress(progress)
    assert line["event"] == "error" and "line 4" in line["message"]


def test_bad_eval_file_is_caught_too(run_trainer: RunTrainer, tmp_path: Path) -> None:
    data = write_jsonl(tmp_path / "t.jsonl", [GOOD])
    (tmp_path / "e.jsonl").write_text(json.dumps(GOOD) + "\n[1, 2]\n")
    with pytest.raises(DataError, match=r"e\.jsonl, line 2: missing_messages"):
        run_trainer(train_file=str(data), eval_file=str(tmp_path / "e.jsonl"))


def test_max_seq_length_beyond_the_model(run_trainer: RunTrainer) -> None:
    with pytest.raises(PreflightError, match=r"max_seq_length=5000 .*max_position_embeddings=4096"):
        run_trainer(max_seq_length=5000)
    with pytest.raises(PreflightError, match=r"pack_length=8192 .*max_position_embeddings=4096"):
        run_trainer(packing=True, pack_length=8192)


def test_deepspeed_without_a_gpu(run_trainer: RunTrainer) -> None:
    with pytest.raises(PreflightError, match=r"DeepSpeed was asked for .* no CUDA GPU is visible"):
        run_trainer(deepspeed="trainer/configs/ds_z3_config.json", bf16=True)


def test_not_a_model_and_unknown_profile(run_trainer: RunTrainer, tmp_path: Path) -> None:
    with pytest.raises(PreflightError, match=r"no config\.json"):
        run_trainer(model_name_or_path=str(tmp_path))
    with pytest.raises(PreflightError, match="unknown model profile 'nope'"):
        run_trainer(profile="nope")


def _remote_code_model(tmp_path: Path, hf_marker_dir: Path, model_type: str) -> Path:
    model = tmp_path / model_type
    model.mkdir()
    for f in hf_marker_dir.iterdir():
        (model / f.name).write_bytes(f.read_bytes())
    config = {
        "model_type": model_type,
        "auto_map": {"AutoConfig": f"configuration_{model_type}.Config"},
        "model_max_length": 4096,
    }
    (model / "config.json").write_text(json.dumps(config))
    return model


def test_remote_code_only_when_asked(
    run_trainer: RunTrainer, tmp_path: Path, hf_marker_dir: Path
) -> None:
    """A model with its own code (named in auto_map) is refused unless the arguments trust
    it; the check reads config.json only, nothing is executed."""
    model = _remote_code_model(tmp_path, hf_marker_dir, "mystery")
    with pytest.raises(PreflightError, match=r"runs its own code; set trust_remote_code true"):
        run_trainer(model_name_or_path=str(model))


def test_baichuan_needs_no_remote_code_and_packs(tmp_path: Path, hf_marker_dir: Path) -> None:
    """Baichuan's config.json as released (auto_map to its 2023 code) is read by the native
    implementation, trusted or not, and packing is allowed for it."""
    model = _remote_code_model(tmp_path, hf_marker_dir, "baichuan")
    for trust in (False, True):
        script = ScriptArguments(
            model_name_or_path=str(model),
            train_file="unused.jsonl",
            packing=True,
            trust_remote_code=trust,
        )
        assert check_model(script) == 4096


def test_command_line_exit_status_and_message(
    tmp_path: Path, tiny_model_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = tmp_path / "a.json"
    args.write_text(
        json.dumps(
            {
                "model_name_or_path": str(tiny_model_dir),
                "train_file": "missing.jsonl",
                "output_dir": str(tmp_path),
            }
        )
    )
    assert run(["--train_args_file", str(args)]) == 2
    assert "trainer: error: cannot read missing.jsonl" in capsys.readouterr().err
    args.write_text(json.dumps({"train_file": "x", "learning_rat": 1}))
    assert run(["--train_args_file", str(args)]) == 2
    assert "unknown arguments learning_rat" in capsys.readouterr().err
