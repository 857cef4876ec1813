"""Rows → features: the format module renders, the trainer only shifts labels."""

from __future__ import annotations

from pathlib import Path

import pytest

from services.core.chatformat import DISC_MEDLLM, Tokenizer, render_training, to_conversation
from trainer.data import IGNORE_INDEX, DataError, pad_token_id, read_conversations, to_features

from .conftest import write_jsonl


def test_features_shift_targets_within_the_conversation(tokenizer: Tokenizer) -> None:
    conv = to_conversation(
        {
            "conversation": [
                {"role": "user", "content": "头痛"},
                {"role": "assistant", "content": "休息"},
            ]
        }
    )
    sample = render_training(conv, tokenizer, 64, profile=DISC_MEDLLM)
    f = to_features(sample)
    ids, mask = sample.input_ids, sample.target_mask
    assert f["input_ids"] == ids
    assert f["position_ids"] == list(range(len(ids)))
    # Position t is scored on token t+1 exactly where the format module marks t+1 as target.
    expected = [ids[t + 1] if mask[t + 1] else IGNORE_INDEX for t in range(len(ids) - 1)]
    assert f["shift_labels"] == [*expected, IGNORE_INDEX]
    # DISC-MedLLM: the assistant marker (196) is context, the answer and its eos (2) train.
    a = ids.index(196)
    assert f["shift_labels"][a - 1] == IGNORE_INDEX
    assert f["shift_labels"][a] == ids[a + 1]
    assert f["shift_labels"][-2] == 2 == ids[-1]


def test_pad_is_unk_never_eos(tokenizer: Tokenizer) -> None:
    assert pad_token_id(tokenizer, DISC_MEDLLM) == 0 == tokenizer.unk_id != tokenizer.eos_id


def test_rejected_row_names_its_line(tmp_path: Path) -> None:
    good = {
        "conversation": [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}]
    }
    bad = {"conversation": [{"role": "user", "content": "a"}, {"role": "user", "content": "b"}]}
    path = write_jsonl(tmp_path / "d.jsonl", [good, good, bad])
    with pytest.raises(DataError, match=r"line 3: .*consecutive_roles"):
        read_conversations(path)


def test_unreadable_and_non_json(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="cannot read"):
        read_conversations(tmp_path / "missing.jsonl")
    (tmp_path / "x.jsonl").write_text('{"conversation": []}\n{not json\n')
    with pytest.raises(DataError, match="line 1: missing_messages"):
        read_conversations(tmp_path / "x.jsonl")
    (tmp_path / "y.jsonl").write_text("\n{not json\n")
    with pytest.raises(DataError, match="line 2: not valid JSON"):
        read_conversations(tmp_path / "y.jsonl")
