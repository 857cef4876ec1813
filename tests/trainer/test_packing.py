"""Packing: rows that fit, and per-token losses identical to the conversations run alone."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from transformers import AutoModelForCausalLM

from trainer.collator import PadCollator
from trainer.data import Features
from trainer.loss import per_token_losses
from trainer.packing import model_inputs, pack, plan_rows


def test_plan_rows_uses_every_sample_once_and_fits() -> None:
    lengths = [700, 300, 1200, 5, 512, 688, 1199, 1, 400, 800]
    rows = plan_rows(lengths, 1200)
    assert sorted(i for r in rows for i in r) == list(range(len(lengths)))
    assert all(sum(lengths[i] for i in r) <= 1200 for r in rows)
    assert len(rows) == 5  # total 5805 tokens: 5 rows is the minimum
    with pytest.raises(ValueError):
        plan_rows([1201], 1200)


def _losses(
    model: torch.nn.Module, batch: dict[str, torch.Tensor], isolation: str | None
) -> torch.Tensor:
    with torch.no_grad():
        logits = model(**model_inputs(batch, isolation, torch.float32)).logits
    return per_token_losses(logits, batch["shift_labels"])


def _targets(batch: dict[str, torch.Tensor], losses: torch.Tensor) -> list[torch.Tensor]:
    """Per row, the losses at target positions, in order."""
    keep = batch["shift_labels"] != -100
    return [losses[i][keep[i]] for i in range(losses.shape[0])]


def test_packed_losses_equal_unpacked(tiny_model_dir: Path, sft_features: list[Features]) -> None:
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir, attn_implementation="sdpa").eval()
    convs = sft_features[:6]
    collate = PadCollator(pad_id=0)
    packed_rows = pack(convs, 256)
    assert len(packed_rows) < len(convs)  # something was actually packed
    packed = collate(packed_rows)
    packed_losses = torch.cat(_targets(packed, _losses(model, packed, "mask")))

    # The same conversations one by one (each row unpadded), in the packed order.
    order = [f for row in packed_rows for f in _split(row, convs)]
    alone = [_targets(b, _losses(model, b, None))[0] for b in (collate([f]) for f in order)]
    assert torch.allclose(packed_losses, torch.cat(alone), atol=1e-5, rtol=0)

    # Restarted position ids alone do not isolate conversations (transformers 5.24): the
    # mask is what makes the result right, and this test notices its absence.
    leaky = {
        k: v
        for k, v in model_inputs(packed, "mask", torch.float32).items()
        if k != "attention_mask"
    }
    with torch.no_grad():
        wrong = torch.cat(
            _targets(packed, per_token_losses(model(**leaky).logits, packed["shift_labels"]))
        )
    assert (wrong - packed_losses).abs().max() > 1e-3


def _split(row: Features, convs: list[Features]) -> list[Features]:
    """Which of `convs` a packed row holds, in order (matched by their ids)."""
    out, at = [], 0
    while at < len(row["input_ids"]):
        match = next(
            f for f in convs if row["input_ids"][at : at + len(f["input_ids"])] == f["input_ids"]
        )
        out.append(match)
        at += len(match["input_ids"])
    return out


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_flex_block_mask_equals_4d_mask(tiny_model_dir: Path, sft_features: list[Features]) -> None:
    """FlexAttention's BlockMask isolates exactly like the 4D mask (forward and gradients)."""
    rows = pack(sft_features[:6], 256)
    batch = {k: v.cuda() for k, v in PadCollator(0, pad_to_length=256)(rows).items()}
    results: list[tuple[torch.Tensor, torch.Tensor]] = []
    for isolation, impl in (("mask", "sdpa"), ("flex", "flex_attention")):
        model = AutoModelForCausalLM.from_pretrained(
            tiny_model_dir, attn_implementation=impl, device_map="cuda"
        )
        logits = model(**model_inputs(batch, isolation, torch.float32)).logits
        loss = per_token_losses(logits, batch["shift_labels"]).sum()
        loss.backward()
        grad = model.get_input_embeddings().weight.grad
        assert isinstance(grad, torch.Tensor)
        results.append((loss.detach(), grad))
    assert torch.allclose(results[0][0], results[1][0], rtol=1e-4)
    assert torch.allclose(results[0][1], results[1][1], atol=1e-4)
