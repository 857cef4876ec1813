"""The Baichuan vLLM plugin (engines/vllm_baichuan) in a real vLLM server, against the native
implementation (trainer/baichuan) on the same weights, float32:

- Baichuan-13B (ALiBi, 6 heads: ALiBi's extra slopes): prompt logprobs of a multi-turn prompt
  rendered by the format module within 1e-4, through `prompt_logprobs` and `echo`+`logprobs`;
  greedy generation gives the native greedy tokens;
- a runtime-loaded LoRA adapter (PEFT, "all-linear" as the trainer sets it: W_pack, o_proj,
  gate/up/down_proj) gives the native PeftModel's logprobs;
- Baichuan-7B (RoPE, `BaiChuanForCausalLM`): prompt logprobs within 1e-4 (a second server,
  started with `--trust-remote-code` as deployments run it).

Without vLLM's environment these skip (see conftest.py); the first two tests below need only
this environment: the plugin's ALiBi slopes and config rule equal the native ones."""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType, SimpleNamespace
from typing import Any

import httpx
import pytest

from .conftest import ROOT, VllmServer, build_original_baichuan, start_vllm

TOLERANCE = 1e-4  # float32 on both sides: summation order only (measured ~1e-5)
PLUGIN = ROOT / "engines" / "vllm_baichuan" / "medchat_vllm_baichuan"


