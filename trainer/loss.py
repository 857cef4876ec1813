"""TargetLMLoss: cross-entropy on assistant tokens only, normalized by the number of target
tokens of the whole accumulated batch (all micro-batches, all ranks).

Summing per micro-batch and dividing by the window's count makes batch 8 × accumulation 1
and batch 1 × accumulation 8 give the same gradients; an average of per-micro-batch means
would weight a token of a short answer more than one of a long answer."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .data import IGNORE_INDEX


def target_lm_loss(
    logits: torch.Tensor, shift_labels: torch.Tensor, num_targets: torch.Tensor | int | None
) -> torch.Tensor:
    """Summed cross-entropy over positions whose label is not IGNORE_INDEX, divided by
    `num_targets` (the window's count); by this batch's own count when None (evaluation).

    Labels are already shifted (data.to_features), so logits[t] is scored against
    shift_labels[t] with no slicing here. The sum runs in float32: bf16 logits would lose
    the small per-token terms of a sum over thousands of tokens."""
    total = F.cross_entropy(
        logits.float().reshape(-1, logits.shape[-1]),
        shift_labels.reshape(-1).to(logits.device),
        ignore_index=IGNORE_INDEX,
        reduction="sum",
    )
    if num_targets is None:
        # Reading the count back is a sync, but only evaluation takes this path.
        num_targets = int((shift_labels != IGNORE_INDEX).sum().item())
    if isinstance(num_targets, torch.Tensor):
        num_targets = num_targets.to(total.device)
    # An all-ignored window (possible only with tiny data) gives 0, not NaN.
    if isinstance(num_targets, int):
        return total / max(num_targets, 1)
    return total / num_targets.clamp(min=1)


def per_token_losses(logits: torch.Tensor, shift_labels: torch.Tensor) -> torch.Tensor:
    """Cross-entropy of every position (0 where ignored), float32: for checks and tests."""
    return F.cross_entropy(
        logits.float().transpose(1, 2), shift_labels, ignore_index=IGNORE_INDEX, reduction="none"
    )
