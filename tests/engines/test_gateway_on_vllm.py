"""The gateway in front of a real vLLM (the shared server of conftest.py: a tiny Baichuan-13B
through the project's plugin, --enable-lora, runtime LoRA loading allowed):

- start-up: /readyz is ready, the engine is up and the tokenization canary passed (vLLM
  tokenizes the format module's rendering as the gateway does);
- a streamed multi-turn patient chat (guest → session → two streamed turns);
- stop cancels the upstream: a long streamed answer is stopped, the partial answer is stored
  as `stopped`, and vLLM stopped generating it (its Prometheus /metrics: nothing running, no
  request finished by itself, fewer tokens generated than asked);
- a fine-tune made by the project's trainer (LoRA, all-linear: W_pack, o_proj, gate/up/down)
  on the served checkpoint, published into the registry as the worker does, is chosen by an
  admin: the gateway loads it into vLLM at runtime (/v1/load_lora_adapter), and chats are
  then answered by it.

Without vLLM's environment these skip (or fail under MEDCHAT_REQUIRE_VLLM=1): see conftest.py."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NamedTuple

import httpx
import orjson
import pytest

from services.core.registry import publish
from services.gateway.app import create_app
from services.gateway.config import GatewaySettings
from tests.support.platform import Patient, make_key
from tests.support.servers import serve, temporary_database
from tests.support.tokenizers import SFT_EXAMPLES

from .conftest import ROOT, VllmServer

pytest.importorskip("torch", reason="the fine-tune needs torch (the serve or train extra)")

# Generous: the CPUs are shared with vLLM's two workers (and, in CI, other test processes).
TIMEOUT_S = 180.0


class Gateway(NamedTuple):
    url: str
    database_url: str
    settings: GatewaySettings


@pytest.fixture(scope="module")
def gateway(
    vllm_server: VllmServer,
    gateway_settings: GatewaySettings,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Gateway]:
    """The real gateway (its own database and models registry) in front of the shared vLLM,
    configured as a vLLM deployment with runtime LoRA loading."""
    with temporary_database() as db:
        settings = gateway_settings.model_copy(
            update={
                "database_url": db,
                "engine_protocol": "openai",
                "engine_url": vllm_server.base_url,
                "engine_model": vllm_server.served_model_name,
                "engine_first_token_timeout_s": TIMEOUT_S,
                "engine_total_timeout_s": 2 * TIMEOUT_S,
                "tokenizer_path": vllm_server.model_dir,
                "engine_runtime_lora": True,
                "models_dir": tmp_path_factory.mktemp("gateway-on-vllm-models"),
                "serving_refresh_s": 0.0,
            }
        )
        with serve(create_app(settings)) as url:
            yield Gateway(url, db, settings)


def sse_events(response: httpx.Response) -> Iterator[tuple[str, Any]]:
    event = "message"
    for line in response.iter_lines():
        if line.startswith("event: "):
            event = line[7:]
        elif line.startswith("data: "):
            yield event, orjson.loads(line[6:])


@pytest.fixture
def guest(gateway: Gateway) -> Iterator[Patient]:
    with httpx.Client(base_url=gateway.url, timeout=TIMEOUT_S) as client:
        r = client.post("/api/auth/guest")
        assert r.status_code == 201, r.text
        yield Patient(client, r.json()["csrf_token"])


def streamed_turn(p: Patient, sid: str, content: str, **body: Any) -> list[tuple[str, Any]]:
    with p.client.stream(
        "POST",
        f"/api/sessions/{sid}/messages",
        json={"content": content, "stream": True, **body},
        headers={"X-CSRF-Token": p.csrf},
    ) as r:
        assert r.status_code == 200, r.read().decode()
        assert r.headers["content-type"].startswith("text/event-stream")
        return list(sse_events(r))


def vllm_metrics(server: VllmServer) -> dict[str, float]:
    """vLLM's Prometheus samples, summed over their labels but `finished_reason`."""
    text = httpx.get(f"{server.base_url}/metrics", timeout=30).text
    sums: dict[str, float] = {}
    for line in text.splitlines():
        if line.startswith("#") or not line.strip():
            continue
        sample, _, value = line.rpartition(" ")
        name = sample.split("{", 1)[0]
        if 'finished_reason="' in sample:
            name += ":" + sample.split('finished_reason="', 1)[1].split('"', 1)[0]
        sums[name] = sums.get(name, 0.0) + float(value)
    return sums


