"""`medchat engine probe`: the comparison math on plain lists, the engines' answer shapes,
the record that `medchat doctor` and `/readyz` report, and whole runs of the command against
servers on this machine (a stand-in engine computing real logprobs with transformers, the
repo's engine emulator, a real `transformers serve`). The probe against a real vLLM is in
tests/engines/test_probe.py."""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from click.testing import CliRunner
from fastapi import FastAPI

from services.cli.doctor import check_probe
from services.cli.main import cli
from services.cli.probe import (
    ProbeUnsupported,
    PromptComparison,
    TokenScores,
    compare_prompt,
    openai_requests,
    parse_echo_logprobs,
    parse_tgi_prefill,
    parse_vllm_prompt_logprobs,
    summarize,
)
from services.core.probe_record import NEVER_RUN, describe, read_record, write_record
from tests.support.engine_emulator import run_emulator
from tests.support.servers import serve
from tests.support.servers import transformers_serve as run_transformers_serve
from tests.support.tiny_baichuan import baichuan_as_llama, build_tiny_baichuan
from tests.support.tiny_model import build_tiny_marker_model

# --- the comparison ------------------------------------------------------------------------

IDS = [1, 195, 40, 41, 196]


def scores(logprobs: list[float], top1: list[int | None] | None = None) -> TokenScores:
    return TokenScores(IDS, logprobs, top1)


def test_identical_scores_pass_with_zero_difference() -> None:
    native = scores([-1.0, -2.0, -3.0, -0.5], [40, 41, 7, 196])
    c = compare_prompt("p", native, native)
    assert (c.tokens, c.max_abs, c.mean_abs, c.top1_agree, c.top1_compared) == (4, 0, 0, 4, 4)
    s = summarize([c], 1e-3)
    assert (s.verdict, s.max_abs, s.top1_agreement, s.reasons) == ("pass", 0.0, 1.0, [])


def test_max_mean_and_worst_position() -> None:
    native = scores([-1.0, -2.0, -3.0, -0.5])
    engine = scores([-1.0, -2.0005, -3.0, -0.4])
    c = compare_prompt("p", native, engine)
    assert c.max_abs == pytest.approx(0.1)
    assert c.mean_abs == pytest.approx((0.0005 + 0.1) / 4)
    # index 3 of the logprobs scores token 4 of the prompt (the first token has none)
    assert c.worst_position == 4
    assert c.top1_compared == 0  # no top-1 from the engine: nothing compared


def test_summary_pools_tokens_and_fails_past_the_tolerance() -> None:
    a = PromptComparison("a", 10, 1e-4, 1e-5, 3, 0, 0, True)
    b = PromptComparison("b", 30, 2e-3, 1e-4, 7, 0, 0, True)
    s = summarize([a, b], 1e-3)
    assert s.verdict == "fail" and s.max_abs == 2e-3 and s.tokens == 40
    assert s.mean_abs == pytest.approx((10 * 1e-5 + 30 * 1e-4) / 40)
    assert s.reasons == ["max |Δlogprob| 0.002 > tolerance 0.001 (b, token 7)"]
    assert summarize([a, b], 1e-2).verdict == "pass"


def test_a_non_finite_engine_value_fails() -> None:
    native = scores([-1.0, -2.0, -3.0, -0.5])
    for bad in (math.nan, -math.inf):
        c = compare_prompt("p", native, scores([-1.0, bad, -3.0, -0.5]))
        assert c.max_abs == math.inf and summarize([c], 1e9).verdict == "fail"


def test_other_ids_fail_and_say_where() -> None:
    native = scores([-1.0, -2.0, -3.0, -0.5])
    engine = TokenScores([1, 1, 195, 40, 41, 196], [-1.0] * 5)  # a BOS added twice
    c = compare_prompt("p", native, engine)
    assert not c.ids_match and c.max_abs is None
    assert "first difference at position 1" in c.detail
    s = summarize([c], 1e-3)
    assert s.verdict == "fail" and s.max_abs is None and s.reasons[0].startswith("p: ")