def _plugin_module(name: str) -> ModuleType:
    """A module of the plugin that needs no vLLM, loaded from its file (the plugin is not
    installed in this environment)."""
    qualified = f"_medchat_vllm_baichuan_{name}"
    if qualified in sys.modules:
        return sys.modules[qualified]
    spec = importlib.util.spec_from_file_location(qualified, PLUGIN / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[qualified] = module  # dataclass processing (the config class) looks it up
    spec.loader.exec_module(module)
    return module


def test_plugin_alibi_slopes_and_their_tensor_parallel_shards() -> None:
    from trainer.baichuan import alibi_slopes

    alibi = _plugin_module("alibi")
    for heads in (*range(1, 65), 40):
        ours = alibi.alibi_slopes(heads)
        assert ours == pytest.approx(alibi_slopes(heads).tolist(), rel=1e-6), heads
        for tp in (t for t in (1, 2, 4, 8) if heads % t == 0):
            shards = [alibi.alibi_slopes_shard(heads, rank, tp) for rank in range(tp)]
            assert [s for shard in shards for s in shard] == ours
            assert all(len(s) == heads // tp for s in shards)
    with pytest.raises(ValueError, match="cannot be split"):
        alibi.alibi_slopes_shard(40, 0, 3)


@pytest.mark.parametrize(
    ("keys", "expected"),
    [
        ({"model_max_length": 4096}, "alibi"),  # Baichuan-13B's config.json
        ({"max_position_embeddings": 4096}, "rope"),  # Baichuan-7B's
        ({}, "alibi"),
        ({"max_position_embeddings": 4096, "position_embedding": "alibi"}, "alibi"),
        ({"model_max_length": 4096, "position_embedding": "rope"}, "rope"),
    ],
)
def test_plugin_config_picks_positions_as_the_native_config(
    keys: dict[str, Any], expected: str
) -> None:
    from trainer.baichuan import BaichuanConfig

    plugin = _plugin_module("configuration").BaichuanConfig
    base = {"hidden_size": 192, "num_attention_heads": 6, "auto_map": {"AutoConfig": "x.Y"}}
    ours = plugin.from_dict({**base, **keys})
    native = BaichuanConfig.from_dict({**base, **keys})
    assert ours.position_embedding == native.position_embedding == expected
    assert ours.head_dim == 32
    assert "auto_map" not in ours.to_dict()
    # The model reads any config carrying the original keys the same way (the checkpoint's
    # own 2023 class has no position_embedding attribute).
    position_embedding_of = _plugin_module("configuration").position_embedding_of
    assert position_embedding_of(SimpleNamespace(**keys)) == expected


# --- against the real server ---------------------------------------------------------------

HISTORY = [
    ("user", "我最近总是头痛，晚上也睡不好，需要做什么检查吗？"),
    ("assistant", "头痛持续多久了？有没有发热、呕吐或者视物模糊？"),
    ("user", "大概两个星期，没有发热，有时候会恶心。"),
    ("assistant", "Is the pain worse in the morning? 有没有高血压病史？"),
    ("user", "早上重一些，血压没量过。"),
]


def multi_turn_ids(model_dir: Path) -> list[int]:
    """The DISC-MedLLM prompt of HISTORY (bos, rounds with </s>, the open assistant turn),
    rendered by the format module as the gateway renders it."""
    from services.core.chatformat.conversation import Turn
    from services.core.chatformat.render import render_prompt
    from services.core.chatformat.tokenizer import load_tokenizer

    turns = [Turn(role=role, content=text) for role, text in HISTORY]  # type: ignore[arg-type]
    ids = render_prompt(turns, load_tokenizer(model_dir), budget=200).input_ids
    assert ids[0] == 1 and ids[-1] == 196 and ids.count(2) == 2 and len(ids) > 40
    return ids


def native_model(model_dir: Path, adapter_dir: Path | None = None) -> Any:
    import torch

    from trainer.baichuan import BaichuanForCausalLM

    model: Any = BaichuanForCausalLM.from_pretrained(str(model_dir), dtype=torch.float32)
    if adapter_dir is not None:
        from peft import PeftModel

        model = PeftModel.from_pretrained(model, str(adapter_dir))
    return model.eval()


def native_prompt_logprobs(model: Any, ids: list[int]) -> list[float]:
    """log P(ids[i] | ids[:i]) for i >= 1, from one forward pass."""
    import torch

    with torch.no_grad():
        logits = model(input_ids=torch.tensor([ids])).logits[0].float()
    logprobs = torch.log_softmax(logits, dim=-1)
    return [logprobs[i - 1, ids[i]].item() for i in range(1, len(ids))]


def native_greedy(model: Any, ids: list[int], steps: int) -> list[int]:
    """Argmax continuation, eos not special (as vLLM with ignore_eos)."""
    import torch

    out = list(ids)
    with torch.no_grad():
        for _ in range(steps):
            out.append(int(model(input_ids=torch.tensor([out])).logits[0, -1].argmax()))
    return out[len(ids) :]


def completion(server: VllmServer, **body: Any) -> dict[str, Any]:
    body.setdefault("model", server.served_model_name)
    response = httpx.post(f"{server.base_url}/v1/completions", json=body, timeout=120)
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()["choices"][0]
    return result


def engine_prompt_logprobs(server: VllmServer, ids: list[int], **body: Any) -> list[float]:
    """vLLM's `prompt_logprobs`: per prompt position a {token id: {logprob, ...}} map (None
    at position 0), holding the prompt's own token."""
    choice = completion(server, prompt=ids, max_tokens=1, temperature=0, prompt_logprobs=0, **body)
    scores = choice["prompt_logprobs"]
    assert scores[0] is None and len(scores) == len(ids)
    return [float(scores[i][str(ids[i])]["logprob"]) for i in range(1, len(ids))]


def max_abs_difference(a: list[float], b: list[float]) -> float:
    assert len(a) == len(b)
    return max(abs(x - y) for x, y in zip(a, b, strict=True))


def test_13b_prompt_logprobs_match_the_native_model(vllm_server: VllmServer) -> None:
    ids = multi_turn_ids(vllm_server.model_dir)
    native = native_prompt_logprobs(native_model(vllm_server.model_dir), ids)
    served = engine_prompt_logprobs(vllm_server, ids)
    delta = max_abs_difference(native, served)
    print(f"\nBaichuan-13B (ALiBi) max |Δlogprob| over {len(native)} prompt tokens: {delta:.2e}")  # noqa: T201 (a figure the issue asks for)
    assert delta <= TOLERANCE
    # The same numbers through the OpenAI form: echo the prompt with its logprobs.
    choice = completion(vllm_server, prompt=ids, max_tokens=1, temperature=0, echo=True, logprobs=0)
    echoed = choice["logprobs"]["token_logprobs"][1 : len(ids)]
    assert max_abs_difference(native, [float(x) for x in echoed]) <= TOLERANCE
    # The test can tell: the same weights with rotary positions instead of ALiBi (what TGI
    # would run) are off by far more than the tolerance.
    rope = native_model(vllm_server.model_dir)
    rope.config.position_embedding = "rope"
    assert max_abs_difference(native, native_prompt_logprobs(rope, ids)) > 100 * TOLERANCE


def test_13b_greedy_generation_matches_the_native_model(vllm_server: VllmServer) -> None:
    ids = multi_turn_ids(vllm_server.model_dir)
    expected = native_greedy(native_model(vllm_server.model_dir), ids, steps=8)
    choice = completion(
        vllm_server,
        prompt=ids,
        max_tokens=8,
        temperature=0,
        ignore_eos=True,
        return_token_ids=True,
    )
    assert choice["token_ids"] == expected


@pytest.fixture(scope="module")
def lora_adapter(tmp_path_factory: pytest.TempPathFactory, tiny_baichuan_13b: Path) -> Path:
    """A PEFT adapter on every linear layer but the head (the trainer's default target,
    "all-linear"), rank 8, with random B matrices so that it changes the model."""
    import torch
    from peft import LoraConfig, get_peft_model

    model = native_model(tiny_baichuan_13b)
    config = LoraConfig(r=8, lora_alpha=16, target_modules="all-linear", task_type="CAUSAL_LM")
    peft_model = get_peft_model(model, config)
    torch.manual_seed(1)
    with torch.no_grad():
        for name, p in peft_model.named_parameters():
            if "lora_B" in name:
                p.normal_(0.0, 0.05)
    out = tmp_path_factory.mktemp("lora")
    peft_model.save_pretrained(str(out))
    targets = {t.rsplit(".", 1)[-1] for t in LoraConfig.from_pretrained(str(out)).target_modules}
    assert targets == {"W_pack", "o_proj", "gate_proj", "up_proj", "down_proj"}
    return out


@pytest.fixture
def loaded_adapter(vllm_server: VllmServer, lora_adapter: Path) -> Iterator[str]:
    name = "tiny-lora"
    load = {"lora_name": name, "lora_path": str(lora_adapter)}
    response = httpx.post(f"{vllm_server.base_url}/v1/load_lora_adapter", json=load, timeout=120)
    assert response.status_code == 200, response.text
    try:
        yield name
    finally:
        httpx.post(
            f"{vllm_server.base_url}/v1/unload_lora_adapter", json={"lora_name": name}, timeout=60
        )


def test_runtime_lora_adapter_matches_peft(
    vllm_server: VllmServer, lora_adapter: Path, loaded_adapter: str
) -> None:
    ids = multi_turn_ids(vllm_server.model_dir)
    native = native_prompt_logprobs(native_model(vllm_server.model_dir, lora_adapter), ids)
    served = engine_prompt_logprobs(vllm_server, ids, model=loaded_adapter)
    delta = max_abs_difference(native, served)
    print(f"\nBaichuan-13B + LoRA (all-linear, r=8) max |Δlogprob|: {delta:.2e}")  # noqa: T201 (a figure the issue asks for)
    assert delta <= TOLERANCE
    base = engine_prompt_logprobs(vllm_server, ids)
    assert max_abs_difference(base, served) > 100 * TOLERANCE, "the adapter changed nothing"


@pytest.fixture(scope="module")
def vllm_server_7b(
    vllm_python: Path, tmp_path_factory: pytest.TempPathFactory, baichuan_tokenizer_dir: Path
) -> Iterator[VllmServer]:
    """A server of its own for the 7B (RoPE) variant, one process, compiled (torch.compile,
    as vLLM runs by default; the shared 13B server runs eager and tensor-parallel)."""
    model_dir = build_original_baichuan(
        tmp_path_factory.mktemp("tiny-baichuan-7b"),
        baichuan_tokenizer_dir,
        position_embedding="rope",
    )
    log_path = tmp_path_factory.mktemp("vllm-7b") / "vllm-7b.log"
    # --trust-remote-code as compose and k8s run it: the checkpoint's remote code (a trap
    # here, see build_original_baichuan) must still not be what vLLM uses.
    with start_vllm(
        model_dir, log_path, "--trust-remote-code", served_model_name="tiny-baichuan-7b"
    ) as server:
        yield server


def test_7b_rope_prompt_logprobs_match_the_native_model(vllm_server_7b: VllmServer) -> None:
    import json

    config = json.loads((vllm_server_7b.model_dir / "config.json").read_text())
    assert config["architectures"] == ["BaiChuanForCausalLM"]
    assert "model_max_length" not in config and "position_embedding" not in config
    ids = multi_turn_ids(vllm_server_7b.model_dir)
    model = native_model(vllm_server_7b.model_dir)
    assert model.config.position_embedding == "rope"
    delta = max_abs_difference(
        native_prompt_logprobs(model, ids), engine_prompt_logprobs(vllm_server_7b, ids)
    )
    print(f"\nBaichuan-7B (RoPE) max |Δlogprob|: {delta:.2e}")  # noqa: T201 (a figure the issue asks for)
    assert delta <= TOLERANCE