def test_start_up_canary_passes_against_vllm(gateway: Gateway) -> None:
    r = httpx.get(f"{gateway.url}/readyz", timeout=TIMEOUT_S)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["ready"] is True
    assert body["checks"]["engine"] == "ok"
    # vLLM tokenized the canary prompt (the format module's rendering) as the gateway does.
    assert body["checks"]["engine_tokenization"] == "ok", body["engine_detail"]
    assert body["serving"] == "tiny-baichuan-13b"


def test_streamed_multi_turn_chat(gateway: Gateway, guest: Patient) -> None:
    sid = guest.post("/api/sessions", json={}).json()["id"]
    answers: list[str] = []
    prompt_tokens: list[int] = []
    for question in ("我头痛三天了", "需要吃药吗？"):
        events = streamed_turn(guest, sid, question, max_new_tokens=16)
        kinds = [e for e, _ in events]
        assert kinds[0] == "meta" and kinds[-1] == "done", events
        done = events[-1][1]
        said = "".join(d["text"] for e, d in events if e == "delta")
        assert said and said == done["message"]["content"]
        assert done["message"]["status"] == "complete"
        assert done["usage"]["completion_tokens"] > 0
        answers.append(said)
        prompt_tokens.append(done["usage"]["prompt_tokens"])
    # The second prompt carries the first turn (question and answer) as well.
    assert prompt_tokens[1] > prompt_tokens[0]
    stored = guest.get(f"/api/sessions/{sid}").json()["messages"]
    assert [(m["seq"], m["role"], m["status"]) for m in stored] == [
        (1, "user", "complete"),
        (2, "assistant", "complete"),
        (3, "user", "complete"),
        (4, "assistant", "complete"),
    ]
    assert [stored[1]["content"], stored[3]["content"]] == answers


def test_stop_cancels_the_generation_in_vllm(
    gateway: Gateway, guest: Patient, vllm_server: VllmServer
) -> None:
    before = vllm_metrics(vllm_server)
    assert before.get("vllm:num_requests_running") == 0
    sid = guest.post("/api/sessions", json={}).json()["id"]
    events: list[tuple[str, Any]] = []
    with guest.client.stream(
        "POST",
        f"/api/sessions/{sid}/messages",
        json={
            "content": "请详细讲讲高血压的饮食和运动注意事项",
            "stream": True,
            # Most of the engine's 256-token context: the rest holds the prompt.
            "max_new_tokens": 200,
        },
        headers={"X-CSRF-Token": guest.csrf},
    ) as r:
        assert r.status_code == 200, r.read().decode()
        for event in sse_events(r):
            events.append(event)
            if event[0] == "delta" and sum(e == "delta" for e, _ in events) == 1:
                # The answer is under way in vLLM now.
                assert vllm_metrics(vllm_server)["vllm:num_requests_running"] == 1
                stop = guest.post(f"/api/sessions/{sid}/stop")
                assert stop.status_code == 202, stop.text
    kind, done = events[-1]
    assert kind == "done" and done["message"]["status"] == "stopped", events[-3:]
    assert done["message"]["content"]
    stored = guest.get(f"/api/sessions/{sid}").json()["messages"][-1]
    assert (stored["status"], stored["content"]) == ("stopped", done["message"]["content"])
    # vLLM stopped generating: nothing runs any more (polled: vLLM notices the closed stream
    # by itself), the request did not finish by itself (vLLM counts finished requests by
    # reason, aborted ones not at all), and it generated fewer than the 200 tokens asked.
    deadline = time.monotonic() + TIMEOUT_S
    while vllm_metrics(vllm_server)["vllm:num_requests_running"] != 0:
        assert time.monotonic() < deadline, "vLLM still runs the stopped request"
        time.sleep(0.2)
    after = vllm_metrics(vllm_server)
    for reason in ("stop", "length", "abort", "error"):
        name = f"vllm:request_success_total:{reason}"
        assert after.get(name, 0.0) == before.get(name, 0.0), reason
    generated = after["vllm:generation_tokens_total"] - before["vllm:generation_tokens_total"]
    assert 1 <= generated < 200
    time.sleep(1.0)  # and nothing more comes
    assert (
        vllm_metrics(vllm_server)["vllm:generation_tokens_total"]
        == (after["vllm:generation_tokens_total"])
    )


