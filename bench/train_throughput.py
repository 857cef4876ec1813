"""Benchmark: real (non-padding) tokens/s and MFU of the trainer's packed path against
DISC-MedLLM-style padded batches, same model, same conversations, same run; then the shared
baseline (../shared/bench/sft_baseline.py, and pack_flex_bench.py on a GPU) in the same call,
for the ratio that DESIGN.md asks to quote.

    python bench/train_throughput.py --tiny     # CPU smoke: tiny Llama, a few steps
    python bench/train_throughput.py            # GPU: the 1.3B config of sft_baseline.py ("1.5B")

Both paths run the trainer's own pieces: data.to_features on samples whose lengths follow
sft_baseline.py (log-normal around 350 tokens, capped at 1200, the last 40% of each one the
answer), packing.pack, collator.PadCollator, packing.model_inputs (FlexAttention BlockMask or
flash-attn varlen on a GPU, the 4D mask on a CPU), loss.target_lm_loss, AdamW; activation
checkpointing and bf16 on a GPU. Model FLOPs count 6 × parameters per trained token (no
attention term), as sft_baseline.py does.
"""

from __future__ import annotations

import argparse
import gc
import importlib.util
import json
import math
import os
import subprocess
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from services.core.chatformat import TrainingSample  # noqa: E402
from trainer.collator import PadCollator  # noqa: E402
from trainer.data import Features, to_features  # noqa: E402
from trainer.loss import target_lm_loss  # noqa: E402
from trainer.packing import model_inputs, pack  # noqa: E402

SHARED_BENCH = ROOT.parent / "shared" / "bench"
# Dense bf16 peak per GPU (vendor figures), for MFU.
PEAK_TFLOPS = {"H200": 989.0, "H100": 989.0, "A100": 312.0, "L40S": 362.0, "A10": 125.0}


@dataclass(frozen=True)
class Setup:
    name: str
    config: dict[str, Any]
    mean_length: int
    cap: int
    batch: int  # conversations per padded batch (sft_baseline.py's)
    row_length: int  # packed row (pack_flex_bench.py's)
    rows: int  # packed rows per step
    steps: int
    warmup: int
    arch: str = "llama"  # or "baichuan": the trainer's native Baichuan-13B (ALiBi)


TINY = Setup(
    name="tiny",
    config=dict(
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=4,
        vocab_size=1000,
        max_position_embeddings=2048,
    ),
    mean_length=40,
    cap=200,
    batch=4,
    row_length=512,
    rows=2,
    steps=12,
    warmup=2,
)
GPU_1B = Setup(
    name="1.3B-full",
    config=dict(
        hidden_size=2048,
        intermediate_size=5504,
        num_hidden_layers=24,
        num_attention_heads=16,
        num_key_value_heads=16,
        vocab_size=64000,
        max_position_embeddings=8192,
    ),
    mean_length=350,
    cap=1200,
    batch=16,
    row_length=8192,
    rows=2,
    steps=8,
    warmup=2,
)


def conversations(setup: Setup, n: int, seed: int) -> list[Features]:
    """Features of synthetic samples with sft_baseline.py's length distribution."""
    g = torch.Generator().manual_seed(seed)
    lengths = torch.exp(torch.randn(n, generator=g) * 0.6 + math.log(setup.mean_length))
    out = []
    for length in lengths.clamp(16, setup.cap).long().tolist():
        ids = [
            1,
            *torch.randint(3, setup.config["vocab_size"], (length - 1,), generator=g).tolist(),
        ]
        answer = int(length * 0.4)
        mask = [0] * (length - answer) + [1] * answer
        out.append(to_features(TrainingSample(ids, mask, length, 0)))
    return out


def isolation_for(device: str, arch: str) -> str:
    if device != "cuda":
        return "mask"  # FlexAttention has no backward on the CPU
    if arch == "baichuan":
        return "flex"  # ALiBi as a score_mod; transformers' flash path takes no bias
    return "flash" if importlib.util.find_spec("flash_attn") else "flex"


