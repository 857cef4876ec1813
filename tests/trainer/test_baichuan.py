"""Native Baichuan (trainer.baichuan): ALiBi slopes as BLOOM's, logits as a plain-torch
reference forward, eager = sdpa (= flex), packed rows = conversations alone, the original
checkpoint layout and config.json without remote code, generation with a cache, training."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest
import torch
import torch.nn.functional as F
from safetensors import safe_open
from transformers import AutoConfig, AutoModelForCausalLM
from transformers.models.bloom.modeling_bloom import build_alibi_tensor

from trainer.baichuan import BaichuanConfig, BaichuanForCausalLM
from trainer.baichuan.modeling import alibi_bias, alibi_slopes
from trainer.collator import PadCollator
from trainer.data import Features
from trainer.packing import model_inputs, pack_row

VARIANTS = ["alibi", "rope"]
# On the CPU flex_attention runs its uncompiled reference kernel, and says so.
UNCOMPILED_FLEX = "ignore:flex_attention called without torch.compile"


def assert_close(actual: torch.Tensor, expected: torch.Tensor) -> None:
    torch.testing.assert_close(actual, expected, atol=1e-5, rtol=1e-5)


def tiny_config(position_embedding: str, heads: int = 4, **extra: Any) -> BaichuanConfig:

    return BaichuanConfig(
        hidden_size=12 * heads if heads != 4 else 64,
        intermediate_size=96,
        num_attention_heads=heads,
        num_hidden_layers=2,
        position_embedding=position_embedding,
        **{"vocab_size": 300, **extra},
    )


def tiny_model(
    position_embedding: str, heads: int = 4, attn: str = "eager", seed: int = 0
) -> BaichuanForCausalLM:
    """Random weights large enough that attention patterns and norms matter."""

    torch.manual_seed(seed)
    model = BaichuanForCausalLM(tiny_config(position_embedding, heads))
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "layernorm" in name or name.endswith("norm.weight"):
                p.copy_(1 + 0.2 * torch.randn_like(p))
            else:
                p.normal_(0.0, 0.15)
    model.set_attn_implementation(attn)
    model.eval()
    return model


# --- an independent forward in plain torch -------------------------------------------------


def reference_logits(model: BaichuanForCausalLM, ids: torch.Tensor) -> torch.Tensor:
    """One unpadded sequence (1, n), positions 0..n-1, straight from the state dict. ALiBi
    in BLOOM's absolute form (slope * key position) from BLOOM's own function."""
    cfg = model.config
    w = {k: v.detach() for k, v in model.state_dict().items()}
    heads, hidden = cfg.num_attention_heads, cfg.hidden_size
    dim = hidden // heads
    n = ids.shape[1]

    def rms(x: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
        return weight * x / torch.sqrt((x * x).mean(-1, keepdim=True) + cfg.rms_norm_eps)

    def rope(x: torch.Tensor) -> torch.Tensor:  # x: (heads, n, dim), rotate-half
        inv = 1.0 / (cfg.rope_theta ** (torch.arange(0, dim, 2).float() / dim))
        ang = torch.arange(n).float()[:, None] * inv[None, :]
        cos, sin = torch.cat([ang, ang], -1).cos(), torch.cat([ang, ang], -1).sin()
        x1, x2 = x[..., : dim // 2], x[..., dim // 2 :]
        return x * cos + torch.cat([-x2, x1], -1) * sin

    causal = torch.ones(n, n).tril().bool()
    if cfg.position_embedding == "alibi":
        bias = build_alibi_tensor(torch.ones(1, n), heads, torch.float32).reshape(heads, 1, n)
    else:
        bias = torch.zeros(heads, 1, n)

    x = w["model.embed_tokens.weight"][ids[0]]
    for i in range(cfg.num_hidden_layers):
        p = f"model.layers.{i}."
        h = rms(x, w[p + "input_layernorm.weight"])
        qkv = h @ w[p + "self_attn.W_pack.weight"].T
        q, k, v = (t.reshape(n, heads, dim).transpose(0, 1) for t in qkv.split(hidden, -1))
        if cfg.position_embedding == "rope":
            q, k = rope(q), rope(k)
        scores = q @ k.transpose(1, 2) / math.sqrt(dim) + bias
        scores = scores.masked_fill(~causal, float("-inf"))
        att = torch.softmax(scores, -1) @ v  # (heads, n, dim)
        x = x + att.transpose(0, 1).reshape(n, hidden) @ w[p + "self_attn.o_proj.weight"].T
        h = rms(x, w[p + "post_attention_layernorm.weight"])
        gate = F.silu(h @ w[p + "mlp.gate_proj.weight"].T)
        x = x + (gate * (h @ w[p + "mlp.up_proj.weight"].T)) @ w[p + "mlp.down_proj.weight"].T
    x = rms(x, w["model.norm.weight"])
    out: torch.Tensor = (x @ w["lm_head.weight"].T)[None]
    return out


def logits(model: BaichuanForCausalLM, **inputs: Any) -> torch.Tensor:
    with torch.no_grad():
        out: torch.Tensor = model(**inputs, use_cache=False).logits
    return out


# --- 1. ALiBi slopes and bias --------------------------------------------------------------


@pytest.mark.parametrize("heads", [1, 4, 5, 6, 8, 12, 40])
def test_alibi_matches_bloom(heads: int) -> None:

    n = 9
    bloom = build_alibi_tensor(torch.ones(1, n), heads, torch.float32).reshape(heads, n)
    torch.testing.assert_close(alibi_slopes(heads), bloom[:, 1], atol=0, rtol=0)
    # The relative bias slope * (j - i) is BLOOM's slope * j shifted per query row.
    positions = torch.arange(n)[None]
    bias = alibi_bias(heads, positions, positions)[0]
    expected = bloom[:, None, :] - bloom[:, :, None]
    torch.testing.assert_close(bias, expected, atol=1e-6, rtol=0)


def test_model_bias_is_alibi_on_the_allowed_positions() -> None:
    model = tiny_model("alibi", heads=5)
    mask, _ = model.model.attention_bias(None, None, 1, 6, 0, torch.float32, torch.device("cpu"))
    bloom = build_alibi_tensor(torch.ones(1, 6), 5, torch.float32).reshape(5, 6)
    allowed = torch.ones(6, 6).tril().bool()
    expected = (bloom[:, None, :] - bloom[:, :, None]).masked_fill(
        ~allowed, torch.finfo(torch.float32).min
    )
    torch.testing.assert_close(mask[0], expected, atol=1e-6, rtol=0)


# --- 2. the reference forward; 3. eager = sdpa ---------------------------------------------


@pytest.mark.parametrize(("variant", "heads"), [("alibi", 4), ("alibi", 5), ("rope", 4)])
def test_logits_match_reference(variant: str, heads: int) -> None:
    model = tiny_model(variant, heads)
    ids = torch.randint(3, 300, (1, 13), generator=torch.Generator().manual_seed(1))
    assert_close(logits(model, input_ids=ids), reference_logits(model, ids))


@pytest.mark.parametrize(("variant", "heads"), [("alibi", 6), ("rope", 4)])
def test_eager_equals_sdpa(variant: str, heads: int) -> None:
    eager = tiny_model(variant, heads, attn="eager")
    sdpa = tiny_model(variant, heads, attn="sdpa")
    assert eager.config._attn_implementation == "eager"
    assert sdpa.config._attn_implementation == "sdpa"
    ids = torch.randint(3, 300, (2, 11), generator=torch.Generator().manual_seed(2))
    mask = torch.ones_like(ids)
    mask[1, 7:] = 0  # right padding on the second row
    for inputs in ({"input_ids": ids}, {"input_ids": ids, "attention_mask": mask}):
        assert_close(logits(eager, **inputs), logits(sdpa, **inputs))


# --- 4. packed rows = conversations alone --------------------------------------------------


def _features(ids: list[int]) -> Features:
    return Features(
        input_ids=ids, shift_labels=[*ids[1:], -100], position_ids=list(range(len(ids)))
    )


def _pack(*parts: Features) -> Features:
    return pack_row(parts)


@pytest.mark.parametrize("attn", ["eager", "sdpa"])
@pytest.mark.parametrize(("variant", "heads"), [("alibi", 5), ("rope", 4)])
def test_packed_equals_alone(variant: str, heads: int, attn: str) -> None:
    model = tiny_model(variant, heads, attn=attn)
    gen = torch.Generator().manual_seed(3)
    first = torch.randint(3, 300, (9,), generator=gen).tolist()
    second = torch.randint(3, 300, (5,), generator=gen).tolist()
    packed = _pack(_features(first), _features(second))
    # The trainer's own collation and 4D block-diagonal mask, with a padded tail.
    batch = PadCollator(pad_id=0, pad_to_length=17)([packed])
    inputs = model_inputs(batch, "mask", torch.float32)
    assert inputs["attention_mask"].shape == (1, 1, 17, 17)
    together = logits(model, **inputs)[0]
    alone_first = logits(model, input_ids=torch.tensor([first]))[0]
    alone_second = logits(model, input_ids=torch.tensor([second]))[0]
    assert_close(together[:9], alone_first)
    assert_close(together[9:14], alone_second)


@pytest.mark.filterwarnings(UNCOMPILED_FLEX)
@pytest.mark.parametrize(("variant", "heads"), [("alibi", 5), ("rope", 4)])
def test_flex_forward_matches_eager(variant: str, heads: int) -> None:
    """flex_attention (the uncompiled CPU kernel, forward only) with ALiBi as a score_mod:
    causal with no mask, and the trainer's packed BlockMask, against eager."""
    eager = tiny_model(variant, heads, attn="eager")
    flex = tiny_model(variant, heads, attn="flex_attention")
    ids = torch.randint(3, 300, (2, 11), generator=torch.Generator().manual_seed(9))
    assert_close(logits(flex, input_ids=ids), logits(eager, input_ids=ids))
    gen = torch.Generator().manual_seed(10)
    first = torch.randint(3, 300, (9,), generator=gen).tolist()
    second = torch.randint(3, 300, (5,), generator=gen).tolist()
    rows = [_pack(_features(first), _features(second)), _features(second)]
    batch = PadCollator(pad_id=0, pad_to_length=17)(rows)
    with_block_mask = logits(flex, **model_inputs(batch, "flex", torch.float32))
    with_dense_mask = logits(eager, **model_inputs(batch, "mask", torch.float32))
    assert_close(with_block_mask[0, :14], with_dense_mask[0, :14])
    assert_close(with_block_mask[1, :5], with_dense_mask[1, :5])
    assert_close(with_block_mask[0, 9:14], logits(eager, input_ids=torch.tensor([second]))[0])
    with pytest.raises(NotImplementedError):  # a 4D tensor mask: sdpa's and eager's
        flex(**model_inputs(batch, "mask", torch.float32), use_cache=False)
    with pytest.raises(ValueError, match="BlockMask"):
        eager(**model_inputs(batch, "flex", torch.float32), use_cache=False)