def train_adapter(model_dir: Path, out_dir: Path) -> dict[str, Any]:
    """The project's trainer, as the worker launches it (a subprocess with an arguments
    file): a few LoRA steps on the two shortest DISC-Med-SFT rows, every linear layer
    (W_pack included)."""
    rows = sorted(SFT_EXAMPLES.read_text(encoding="utf-8").splitlines(), key=len)[:2]
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    data = out_dir.parent / "train.jsonl"
    data.write_text("".join(r + "\n" for r in rows), encoding="utf-8")
    progress = out_dir.parent / "progress.jsonl"
    args: dict[str, Any] = {
        "model_name_or_path": str(model_dir),
        "train_file": str(data),
        "output_dir": str(out_dir),
        "profile": "disc-medllm",
        "max_seq_length": 256,
        "per_device_train_batch_size": 2,
        "max_steps": 3,
        "learning_rate": 1e-2,
        "logging_steps": 1,
        "save_strategy": "no",
        "report_to": [],
        "disable_tqdm": True,
        "dataloader_pin_memory": False,
        "seed": 0,
        "lora": True,
        "lora_r": 8,
        "lora_alpha": 16,
        "lora_dropout": 0.0,
        "lora_target_modules": "all-linear",
        "progress_file": str(progress),
    }
    args_file = out_dir.parent / "train_args.json"
    args_file.write_text(json.dumps(args))
    done = subprocess.run(
        [sys.executable, "-m", "trainer.train", "--train_args_file", str(args_file)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-4000:]
    lines = [json.loads(line) for line in progress.read_text().splitlines()]
    summary: dict[str, Any] = lines[-1]
    return summary


def test_trained_adapter_is_loaded_into_vllm_and_serves(
    gateway: Gateway, guest: Patient, vllm_server: VllmServer, tmp_path: Path
) -> None:
    summary = train_adapter(vllm_server.model_dir, tmp_path / "job" / "output")
    assert summary["event"] == "summary" and summary["saved"] == "adapter", summary
    adapter_config = json.loads((tmp_path / "job" / "output" / "adapter_config.json").read_text())
    targets = {t.rsplit(".", 1)[-1] for t in adapter_config["target_modules"]}
    assert targets == {"W_pack", "o_proj", "gate_proj", "up_proj", "down_proj"}, targets
    model = publish(
        gateway.settings.models_dir,
        tmp_path / "job" / "output",
        base=vllm_server.served_model_name,
        suffix="vllm",
        job_id="ftjob-gateway-on-vllm",
        kind="adapter",
        profile=gateway.settings.profile,
    )
    name = model.name
    assert name == "ft:tiny-baichuan-13b:vllm:ftjob-gateway-on-vllm"
    admin = {"Authorization": f"Bearer {make_key(gateway.database_url, 'admin')}"}
    integrator = {"Authorization": f"Bearer {make_key(gateway.database_url, 'integrator')}"}
    vllm_models = f"{vllm_server.base_url}/v1/models"
    assert name not in [m["id"] for m in httpx.get(vllm_models, timeout=30).json()["data"]]
    default = vllm_server.served_model_name
    try:
        with httpx.Client(base_url=gateway.url, timeout=TIMEOUT_S) as client:
            # The gateway loads the adapter into vLLM, runs the canary on it, then switches.
            r = client.put("/api/admin/serving", json={"model": name}, headers=admin)
            assert r.status_code == 200, r.text
            assert r.json()["model"] == name
            loaded = httpx.get(vllm_models, timeout=30).json()["data"]
            assert name in [m["id"] for m in loaded], loaded
            listed = client.get("/v1/models", headers=admin).json()["data"]
            assert [m["id"] for m in listed if m["serving"]] == [name]
            ready = client.get("/readyz").json()
            assert ready["serving"] == name and ready["checks"]["engine_tokenization"] == "ok"

            # A model name the registry does not list: whichever model serves patients answers.
            chat = {
                "model": "disc-medllm",
                "messages": [{"role": "user", "content": "头痛三天了，怎么办？"}],
                "temperature": 0,
                "max_tokens": 16,
            }
            r = client.post("/v1/chat/completions", json=chat, headers=integrator)
            assert r.status_code == 200, r.text
            assert r.json()["model"] == name
            assert r.json()["usage"]["completion_tokens"] > 0

            # Patients get the fine-tune too (a streamed turn through the same path).
            sid = guest.post("/api/sessions", json={}).json()["id"]
            events = streamed_turn(guest, sid, "需要吃药吗？", max_new_tokens=16)
            assert events[-1][0] == "done", events[-3:]
            assert events[-1][1]["message"]["status"] == "complete"
            assert events[-1][1]["message"]["content"]

            back = client.put("/api/admin/serving", json={"model": default}, headers=admin)
            assert back.status_code == 200, back.text
    finally:
        # The shared server keeps no adapter (--max-loras 1; other tests load their own).
        unloaded = httpx.post(
            f"{vllm_server.base_url}/v1/unload_lora_adapter",
            json={"lora_name": name},
            timeout=60,
        )
    assert unloaded.status_code == 200, unloaded.text
    assert name not in [m["id"] for m in httpx.get(vllm_models, timeout=30).json()["data"]]