def build_model(setup: Setup, device: str, attn: str) -> Any:
    from transformers import LlamaConfig, LlamaForCausalLM

    from trainer.baichuan import BaichuanConfig, BaichuanForCausalLM

    torch.manual_seed(0)
    dtype = torch.bfloat16 if device == "cuda" else torch.float32
    if setup.arch == "baichuan":
        shape = {k: v for k, v in setup.config.items() if k != "num_key_value_heads"}
        shape["model_max_length"] = shape.pop("max_position_embeddings")
        config: Any = BaichuanConfig(**shape, position_embedding="alibi", dtype=dtype)
        model_class: Any = BaichuanForCausalLM
    else:
        config, model_class = LlamaConfig(**setup.config, dtype=dtype), LlamaForCausalLM
    with torch.device(device):
        model = model_class(config)
    model.set_attn_implementation(attn)
    torch.nn.Module.to(model, dtype)
    model.config.use_cache = False
    if device == "cuda":
        model.gradient_checkpointing_enable()  # type: ignore[no-untyped-call]
    return model


def run(setup: Setup, mode: str, device: str, data: list[Features]) -> dict[str, Any]:
    isolation = isolation_for(device, setup.arch) if mode == "packed" else None
    attn = {"flash": "flash_attention_2", "flex": "flex_attention"}.get(isolation or "", "sdpa")
    model = build_model(setup, device, attn)
    params = sum(p.numel() for p in model.parameters())
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-5)
    if mode == "packed":
        rows = pack(data, setup.row_length)
        size = setup.rows
        collate = PadCollator(0, pad_to_length=setup.row_length if isolation == "flex" else None)
    else:
        rows, size, collate = data, setup.batch, PadCollator(0)
    batches = [rows[i : i + size] for i in range(0, len(rows), size)]
    needed = setup.warmup + setup.steps
    if len(batches) < needed:
        raise SystemExit(f"{mode}: {len(batches)} batches, need {needed}; raise --conversations")
    dtype = torch.bfloat16 if device == "cuda" else torch.float32
    real = slots = 0
    started = 0.0
    for step, group in enumerate(batches[:needed]):
        if step == setup.warmup:
            if device == "cuda":
                torch.cuda.synchronize()  # time only the steady steps
            started = time.perf_counter()
            real = slots = 0
        batch = {k: v.to(device) for k, v in collate(group).items()}
        targets = (batch["shift_labels"] != -100).sum()
        logits = model(**model_inputs(batch, isolation, dtype)).logits
        labels = batch["shift_labels"].reshape(logits.shape[:-1])  # flash flattens the batch
        loss: torch.Tensor = target_lm_loss(logits, labels, targets)
        loss.backward()  # type: ignore[no-untyped-call]
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        real += int(batch["attention_mask"].sum())  # counted on the host batch: no extra sync
        slots += batch["input_ids"].numel()
    if device == "cuda":
        torch.cuda.synchronize()
    seconds = time.perf_counter() - started
    tflops = 6 * params * real / seconds / 1e12
    peak = peak_tflops(device)
    result = {
        "config": setup.name,
        "mode": mode,
        "isolation": isolation,
        "params": params,
        "real_tok_s": round(real / seconds),
        "pad_frac": round(1 - real / slots, 3),
        "model_tflops": round(tflops, 4 if tflops < 1 else 1),
        "mfu": round(tflops / peak, 3) if peak else None,
        "peak_gib": round(torch.cuda.max_memory_allocated() / 2**30, 1)
        if device == "cuda"
        else None,
    }
    del model, optimizer
    gc.collect()
    if device == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
    return result


def peak_tflops(device: str) -> float | None:
    if device != "cuda":
        return None
    name = torch.cuda.get_device_name()
    return next((v for k, v in PEAK_TFLOPS.items() if k in name), None)