@pytest.mark.parametrize("variant", VARIANTS)
def test_padded_batch_equals_alone(variant: str) -> None:
    """The unpacked path (isolation None): right-padded rows with a 2D mask."""
    model = tiny_model(variant, attn="sdpa")
    rows = [list(range(10, 19)), list(range(40, 45))]
    batch = PadCollator(pad_id=0)([_features(r) for r in rows])
    together = logits(model, **model_inputs(batch, None, torch.float32))
    for i, r in enumerate(rows):
        alone = logits(model, input_ids=torch.tensor([r]))[0]
        assert_close(together[i, : len(r)], alone)


# --- 5. checkpoint layout and the original config.json ------------------------------------

LAYER_KEYS = [
    "self_attn.W_pack.weight",
    "self_attn.o_proj.weight",
    "mlp.gate_proj.weight",
    "mlp.up_proj.weight",
    "mlp.down_proj.weight",
    "input_layernorm.weight",
    "post_attention_layernorm.weight",
]


def _original_config(**variant_keys: Any) -> dict[str, Any]:
    """Baichuan's own config.json keys, at tiny sizes."""
    return {
        "_from_model_config": True,
        "architectures": ["BaichuanForCausalLM"],
        "auto_map": {
            "AutoConfig": "configuration_baichuan.BaichuanConfig",
            "AutoModelForCausalLM": "modeling_baichuan.BaichuanForCausalLM",
        },
        "bos_token_id": 1,
        "eos_token_id": 2,
        "hidden_act": "silu",
        "hidden_size": 64,
        "initializer_range": 0.02,
        "intermediate_size": 96,
        "model_type": "baichuan",
        "num_attention_heads": 4,
        "num_hidden_layers": 2,
        "pad_token_id": 0,
        "rms_norm_eps": 1e-06,
        "tie_word_embeddings": False,
        "torch_dtype": "bfloat16",
        "transformers_version": "4.29.2",
        "use_cache": True,
        "vocab_size": 300,
        **variant_keys,
    }


