"""The Trainer subclass: TargetLMLoss over the whole accumulated batch, packed-row attention,
and real-token counts for the progress stream."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import torch
from transformers import Trainer

from .data import IGNORE_INDEX
from .loss import target_lm_loss
from .packing import model_inputs


class SFTTrainer(Trainer):
    # compute_loss divides by the target count of the whole accumulation window itself, so
    # Trainer must not divide again by the number of accumulation steps.
    loss_is_scaled_for_ga = True

    def __init__(
        self,
        *args: Any,
        isolation: str | None = None,
        mask_dtype: torch.dtype = torch.float32,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.isolation = isolation  # None: padded batches; else how packed rows isolate
        self.mask_dtype = mask_dtype  # the 4D mask's dtype: the attention's compute dtype
        # Token counts stay on the device between logging steps (no sync per micro-batch).
        self._pending_tokens: torch.Tensor | None = None
        self.real_tokens = 0  # non-padding tokens trained on in this run, all ranks
        self.target_tokens = 0  # of which carried loss

    def get_batch_samples(
        self, epoch_iterator: Iterator[Any], num_batches: int, device: torch.device
    ) -> tuple[list[Any], torch.Tensor | None]:
        """The window's micro-batches and its number of target tokens, summed over every
        micro-batch and every rank: the loss's one denominator for the whole window."""
        batches: list[Any] = []
        for _ in range(num_batches):
            try:
                batches.append(next(epoch_iterator))
            except StopIteration:
                break
        if not batches:
            return batches, None
        count = torch.stack([(b["shift_labels"] != IGNORE_INDEX).sum() for b in batches]).sum()
        count = count.to(device)
        if self.args.world_size > 1:
            # One small collective per optimizer step; ranks see different data.
            count = self.accelerator.gather(count.reshape(1)).sum()
        return batches, count

    def training_step(
        self, model: torch.nn.Module, inputs: dict[str, Any], num_items_in_batch: Any = None
    ) -> torch.Tensor:
        counts = torch.stack(
            [inputs["attention_mask"].sum(), (inputs["shift_labels"] != IGNORE_INDEX).sum()]
        )
        self._pending_tokens = (
            counts if self._pending_tokens is None else self._pending_tokens + counts
        )
        return super().training_step(model, inputs, num_items_in_batch)

    def compute_loss(
        self,
        model: torch.nn.Module,
        inputs: dict[str, Any],
        return_outputs: bool = False,
        num_items_in_batch: Any = None,
    ) -> Any:
        labels = inputs["shift_labels"]
        outputs = model(**model_inputs(inputs, self.isolation, self.mask_dtype))
        logits = outputs.logits
        labels = labels.reshape(logits.shape[:-1])  # the flash path flattens the batch
        if model.training and num_items_in_batch is not None:
            loss = target_lm_loss(logits, labels, num_items_in_batch)
            # DDP and DeepSpeed average gradients over ranks, but this loss is already this
            # rank's share of (global sum / global count): undo their division.
            loss = loss * self.args.world_size
        else:
            loss = target_lm_loss(logits, labels, None)  # evaluation: this batch's mean
        return (loss, outputs) if return_outputs else loss

    def log(self, logs: dict[str, float], start_time: float | None = None) -> None:
        if ("loss" in logs or "train_runtime" in logs) and self._pending_tokens is not None:
            counts = self._pending_tokens
            if self.args.world_size > 1:
                counts = self.accelerator.reduce(counts, reduction="sum")
            # The one host sync of token counting, at logging time only.
            real, target = (int(v) for v in counts.tolist())
            self.real_tokens += real
            self.target_tokens += target
            self._pending_tokens = None
        if "loss" in logs or "train_runtime" in logs:
            logs["real_tokens"] = self.real_tokens
            logs["target_tokens"] = self.target_tokens
        super().log(logs, start_time)