def shared_bench(script: str, tiny: bool, *args: str) -> list[dict[str, Any]]:
    """A shared benchmark script in its own process; its JSON lines."""
    env = {**os.environ, "TINY": "1" if tiny else "0"}
    proc = subprocess.run(
        [sys.executable, str(SHARED_BENCH / script), *args],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    lines = [json.loads(x) for x in proc.stdout.splitlines() if x.startswith("{")]
    if proc.returncode != 0:
        lines.append({"script": script, "error": proc.stderr.strip().splitlines()[-1:]})
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tiny", action="store_true", help="tiny model (CPU smoke test)")
    parser.add_argument("--conversations", type=int, default=None)
    parser.add_argument("--no-baseline", action="store_true", help="skip the shared scripts")
    parser.add_argument(
        "--baichuan",
        action="store_true",
        help="the same shapes as the trainer's native Baichuan-13B (ALiBi) instead of Llama",
    )
    args = parser.parse_args()
    device = "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cpu" and not args.tiny:
        raise SystemExit("the 1.3B benchmark needs a GPU; use --tiny on a CPU")
    setup = TINY if args.tiny else GPU_1B
    if args.baichuan:
        setup = replace(setup, name=f"{setup.name}-baichuan-alibi", arch="baichuan")
    n = args.conversations or (400 if args.tiny else 1200)
    data = conversations(setup, n, seed=0)
    env = {
        "device": torch.cuda.get_device_name() if device == "cuda" else "cpu",
        "torch": torch.__version__,
        "conversations": n,
    }
    print(json.dumps(env), flush=True)
    ours = [run(setup, mode, device, data) for mode in ("padded", "packed")]
    for r in ours:
        print(json.dumps(r), flush=True)
    baseline: list[dict[str, Any]] = []
    if not args.no_baseline:
        baseline = shared_bench("sft_baseline.py", args.tiny, *([] if args.tiny else ["1b"]))
        if device == "cuda":
            baseline += shared_bench("pack_flex_bench.py", args.tiny)
        for b in baseline:
            print(json.dumps({"shared": True, **b}), flush=True)
    print_table(ours, baseline)


def print_table(ours: list[dict[str, Any]], baseline: list[dict[str, Any]]) -> None:
    padded, packed = ours
    rows = [
        (
            f"trainer {r['mode']}" + (f" ({r['isolation']})" if r["isolation"] else ""),
            r["real_tok_s"],
            r["pad_frac"],
            r["model_tflops"],
            r["mfu"],
        )
        for r in ours
    ]
    base = next((b for b in baseline if "padded" in b and not b.get("lora")), None)
    for b in baseline:
        if "padded" in b and not b.get("lora"):
            for mode in ("padded", "packed_ceiling"):
                m = b[mode]
                rows.append(
                    (
                        f"sft_baseline {mode}",
                        m["real_tok_s"],
                        m["pad_frac"],
                        m["model_tflops"],
                        None,
                    )
                )
        elif b.get("mode") == "packed_flex_isolated":
            rows.append(
                ("pack_flex_bench isolated", b["real_tok_s"], None, b["model_tflops"], None)
            )
    print(f"\n{'path':<34}{'real tok/s':>12}{'padding':>9}{'TFLOP/s':>10}{'MFU':>7}")
    for name, tok, pad, tf, mfu in rows:
        pad_s = f"{pad:.0%}" if pad is not None else "-"
        mfu_s = f"{mfu:.0%}" if mfu is not None else "-"
        print(f"{name:<34}{tok:>12,}{pad_s:>9}{tf:>10}{mfu_s:>7}")
    print(f"\npacked / padded, same run: {packed['real_tok_s'] / padded['real_tok_s']:.2f}x")
    if base:
        ratio = packed["real_tok_s"] / base["padded"]["real_tok_s"]
        print(f"packed / sft_baseline padded: {ratio:.2f}x")
        print(
            json.dumps(
                {
                    "summary": True,
                    "packed_over_padded": round(packed["real_tok_s"] / padded["real_tok_s"], 3),
                    "packed_over_baseline_padded": round(ratio, 3),
                }
            )
        )


if __name__ == "__main__":
    main()