@pytest.mark.parametrize("variant", VARIANTS)
def test_save_layout_and_auto_reload(variant: str, tmp_path: Path) -> None:

    model = tiny_model(variant)
    model.save_pretrained(tmp_path)
    with safe_open(str(tmp_path / "model.safetensors"), "pt") as f:
        keys = set(f.keys())
    expected = {"model.embed_tokens.weight", "model.norm.weight", "lm_head.weight"}
    expected |= {f"model.layers.{i}.{k}" for i in range(2) for k in LAYER_KEYS}
    assert keys == expected
    assert not any(p in k for k in keys for p in ("q_proj", "k_proj", "v_proj", "inv_freq"))
    with safe_open(str(tmp_path / "model.safetensors"), "pt") as f:
        assert f.get_tensor("model.layers.0.self_attn.W_pack.weight").shape == (192, 64)
    reloaded = AutoModelForCausalLM.from_pretrained(
        tmp_path, dtype=torch.float32, attn_implementation="eager"
    )
    assert isinstance(reloaded, BaichuanForCausalLM)
    assert reloaded.config.position_embedding == variant
    ids = torch.randint(3, 300, (2, 8), generator=torch.Generator().manual_seed(4))
    reloaded.eval()
    assert torch.equal(logits(reloaded, input_ids=ids), logits(model, input_ids=ids))


