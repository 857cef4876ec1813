"""Packing: conversations into rows of a fixed length, attention isolated per conversation.

Position ids restart at 0 for every conversation; that alone does not isolate them (in
transformers 5.24 sdpa, eager and flex_attention all attend across the boundary), so every
packed batch also gets one of:
- flash: flash-attn varlen, which transformers derives from the restarted position ids;
- flex:  a FlexAttention BlockMask (GPU; FlexAttention has no backward on the CPU);
- mask:  an explicit 4D block-diagonal causal mask, through sdpa or eager (any device).
Labels never cross a boundary: data.to_features shifts them inside each conversation.
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from .data import Features

if TYPE_CHECKING:
    import torch


def plan_rows(lengths: Sequence[int], row_length: int) -> list[list[int]]:
    """Sample indices grouped into rows of at most `row_length` tokens: best-fit decreasing
    (longest first, each into the fullest row it still fits). Near-optimal and deterministic;
    the Trainer's sampler shuffles the rows."""
    if any(n > row_length for n in lengths):
        raise ValueError(f"a sample is longer than the row length {row_length}")
    order = sorted(range(len(lengths)), key=lambda i: (-lengths[i], i))
    rows: list[list[int]] = []
    # (space left, row index), kept sorted: bisect finds the tightest row that fits.
    free: list[tuple[int, int]] = []
    for i in order:
        n = lengths[i]
        at = bisect.bisect_left(free, (n, -1))
        if at == len(free):
            rows.append([i])
            bisect.insort(free, (row_length - n, len(rows) - 1))
        else:
            space, r = free.pop(at)
            rows[r].append(i)
            bisect.insort(free, (space - n, r))
    return rows


def pack_row(parts: Sequence[Features]) -> Features:
    """One row from several conversations, their position ids restarting at 0."""
    row = Features(input_ids=[], shift_labels=[], position_ids=[])
    for f in parts:
        row["input_ids"] += f["input_ids"]
        row["shift_labels"] += f["shift_labels"]
        row["position_ids"] += f["position_ids"]
    return row


def pack(features: Sequence[Features], row_length: int) -> list[Features]:
    plan = plan_rows([len(f["input_ids"]) for f in features], row_length)
    return [pack_row([features[i] for i in row]) for row in plan]


def document_ids(position_ids: torch.Tensor) -> torch.Tensor:
    """Which conversation each position belongs to (0, 1, ... per row): a new one starts
    wherever the position id is 0. The padded tail restarts at 0 too, so it is a conversation
    of its own that nothing real attends to."""
    return (position_ids == 0).long().cumsum(dim=-1)


def block_causal_mask(position_ids: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """Additive 4D mask (batch, 1, q, k): 0 where q may attend k (same conversation, k <= q),
    the dtype's minimum elsewhere. Additive rather than boolean so sdpa and eager read it
    alike; no row is fully masked (each position sees itself), so softmax has no NaN."""
    import torch

    doc = document_ids(position_ids)
    length = position_ids.shape[-1]
    causal = torch.ones(length, length, dtype=torch.bool, device=position_ids.device).tril()
    allowed = (doc[:, :, None] == doc[:, None, :]) & causal
    mask = torch.zeros(allowed.shape, dtype=dtype, device=position_ids.device)
    mask.masked_fill_(~allowed, torch.finfo(dtype).min)
    return mask[:, None, :, :]


def flex_block_mask(position_ids: torch.Tensor) -> Any:
    """FlexAttention BlockMask of the same rule; only its non-empty blocks are computed, so a
    row of short conversations costs about the sum of their squares, not the row's."""
    from torch.nn.attention.flex_attention import create_block_mask

    doc = document_ids(position_ids)
    batch, length = position_ids.shape

    def same_conversation_causal(b: Any, h: Any, q: Any, k: Any) -> Any:
        return (doc[b, q] == doc[b, k]) & (q >= k)

    return create_block_mask(
        same_conversation_causal,
        B=batch,
        H=None,  # the same mask for every head
        Q_LEN=length,
        KV_LEN=length,
        device=position_ids.device,
    )


def model_inputs(
    batch: dict[str, torch.Tensor], isolation: str | None, dtype: Any
) -> dict[str, Any]:
    """The forward() arguments of a collated batch. `isolation` None: padded conversations
    (DISC-MedLLM's batches: a 2D padding mask, positions implied, which remote-code models
    such as Baichuan-13B also accept); otherwise packed rows isolated as named."""
    import torch

    ids, positions = batch["input_ids"], batch["position_ids"]
    if isolation is None:
        return {"input_ids": ids, "attention_mask": batch["attention_mask"]}
    if isolation == "mask":
        return {
            "input_ids": ids,
            "position_ids": positions,
            "attention_mask": block_causal_mask(positions, dtype),
        }
    if isolation == "flex":
        return {
            "input_ids": ids,
            "position_ids": positions,
            "attention_mask": flex_block_mask(positions),
        }
    if isolation == "flash":
        # One flattened row with explicit sequence boundaries: transformers' flash-attn path
        # then runs varlen without re-deriving the boundaries (a host sync) in every layer.
        flat = positions.reshape(1, -1)
        starts = (flat[0] == 0).nonzero().flatten()
        end = torch.tensor([flat.shape[1]], device=flat.device)
        cu_seq_lens = torch.cat([starts, end]).to(torch.int32)
        # flash-attn takes the longest sequence as a Python int: one sync per micro-batch.
        longest = int(cu_seq_lens.diff().max().item())
        return {
            "input_ids": ids.reshape(1, -1),
            "position_ids": flat,
            "cu_seq_lens_q": cu_seq_lens,
            "cu_seq_lens_k": cu_seq_lens,
            "max_length_q": longest,
            "max_length_k": longest,
        }
    raise ValueError(f"unknown isolation {isolation!r}")
