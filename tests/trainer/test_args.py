"""Arguments: the shipped JSON files parse, command-line overrides win, unknown keys fail."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from trainer.args import ArgumentsError, parse_args, training_arguments

CONFIGS = Path(__file__).resolve().parents[2] / "trainer" / "configs"


def test_sft_json_parses_and_overrides_win() -> None:
    script, training = parse_args(
        ["--train_args_file", str(CONFIGS / "sft.json"), "--output_dir", "elsewhere", "--packing"]
    )
    assert script.max_seq_length == 1200  # DISC-MedLLM's
    assert script.packing and script.row_length == 1200
    assert script.profile == "disc-medllm"
    assert training["output_dir"] == "elsewhere"
    assert training["deepspeed"] == "trainer/configs/ds_z3_config.json"
    assert training["bf16"] is True and training["gradient_checkpointing"] is True


def test_training_arguments_keep_the_trainer_columns(tmp_path: Path) -> None:
    _, training = parse_args(
        ["--model_name_or_path", "m", "--train_file", "t", "--output_dir", str(tmp_path)]
    )
    args = training_arguments(training)
    assert args.remove_unused_columns is False
    assert args.label_names == ["shift_labels"]
    assert args.prediction_loss_only is True


def test_unknown_key_and_bad_file(tmp_path: Path) -> None:
    f = tmp_path / "a.json"
    f.write_text(json.dumps({"model_name_or_path": "m", "lora_rank": 8}))
    with pytest.raises(ArgumentsError, match="unknown arguments lora_rank"):
        parse_args(["--train_args_file", str(f)])
    f.write_text("[1]")
    with pytest.raises(ArgumentsError, match="one JSON object"):
        parse_args(["--train_args_file", str(f)])
    with pytest.raises(ArgumentsError, match="cannot read"):
        parse_args(["--train_args_file", str(tmp_path / "none.json")])


@pytest.mark.parametrize("name", ["ds_z3_config.json", "ds_z3_offload_config.json"])
def test_deepspeed_configs(name: str) -> None:
    from transformers.integrations.deepspeed import HfTrainerDeepSpeedConfig

    config = HfTrainerDeepSpeedConfig(str(CONFIGS / name))
    assert config.is_zero3()
    assert config.is_offload() == ("offload" in name)
    zero = config.config["zero_optimization"]
    assert zero["overlap_comm"] and zero["contiguous_gradients"]
    assert zero["stage3_gather_16bit_weights_on_model_save"] is True
    assert config.config["bf16"] == {"enabled": "auto"}
    assert config.config["train_micro_batch_size_per_gpu"] == "auto"