@pytest.mark.parametrize(
    ("keys", "variant"),
    [({"model_max_length": 4096}, "alibi"), ({"max_position_embeddings": 4096}, "rope")],
)
def test_original_config_json_loads_without_remote_code(
    keys: dict[str, Any], variant: str, tmp_path: Path
) -> None:
    """13B's config.json (model_max_length) → ALiBi; 7B's (max_position_embeddings) → RoPE;
    auto_map pointing to remote code is tolerated and not followed."""

    model = tiny_model(variant)
    model.save_pretrained(tmp_path)
    (tmp_path / "config.json").write_text(json.dumps(_original_config(**keys)))
    config = AutoConfig.from_pretrained(tmp_path)
    assert type(config) is BaichuanConfig
    assert config.position_embedding == variant
    reloaded = AutoModelForCausalLM.from_pretrained(tmp_path, dtype=torch.float32)
    assert isinstance(reloaded, BaichuanForCausalLM)
    assert reloaded.config._attn_implementation == "sdpa"  # the default; the original is eager
    ids = torch.randint(3, 300, (1, 8), generator=torch.Generator().manual_seed(5))
    reloaded.eval()
    assert_close(logits(reloaded, input_ids=ids), logits(model, input_ids=ids))


def test_registration_is_idempotent() -> None:
    import trainer.baichuan as package

    package.register()
    package.register()
    assert AutoConfig.for_model("baichuan").__class__ is package.BaichuanConfig


# --- generation with a cache ---------------------------------------------------------------


@pytest.mark.filterwarnings(UNCOMPILED_FLEX)
@pytest.mark.parametrize("attn", ["sdpa", "flex_attention"])
@pytest.mark.parametrize("variant", VARIANTS)
def test_generation_cache_matches_full_recompute(variant: str, attn: str) -> None:
    model = tiny_model(variant, heads=4 if variant == "rope" else 5, attn=attn)
    ids = torch.randint(3, 300, (1, 6), generator=torch.Generator().manual_seed(6))
    kwargs: dict[str, Any] = {"max_new_tokens": 6, "do_sample": False, "pad_token_id": 0}
    cached = model.generate(ids, use_cache=True, **kwargs)
    full = model.generate(ids, use_cache=False, **kwargs)
    assert torch.equal(cached, full)
    # Left-padded in a batch with a longer prompt: the same continuation.
    other = torch.randint(3, 300, (1, 9), generator=torch.Generator().manual_seed(7))
    padded = torch.cat([torch.zeros(1, 3, dtype=torch.long), ids], dim=1)
    batch = torch.cat([padded, other])
    mask = (torch.arange(9)[None] >= torch.tensor([[3], [0]])).long()
    out = model.generate(batch, attention_mask=mask, **kwargs)
    assert torch.equal(out[0, 9:], cached[0, 6:])


# --- 6. training ---------------------------------------------------------------------------


