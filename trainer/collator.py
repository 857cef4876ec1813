"""The collator only pads: rows (one conversation, or several packed) → right-padded tensors."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from .data import IGNORE_INDEX, Features


@dataclass(frozen=True)
class PadCollator:
    """`input_ids` padded with `pad_id` (unk, never eos), `shift_labels` with IGNORE_INDEX,
    `attention_mask` 1 on real tokens, `position_ids` restarting at 0 in the padded tail
    (packing.document_ids reads the tail as a conversation of its own).

    `pad_to_length` fixes the shape (FlexAttention and torch.compile then never see a new
    length); otherwise batches pad to their longest row, rounded up to `pad_to_multiple_of`."""

    pad_id: int
    pad_to_length: int | None = None
    pad_to_multiple_of: int | None = None

    def __call__(self, rows: Sequence[Features]) -> dict[str, torch.Tensor]:
        longest = max(len(r["input_ids"]) for r in rows)
        length = self.pad_to_length or longest
        if self.pad_to_multiple_of:
            length = -(-length // self.pad_to_multiple_of) * self.pad_to_multiple_of
        if longest > length:
            raise ValueError(f"a row of {longest} tokens does not fit pad_to_length={length}")
        shape = (len(rows), length)
        input_ids = torch.full(shape, self.pad_id, dtype=torch.long)
        shift_labels = torch.full(shape, IGNORE_INDEX, dtype=torch.long)
        attention_mask = torch.zeros(shape, dtype=torch.long)
        position_ids = torch.zeros(shape, dtype=torch.long)
        for i, row in enumerate(rows):
            n = len(row["input_ids"])
            input_ids[i, :n] = torch.tensor(row["input_ids"])
            shift_labels[i, :n] = torch.tensor(row["shift_labels"])
            attention_mask[i, :n] = 1
            position_ids[i, :n] = torch.tensor(row["position_ids"])
            position_ids[i, n:] = torch.arange(length - n)
        return {
            "input_ids": input_ids,
            "attention_mask": attention_mask,
            "position_ids": position_ids,
            "shift_labels": shift_labels,
        }
