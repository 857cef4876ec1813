"""Training end to end in-process on a tiny random Llama: it learns, resumes, and saves
directories that load with AutoModelForCausalLM."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from transformers import AutoModelForCausalLM

from services.core.chatformat import DISC_MEDLLM, Tokenizer, Turn, render_prompt
from trainer.collator import PadCollator
from trainer.data import build_features, read_conversations, render_samples
from trainer.loss import target_lm_loss

from .conftest import RunTrainer, first_rows, read_progress, write_jsonl

# Four short consultations; the tiny model must learn each answer from its question.
QA = [
    ("头痛三天了，怎么办？", "建议多休息，必要时就医。"),
    ("发烧三十八度需要吃药吗？", "可以服用退烧药，多喝水。"),
    ("咳嗽有痰是什么原因？", "可能是呼吸道感染。"),
    ("胃疼吃什么比较好？", "建议清淡饮食，少食多餐。"),
]


def _mean_target_loss(model_dir: Path, data: Path, tokenizer: Tokenizer) -> float:
    samples = render_samples(read_conversations(data), tokenizer, 128, DISC_MEDLLM)
    batch = PadCollator(0)(build_features(samples)[0])
    model = AutoModelForCausalLM.from_pretrained(model_dir).eval()
    with torch.no_grad():
        logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
    return float(target_lm_loss(logits, batch["shift_labels"], None))


def test_loss_falls_and_weights_change(
    run_trainer: RunTrainer, tiny_model_dir: Path, tokenizer: Tokenizer, tmp_path: Path
) -> None:
    progress = tmp_path / "progress.jsonl"
    evaluation = write_jsonl(tmp_path / "eval.jsonl", first_rows(6))
    summary = run_trainer(
        max_steps=6,
        learning_rate=1e-2,
        lr_scheduler_type="constant",
        progress_file=str(progress),
        eval_file=str(evaluation),
        eval_strategy="steps",
        eval_steps=3,
    )
    lines = read_progress(progress)
    evals = [line for line in lines if line["event"] == "eval"]
    assert [e["step"] for e in evals] == [3, 6]
    # The evaluation loss is the target-token mean of the final model on the eval rows.
    assert (
        abs(evals[1]["eval_loss"] - _mean_target_loss(tmp_path / "out", evaluation, tokenizer))
        < 1e-4
    )
    steps = [line for line in lines if line["event"] == "progress"]
    assert [s["step"] for s in steps] == [1, 2, 3, 4, 5, 6]
    assert steps[-1]["loss"] < steps[0]["loss"] - 0.5
    for key in ("epoch", "learning_rate", "grad_norm", "tokens_per_s", "eta_s", "max_steps"):
        assert key in steps[0]
    assert all(s["tokens_per_s"] > 0 for s in steps)
    assert lines[-1] == summary and summary["event"] == "summary"
    # 6 steps × 4 conversations of at most 128 tokens, padding not counted.
    assert 6 * 4 * 20 < summary["trained_tokens"] <= 6 * 4 * 128
    assert 0 < summary["target_tokens"] < summary["trained_tokens"]
    before = load_file(str(tiny_model_dir / "model.safetensors"))
    after = load_file(str(tmp_path / "out" / "model.safetensors"))
    assert before.keys() == after.keys()
    changed = [k for k in before if not torch.equal(before[k], after[k].to(before[k].dtype))]
    assert len(changed) == len(before)


def _greedy_answer(
    model_dir: Path, tokenizer: Tokenizer, question: str, answer_tokens: int
) -> list[int]:
    model = AutoModelForCausalLM.from_pretrained(model_dir).eval()
    prompt = render_prompt(
        [Turn(role="user", content=question)], tokenizer, 512, profile=DISC_MEDLLM
    )
    ids = torch.tensor([prompt.input_ids])
    out = model.generate(
        ids,
        attention_mask=torch.ones_like(ids),
        max_new_tokens=answer_tokens + 1,
        do_sample=False,
        repetition_penalty=1.0,
        top_k=None,
        top_p=None,
        temperature=None,
    )
    return [int(t) for t in out[0, ids.shape[1] :]]


@pytest.mark.parametrize("packing", [False, True], ids=["padded", "packed"])
def test_learns_four_conversations(
    run_trainer: RunTrainer, tokenizer: Tokenizer, tmp_path: Path, packing: bool
) -> None:
    rows = [
        {"conversation": [{"role": "user", "content": q}, {"role": "assistant", "content": a}]}
        for q, a in QA
    ]
    data = write_jsonl(tmp_path / "four.jsonl", rows)
    run_trainer(
        train_file=str(data),
        max_steps=60,
        learning_rate=1e-2,
        lr_scheduler_type="constant",
        packing=packing,
        per_device_train_batch_size=4 if not packing else 1,
        logging_steps=20,
    )
    out = tmp_path / "out"
    for question, answer in QA:
        expected = [*tokenizer.encode(answer), tokenizer.eos_id]
        assert _greedy_answer(out, tokenizer, question, len(expected) - 1) == expected
    generation = json.loads((out / "generation_config.json").read_text())
    assert generation["temperature"] == 0.3 and generation["top_k"] == 5
    assert generation["user_token_id"] == 195 and generation["assistant_token_id"] == 196
    config = json.loads((out / "config.json").read_text())
    assert config["pad_token_id"] == 0 and config["use_cache"] is True


def test_resume_continues_from_the_saved_step(run_trainer: RunTrainer, tmp_path: Path) -> None:
    common = {
        "learning_rate": 1e-3,
        "lr_scheduler_type": "constant",
        "save_strategy": "steps",
        "save_steps": 2,
    }
    progress = tmp_path / "progress.jsonl"
    run_trainer(max_steps=2, **common)
    assert (tmp_path / "out" / "checkpoint-2").is_dir()
    # A kill during the next save leaves a newer folder the Trainer never finished.
    half_written = tmp_path / "out" / "checkpoint-3"
    half_written.mkdir()
    (half_written / "model.safetensors").write_bytes(b"\0" * 64)
    summary = run_trainer(
        max_steps=4, resume_from_checkpoint="true", progress_file=str(progress), **common
    )
    lines = read_progress(progress)
    assert lines[0]["event"] == "start" and lines[0]["start_step"] == 2
    assert [x["step"] for x in lines if x["event"] == "progress"] == [3, 4]
    assert summary["global_step"] == 4
    assert not half_written.exists()
    resumed = load_file(str(tmp_path / "out" / "model.safetensors"))
    # The same 4 steps without interruption land on the same weights.
    run_trainer(max_steps=4, output_dir=str(tmp_path / "straight"), **common)
    straight = load_file(str(tmp_path / "straight" / "model.safetensors"))
    for key, value in straight.items():
        assert torch.allclose(resumed[key], value, atol=1e-6), key


def test_lora_adapter_and_merged_load(run_trainer: RunTrainer, tmp_path: Path) -> None:
    lora = {
        "lora": True,
        "lora_r": 4,
        "lora_alpha": 8,
        "lora_dropout": 0.0,
        "learning_rate": 1e-2,
        "max_steps": 3,
    }
    s1 = run_trainer(output_dir=str(tmp_path / "adapter"), **lora)
    s2 = run_trainer(output_dir=str(tmp_path / "merged"), save_merged=True, **lora)
    assert (s1["saved"], s2["saved"]) == ("adapter", "merged")
    assert (tmp_path / "adapter" / "adapter_config.json").is_file()
    assert not (tmp_path / "adapter" / "model.safetensors").exists()
    assert not (tmp_path / "merged" / "adapter_config.json").exists()
    for d in ("adapter", "merged"):
        assert (tmp_path / d / "tokenizer.json").is_file()
        assert (tmp_path / d / "generation_config.json").is_file()
    ids = torch.tensor([[1, 195, 100, 200, 196, 300]])
    with torch.no_grad():
        adapter = AutoModelForCausalLM.from_pretrained(tmp_path / "adapter").eval()
        merged = AutoModelForCausalLM.from_pretrained(tmp_path / "merged").eval()
        base = AutoModelForCausalLM.from_pretrained(
            json.loads((tmp_path / "adapter" / "adapter_config.json").read_text())[
                "base_model_name_or_path"
            ]
        ).eval()
        a, m, b = (x(input_ids=ids).logits for x in (adapter, merged, base))
    assert torch.allclose(a, m, atol=1e-4)  # merged weights = base + trained adapter
    assert (a - b).abs().max() > 1e-3  # and the adapter did train