@pytest.mark.parametrize("variant", VARIANTS)
def test_training_steps_lower_the_loss(variant: str) -> None:
    model = tiny_model(variant, attn="sdpa").train()
    ids = torch.randint(3, 300, (2, 12), generator=torch.Generator().manual_seed(8))
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    losses = []
    for _ in range(4):
        loss = model(input_ids=ids, labels=ids, use_cache=False).loss
        assert loss is not None
        optimizer.zero_grad()
        loss.backward()
        assert model.model.layers[0].self_attn.W_pack.weight.grad is not None
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0]


def test_activation_checkpointing_gives_the_same_gradients() -> None:
    ids = torch.randint(3, 300, (2, 12), generator=torch.Generator().manual_seed(11))
    grads = []
    for checkpointing in (False, True):
        model = tiny_model("alibi", heads=5, attn="sdpa").train()
        if checkpointing:
            model.activation_checkpointing_enable()
        model(input_ids=ids, labels=ids, use_cache=False).loss.backward()
        grads.append(model.model.layers[0].self_attn.W_pack.weight.grad)
    assert grads[0] is not None and grads[1] is not None
    assert_close(grads[1], grads[0])


def test_bfloat16_packed_rows_stay_finite_and_close() -> None:
    """The trainer's bf16 4D mask (the dtype's minimum) plus the ALiBi bias: no -inf/NaN."""
    model = tiny_model("alibi", heads=5, attn="sdpa")
    batch = PadCollator(pad_id=0, pad_to_length=40)(
        [pack_row([_features(list(range(5, 30))), _features(list(range(40, 50)))])]
    )
    reference = logits(model, **model_inputs(batch, "mask", torch.float32))
    model.bfloat16()
    half = logits(model, **model_inputs(batch, "mask", torch.bfloat16))
    assert half.dtype == torch.bfloat16 and bool(torch.isfinite(half).all())
    scale = float(reference.abs().max())
    assert float((half.float() - reference).abs().max()) < 0.05 * scale


# --- the project's trainer on a tiny Baichuan ----------------------------------------------


@pytest.mark.parametrize("packing", [False, True], ids=["padded", "packed"])
def test_trainer_runs_on_a_tiny_baichuan(
    run_trainer: Any, hf_marker_dir: Path, tmp_path: Path, packing: bool
) -> None:
    """trainer.train.main, in-process, on a directory laid out as Baichuan-13B's: the
    original config.json's keys (auto_map to its remote code, model_max_length), the marker
    tokenizer, trust_remote_code asked for as DISC-MedLLM's arguments do — the native
    implementation is used all the same. Packed rows on the CPU go through the 4D
    block-diagonal mask (sdpa) with ALiBi added."""
    from transformers import AutoTokenizer

    base = tmp_path / "baichuan"
    base.mkdir()
    for f in hf_marker_dir.iterdir():
        if f.is_file():
            (base / f.name).write_bytes(f.read_bytes())
    vocab = len(AutoTokenizer.from_pretrained(str(hf_marker_dir)))
    torch.manual_seed(0)
    BaichuanForCausalLM(tiny_config("alibi", vocab_size=vocab)).save_pretrained(base)
    config = _original_config(model_max_length=4096, vocab_size=vocab, torch_dtype="float32")
    (base / "config.json").write_text(json.dumps(config))
    summary = run_trainer(
        model_name_or_path=str(base), packing=packing, max_steps=2, trust_remote_code=True
    )
    assert summary is not None
    trained = AutoModelForCausalLM.from_pretrained(tmp_path / "out")
    assert isinstance(trained, BaichuanForCausalLM)
    assert trained.config.position_embedding == "alibi"


def test_a_saved_checkpoint_names_no_remote_code(tmp_path: Path) -> None:
    """The original config.json's auto_map is not written back: the saved directory does not
    carry the 2023 code files it would point at."""
    source, saved = tmp_path / "source", tmp_path / "saved"
    tiny_model("alibi").save_pretrained(source)
    (source / "config.json").write_text(json.dumps(_original_config(model_max_length=4096)))
    AutoModelForCausalLM.from_pretrained(source).save_pretrained(saved)
    written = json.loads((saved / "config.json").read_text())
    assert "auto_map" not in written and written["model_type"] == "baichuan"
    assert written["position_embedding"] == "alibi"