def test_top1_agreement_and_its_threshold() -> None:
    native = scores([-1.0, -2.0, -3.0, -0.5], [40, 41, 7, 196])
    engine = scores([-1.0, -2.0, -3.0, -0.5], [40, 9, 7, None])
    c = compare_prompt("p", native, engine)
    assert (c.top1_agree, c.top1_compared) == (2, 3)
    assert summarize([c], 1e-3).verdict == "pass"  # reported, not judged, unless asked
    s = summarize([c], 1e-3, min_top1=0.9)
    assert s.verdict == "fail" and "top-1 agreement 0.667 < 0.9" in s.reasons
    no_top = compare_prompt("p", native, scores([-1.0, -2.0, -3.0, -0.5]))
    assert summarize([no_top], 1e-3).top1_agreement is None
    assert summarize([no_top], 1e-3, min_top1=0.5).verdict == "fail"


# --- the engines' answers --------------------------------------------------------------------


def vllm_choice(with_ids: bool) -> dict[str, Any]:
    entries: list[Any] = [None]
    for token, lp in zip(IDS[1:], [-1.0, -2.0, -3.0, -0.5], strict=True):
        entry = {str(token): {"logprob": lp, "rank": 2, "decoded_token": "x"}}
        entry["5"] = {"logprob": -0.1, "rank": 1, "decoded_token": "y"}
        entries.append(entry)
    entries[1] = {"195": {"logprob": -1.0, "rank": 1, "decoded_token": "<reserved_102>"}}
    choice: dict[str, Any] = {"text": "", "prompt_logprobs": entries}
    if with_ids:
        choice["prompt_token_ids"] = IDS
    return choice


def test_vllm_prompt_logprobs_with_and_without_prompt_ids() -> None:
    for with_ids in (True, False):
        got = parse_vllm_prompt_logprobs(vllm_choice(with_ids), IDS)
        assert got.ids == IDS
        assert got.logprobs == [-1.0, -2.0, -3.0, -0.5]
        assert got.top1 == [195, 5, 5, 5]


def test_vllm_prompt_logprobs_of_another_tokenization_do_not_compare() -> None:
    other = [1, 195, 40, 42, 196]  # the engine saw 42 where the format has 41
    got = parse_vllm_prompt_logprobs(vllm_choice(False), other)
    assert got.ids != other
    assert not compare_prompt("p", TokenScores(other, [0.0] * 4), got).ids_match


def test_echo_logprobs_with_token_ids() -> None:
    body = {
        "choices": [
            {
                "logprobs": {
                    "tokens": [f"token_id:{i}" for i in [*IDS, 9]],
                    "token_logprobs": [None, -1.0, -2.0, -3.0, -0.5, -0.2],
                    "top_logprobs": [None] + [{"token_id:5": -0.1}] * 5,
                }
            }
        ],
        "usage": {"prompt_tokens": 5},
    }
    got = parse_echo_logprobs(body, IDS)
    assert (got.ids, got.logprobs, got.top1) == (IDS, [-1.0, -2.0, -3.0, -0.5], [5, 5, 5, 5])


def test_tgi_prefill_and_its_absence() -> None:
    prefill = [{"id": 1, "text": "<s>", "logprob": None}] + [
        {"id": i, "text": "x", "logprob": -1.5} for i in IDS[1:]
    ]
    got = parse_tgi_prefill({"generated_text": "", "details": {"prefill": prefill}})
    assert (got.ids, got.logprobs, got.top1) == (IDS, [-1.5] * 4, None)
    with pytest.raises(ProbeUnsupported):
        parse_tgi_prefill({"generated_text": "", "details": {"prefill": [], "tokens": []}})


def test_openai_requests_try_vllm_prompt_logprobs_first() -> None:
    forms = openai_requests("m", "text")
    assert next(name for name, _ in forms) == "prompt_logprobs"
    assert all(body["max_tokens"] == 1 and body["prompt"] == "text" for _, body in forms)
    assert forms[0][1]["prompt_logprobs"] == 1


# --- the record ------------------------------------------------------------------------------


