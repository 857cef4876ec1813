"""The collator pads and nothing else: exact tensors."""

from __future__ import annotations

import torch

from trainer.collator import PadCollator
from trainer.data import Features
from trainer.packing import block_causal_mask, document_ids, pack_row

A = Features(
    input_ids=[1, 195, 11, 196, 12, 2],
    shift_labels=[-100, -100, -100, 12, 2, -100],
    position_ids=[0, 1, 2, 3, 4, 5],
)
B = Features(
    input_ids=[1, 195, 13, 196, 2],
    shift_labels=[-100, -100, -100, 2, -100],
    position_ids=[0, 1, 2, 3, 4],
)
C = Features(input_ids=[1, 196, 14], shift_labels=[-100, 14, -100], position_ids=[0, 1, 2])


def test_padded_batch() -> None:
    batch = PadCollator(pad_id=0)([A, B])
    assert batch["input_ids"].tolist() == [[1, 195, 11, 196, 12, 2], [1, 195, 13, 196, 2, 0]]
    assert batch["shift_labels"].tolist() == [
        [-100, -100, -100, 12, 2, -100],
        [-100, -100, -100, 2, -100, -100],
    ]
    assert batch["attention_mask"].tolist() == [[1, 1, 1, 1, 1, 1], [1, 1, 1, 1, 1, 0]]
    assert batch["position_ids"].tolist() == [[0, 1, 2, 3, 4, 5], [0, 1, 2, 3, 4, 0]]
    assert all(t.dtype == torch.long for t in batch.values())


def test_padding_to_a_fixed_length_or_a_multiple() -> None:
    assert PadCollator(0, pad_to_length=8)([C])["input_ids"].tolist() == [
        [1, 196, 14, 0, 0, 0, 0, 0]
    ]
    batch = PadCollator(0, pad_to_multiple_of=4)([C])
    assert batch["input_ids"].tolist() == [[1, 196, 14, 0]]
    assert batch["position_ids"].tolist() == [[0, 1, 2, 0]]


def test_packed_batch_positions_and_mask() -> None:
    rows = [pack_row([A, C]), pack_row([B])]
    batch = PadCollator(pad_id=0)(rows)
    assert batch["input_ids"].tolist() == [
        [1, 195, 11, 196, 12, 2, 1, 196, 14],
        [1, 195, 13, 196, 2, 0, 0, 0, 0],
    ]
    # Labels stay inside each conversation: A's eos predicts nothing of C.
    assert batch["shift_labels"].tolist() == [
        [-100, -100, -100, 12, 2, -100, -100, 14, -100],
        [-100, -100, -100, 2, -100, -100, -100, -100, -100],
    ]
    assert batch["position_ids"].tolist() == [
        [0, 1, 2, 3, 4, 5, 0, 1, 2],
        [0, 1, 2, 3, 4, 0, 1, 2, 3],
    ]
    assert batch["attention_mask"].tolist() == [[1] * 9, [1] * 5 + [0] * 4]
    assert document_ids(batch["position_ids"]).tolist() == [
        [1, 1, 1, 1, 1, 1, 2, 2, 2],
        [1, 1, 1, 1, 1, 2, 2, 2, 2],
    ]
    mask = block_causal_mask(batch["position_ids"][:1, :], torch.float32)
    assert mask.shape == (1, 1, 9, 9)
    allowed = (mask[0, 0] == 0).int().tolist()
    assert allowed == [
        [1, 0, 0, 0, 0, 0, 0, 0, 0],
        [1, 1, 0, 0, 0, 0, 0, 0, 0],
        [1, 1, 1, 0, 0, 0, 0, 0, 0],
        [1, 1, 1, 1, 0, 0, 0, 0, 0],
        [1, 1, 1, 1, 1, 0, 0, 0, 0],
        [1, 1, 1, 1, 1, 1, 0, 0, 0],
        [0, 0, 0, 0, 0, 0, 1, 0, 0],
        [0, 0, 0, 0, 0, 0, 1, 1, 0],
        [0, 0, 0, 0, 0, 0, 1, 1, 1],
    ]
    assert set(mask.unique().tolist()) == {0.0, torch.finfo(torch.float32).min}
