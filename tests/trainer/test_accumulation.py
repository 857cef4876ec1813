"""TargetLMLoss over the whole accumulated batch: batch 8 × accumulation 1 and batch 1 ×
accumulation 8 give the same gradients, through the real Trainer."""

from __future__ import annotations

from pathlib import Path

import torch
from transformers import AutoModelForCausalLM, TrainingArguments

from trainer.collator import PadCollator
from trainer.data import Features
from trainer.loss import per_token_losses
from trainer.sft_trainer import SFTTrainer


def _one_step_delta(
    model_dir: Path, rows: list[Features], out: Path, batch: int, accumulation: int
) -> torch.Tensor:
    """Parameters after minus before one optimizer step of plain SGD with lr 1: exactly the
    negative gradient (AdamW would hide a wrong scale: its first step is about lr·sign)."""
    model = AutoModelForCausalLM.from_pretrained(model_dir)
    before = torch.cat([p.detach().flatten().clone() for p in model.parameters()])
    args = TrainingArguments(
        output_dir=str(out),
        per_device_train_batch_size=batch,
        gradient_accumulation_steps=accumulation,
        max_steps=1,
        optim="sgd",
        learning_rate=1.0,
        lr_scheduler_type="constant",
        weight_decay=0.0,
        max_grad_norm=0.0,  # no clipping: compare raw gradients
        save_strategy="no",
        report_to=[],
        disable_tqdm=True,
        remove_unused_columns=False,
        label_names=["shift_labels"],
        dataloader_pin_memory=False,
        use_cpu=True,
    )
    trainer = SFTTrainer(model=model, args=args, train_dataset=rows, data_collator=PadCollator(0))
    trainer.train()
    after = torch.cat([p.detach().flatten() for p in model.parameters()])
    return before - after


def _reference_gradient(
    model_dir: Path, rows: list[Features], per_batch_mean: bool
) -> torch.Tensor:
    model = AutoModelForCausalLM.from_pretrained(model_dir)
    losses = []
    for row in rows:
        b = PadCollator(0)([row])
        tok = per_token_losses(model(input_ids=b["input_ids"]).logits, b["shift_labels"])
        losses.append((tok.sum(), (b["shift_labels"] != -100).sum()))
    if per_batch_mean:  # the wrong way: mean of the micro-batches' means
        loss = torch.stack([s / n for s, n in losses]).mean()
    else:
        loss = torch.stack([s for s, _ in losses]).sum() / sum(int(n) for _, n in losses)
    loss.backward()
    return torch.cat([p.grad.flatten() for p in model.parameters() if p.grad is not None])


def test_batch_8_equals_batch_1_times_8(
    tiny_model_dir: Path, sft_features: list[Features], tmp_path: Path
) -> None:
    rows = sft_features[:8]
    counts = {sum(1 for x in r["shift_labels"] if x != -100) for r in rows}
    assert len(counts) > 1  # conversations of different target counts, or the test proves nothing
    wide = _one_step_delta(tiny_model_dir, rows, tmp_path / "a", batch=8, accumulation=1)
    deep = _one_step_delta(tiny_model_dir, rows, tmp_path / "b", batch=1, accumulation=8)
    reference = _reference_gradient(tiny_model_dir, rows, per_batch_mean=False)
    scale = reference.abs().max()
    assert (wide - reference).abs().max() < 1e-4 * scale
    assert (deep - reference).abs().max() < 1e-4 * scale
    # The test can tell the per-micro-batch mean apart.
    naive = _reference_gradient(tiny_model_dir, rows, per_batch_mean=True)
    assert (naive - reference).abs().max() > 1e-2 * scale