def test_record_round_trip_and_doctor(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "probe.json"
    assert read_record(path) is None and describe(None) == NEVER_RUN
    (check,) = check_probe(path)
    assert check.status == "warn" and NEVER_RUN in check.detail
    record = {
        "verdict": "pass",
        "at": "2026-12-05T01:00:00Z",
        "max_abs_logprob_diff": 1.2e-5,
        "tolerance": 1e-3,
    }
    write_record(path, record)
    assert read_record(path) == record
    assert (
        describe(record) == "pass at 2026-12-05T01:00:00Z (max |Δlogprob| 1.2e-05, tolerance 1e-03)"
    )
    assert check_probe(path)[0].status == "ok"
    write_record(path, {**record, "verdict": "fail"})
    assert check_probe(path)[0].status == "fail"
    path.write_text("{not json")
    assert read_record(path)["verdict"] == "unreadable"  # type: ignore[index]
    assert check_probe(path)[0].status == "warn"


# --- whole runs against servers --------------------------------------------------------------


@pytest.fixture(scope="module")
def models(hf_marker_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Tiny Baichuan-13B (ALiBi) and -7B (RoPE) checkpoints and each one as a RoPE Llama."""
    import torch

    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("probe_models")
    out = {}
    for scheme in ("alibi", "rope"):
        out[scheme] = build_tiny_baichuan(root / scheme, hf_marker_dir, position_embedding=scheme)
        out[f"{scheme}-as-llama"] = baichuan_as_llama(out[scheme], root / f"{scheme}_llama")
    return out


def stand_in_engine(model_dir: Path) -> FastAPI:
    """An engine that computes real prompt logprobs with transformers (the model of its own
    `model_dir`) and answers as vLLM (`prompt_logprobs`, `/v1/completions`) and TGI
    (`decoder_input_details`, `/generate`) do: the probe's whole path, without vLLM."""
    import torch

    from services.cli.probe import load_native
    from services.core.chatformat import load_tokenizer

    model = load_native(model_dir, "float32", "cpu")
    tokenizer = load_tokenizer(model_dir)

    def logprobs(text: str) -> tuple[list[int], torch.Tensor]:
        ids = tokenizer.encode_text_form(text)
        with torch.no_grad():
            logits = model(input_ids=torch.tensor([ids])).logits[0, :-1]
        return ids, torch.log_softmax(logits.float(), dim=-1)

    app = FastAPI()

    @app.get("/v1/models")
    def models() -> dict[str, Any]:
        return {"object": "list", "data": [{"id": "tiny", "object": "model"}]}

    @app.post("/v1/completions")
    def completions(body: dict[str, Any]) -> dict[str, Any]:
        ids, logp = logprobs(body["prompt"])
        entries: list[Any] = [None]
        for t, row in enumerate(logp):
            token, top = ids[t + 1], int(row.argmax())
            rank = 1 + int((row > row[token]).sum())
            entries.append(
                {
                    str(token): {"logprob": float(row[token]), "rank": rank},
                    str(top): {"logprob": float(row[top]), "rank": 1},
                }
            )
        choice = {"index": 0, "text": "", "prompt_logprobs": entries, "prompt_token_ids": ids}
        return {"choices": [choice], "usage": {"prompt_tokens": len(ids)}}

    @app.post("/generate")
    def generate(body: dict[str, Any]) -> dict[str, Any]:
        ids, logp = logprobs(body["inputs"])
        prefill = [{"id": ids[0], "text": "", "logprob": None}] + [
            {"id": ids[t + 1], "text": "", "logprob": float(row[ids[t + 1]])}
            for t, row in enumerate(logp)
        ]
        return {"generated_text": "", "details": {"prefill": prefill, "tokens": []}}

    return app


@pytest.fixture(scope="module")
def served(models: dict[str, Path]) -> Iterator[dict[str, str]]:
    """The stand-in engine on each checkpoint."""
    from contextlib import ExitStack

    with ExitStack() as stack:
        yield {name: stack.enter_context(serve(stand_in_engine(d))) for name, d in models.items()}


def probe(*args: str) -> tuple[int, dict[str, Any] | str]:
    result = CliRunner().invoke(cli, ["engine", "probe", *args], catch_exceptions=False)
    try:
        return result.exit_code, json.loads(result.stdout)
    except ValueError:
        return result.exit_code, result.output


def test_same_weights_pass_through_either_protocol(
    models: dict[str, Path], served: dict[str, str], tmp_path: Path
) -> None:
    record = tmp_path / "probe.json"
    for protocol in ("openai", "tgi"):
        code, out = probe(
            *("--engine-url", served["alibi"], "--protocol", protocol),
            *("--model", str(models["alibi"]), "--record", str(record), "--json"),
        )
        assert code == 0, out
        assert isinstance(out, dict) and out["verdict"] == "pass"
        assert out["max_abs_logprob_diff"] < 1e-5 and out["tokens"] > 250
        assert out["native"]["model_type"] == "baichuan"
        assert [p["name"] for p in out["prompts"]] == ["headache", "chest pain", "child fever"]
    assert isinstance(out, dict) and out["top1_agreement"] is None  # TGI: no prefill top-k
    assert read_record(record) == out


def test_the_weights_as_a_rope_llama_fail_for_alibi_and_pass_for_rope(
    models: dict[str, Path], served: dict[str, str], tmp_path: Path
) -> None:
    """The negative control: transformers' Llama on the 13B's weights is the wrong model. The
    same conversion of the 7B (RoPE) is the right one: an independent implementation that
    agrees."""
    code, out = probe(
        *("--engine-url", served["alibi-as-llama"], "--protocol", "openai"),
        *("--model", str(models["alibi"]), "--record", str(tmp_path / "r.json"), "--json"),
    )
    assert code == 1 and isinstance(out, dict) and out["verdict"] == "fail"
    assert out["max_abs_logprob_diff"] > 0.1 and out["top1_agreement"] < 0.5
    assert "> tolerance 0.001" in out["detail"]
    code, out = probe(
        *("--engine-url", served["rope-as-llama"], "--protocol", "openai"),
        *("--model", str(models["rope"]), "--no-record", "--json"),
    )
    assert code == 0 and isinstance(out, dict) and out["top1_agreement"] == 1.0


def test_the_table_reads_plainly(models: dict[str, Path], served: dict[str, str]) -> None:
    code, out = probe(
        *("--engine-url", served["alibi-as-llama"], "--protocol", "openai"),
        *("--model", str(models["alibi"]), "--no-record"),
    )
    assert code == 1 and isinstance(out, str)
    assert "verdict: FAIL" in out and "chest pain" in out and "top-1 agreement" in out


def test_the_emulator_prefill_is_caught(models: dict[str, Path], hf_marker_dir: Path) -> None:
    """The repo's emulator answers every prefill token with logprob -1.0: not the model."""
    with run_emulator(hf_marker_dir) as emulator:
        code, out = probe(
            *("--engine-url", emulator.url, "--protocol", "tgi"),
            *("--model", str(models["alibi"]), "--no-record", "--json"),
        )
    assert code == 1 and isinstance(out, dict) and out["verdict"] == "fail"


def test_an_unreachable_engine_gives_no_verdict(models: dict[str, Path]) -> None:
    from tests.support.servers import free_port

    code, out = probe(
        *("--engine-url", f"http://127.0.0.1:{free_port()}", "--protocol", "tgi"),
        *("--model", str(models["alibi"]), "--no-record"),
    )
    assert code == 2 and "no verdict" in str(out) and "cannot reach the engine" in str(out)


def test_transformers_serve_is_reported_unsupported(hf_marker_dir: Path, tmp_path: Path) -> None:
    """`transformers serve` refuses vLLM's prompt_logprobs and ignores echo/logprobs: the
    probe says so (exit 2, verdict "unsupported" recorded), it does not crash."""
    pytest.importorskip("torch")
    model = build_tiny_marker_model(tmp_path / "model", hf_marker_dir)
    record = tmp_path / "probe.json"
    with run_transformers_serve(model, tmp_path / "serve.log", 180) as (url, _):
        code, out = probe(
            *("--engine-url", url, "--protocol", "openai", "--model", str(model)),
            *("--record", str(record), "--json"),
        )
    assert code == 2 and isinstance(out, dict) and out["verdict"] == "unsupported"
    assert "gives no prompt logprobs" in out["detail"] and out["prompts"] == []
    assert describe(read_record(record)).startswith("unsupported at ")


def test_readyz_reports_the_last_probe(sp_dir: Path, tmp_path: Path) -> None:
    from services.gateway.app import create_app
    from services.gateway.config import GatewaySettings
    from tests.support.servers import temporary_database

    record = tmp_path / "probe.json"
    with temporary_database() as database_url, run_emulator(sp_dir) as emulator:
        settings = GatewaySettings(
            environment="test",
            database_url=database_url,
            redis_url="redis://127.0.0.1:6379/15",
            engine_url=emulator.url,
            engine_protocol="tgi",
            tokenizer_path=sp_dir,
            files_dir=tmp_path / "files",
            models_dir=tmp_path / "models",
            probe_record=record,
        )
        with serve(create_app(settings)) as url:
            assert httpx.get(f"{url}/readyz").json()["probe"] == NEVER_RUN
            write_record(
                record,
                {"verdict": "fail", "at": "2026-12-05T01:00:00Z", "max_abs_logprob_diff": 6.6,
                 "tolerance": 1e-3},
            )  # fmt: skip
            ready = httpx.get(f"{url}/readyz").json()
            assert ready["probe"].startswith("fail at 2026-12-05T01:00:00Z (max |Δlogprob| 6.6")
