"""`medchat engine probe`: does the inference engine compute the model it claims to serve?

An engine can load DISC-MedLLM's weights without error and still run another architecture
(TGI sends `model_type: baichuan` to its rotary-position Llama path; Baichuan-13B uses
ALiBi). Its answers then read as plausible text and are wrong. The probe renders a few fixed
multi-turn prompts with the format module (exactly as the gateway does), asks the engine for
the log-probability of every prompt token, computes the same on the same weights with the
project's reference forward pass (transformers; Baichuan through `trainer.baichuan`, never
remote code), and compares, position by position:

- max and mean |Δlogprob| over all prompt tokens,
- top-1 agreement: the native argmax at a position equals the engine's rank-1 token (only
  where the engine reports its top-k: vLLM does, TGI's prefill does not),
- the verdict: pass when the engine saw exactly the format module's ids and
  max |Δlogprob| <= tolerance (and top-1 agreement >= --min-top1 when asked).

Default tolerance 1e-3, for an engine computing in float32: two correct float32
implementations of the same weights differ only by summation order, ~1e-5 measured for vLLM
on CPU against transformers (DESIGN.md: Llama 9.5e-6, BLOOM/ALiBi 1.3e-5), growing with depth
and width; 1e-3 leaves two orders of magnitude for that. A wrong architecture (RoPE for
ALiBi, a mis-split W_pack, another norm) moves logprobs by tenths or more from the second
token on. An engine serving bfloat16/float16 differs from a float32 reference by its own
rounding (of order 1e-2 to 1e-1): give --tolerance for it and read top-1 agreement.

Exit status: 0 pass, 1 fail, 2 no verdict (engine unreachable, prompt logprobs unsupported,
bad input). The result is written as JSON to the probe record (MEDCHAT_PROBE_RECORD, or
probe.json beside the files directory), which `medchat doctor` and `/readyz` report.

The module keeps three things apart: engine requests and response parsing (`EngineScores`
from a JSON body), the native forward (`native_scores`), and the comparison math
(`compare_prompt`, `summarize`), which takes plain lists and is unit-tested alone.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import click

from services.core.chatformat import Turn

if TYPE_CHECKING:
    from services.core.chatformat import ChatFormat

Protocol = Literal["openai", "tgi"]
Verdict = Literal["pass", "fail", "unsupported"]

DEFAULT_TOLERANCE = 1e-3  # float32 engine against the float32 reference: see the docstring
EXIT = {"pass": 0, "fail": 1, "unsupported": 2}

# Fixed dialogues, each ending with the patient's turn (the prompt opens the answer). Short
# enough for a test engine started with --max-model-len 256; multi-turn so that eos, the
# markers and positions past the first round are all scored.
PROBE_DIALOGUES: tuple[tuple[str, tuple[Turn, ...]], ...] = (
    (
        "headache",
        (
            Turn(role="user", content="我最近总是头痛，晚上也睡不好，需要做什么检查吗？"),
            Turn(role="assistant", content="头痛持续多久了？有没有发热、呕吐或者视物模糊？"),
            Turn(role="user", content="大概两个星期，没有发热，有时候会恶心。"),
        ),
    ),
    (
        "chest pain",
        (
            Turn(
                role="user",
                content="The patient reports chest pain and shortness of breath since"
                " this morning.",
            ),
            Turn(role="assistant", content="Is the pain worse when breathing in or on exertion?"),
            Turn(role="user", content="On exertion. Headache, fever 38.5 °C, cough for 3 days."),
        ),
    ),
    (
        "child fever",
        (
            Turn(role="user", content="孩子三岁，发烧38.5度，咳嗽三天了，要去医院吗？"),
            Turn(role="assistant", content="精神状态怎么样？吃饭和喝水正常吗？"),
            Turn(role="user", content="精神还可以，就是吃得少。"),
            Turn(role="assistant", content="可以先物理降温，多喝水，注意观察。"),
            Turn(role="user", content="晚上又烧到39度了，怎么办？"),
        ),
    ),
)


class ProbeError(Exception):
    """The probe could not reach a verdict (engine down, bad answer, bad input)."""


class ProbeUnsupported(ProbeError):
    """The engine answers, but gives no prompt logprobs."""


# --- the comparison (pure) ---------------------------------------------------------------


@dataclass(frozen=True)
class TokenScores:
    """One prompt as a model scored it. `ids` are the prompt's tokens; `logprobs[i]` is
    log p(ids[i + 1] | ids[: i + 1]) (the first token has none); `top1[i]`, where known, is
    the id the model ranked first at that position."""

    ids: list[int]
    logprobs: list[float]
    top1: list[int | None] | None = None


@dataclass(frozen=True)
class PromptComparison:
    name: str
    tokens: int  # positions compared
    max_abs: float | None  # None when the ids differ (nothing comparable)
    mean_abs: float | None
    worst_position: int | None  # index into the prompt's ids
    top1_agree: int
    top1_compared: int  # 0: the engine reports no top-1
    ids_match: bool
    detail: str = ""


def compare_prompt(name: str, native: TokenScores, engine: TokenScores) -> PromptComparison:
    """Position-by-position comparison of one prompt. A non-finite engine value (NaN, -inf)
    counts as an infinite difference."""
    if engine.ids != native.ids:
        first = next(
            (i for i, (a, b) in enumerate(zip(engine.ids, native.ids, strict=False)) if a != b),
            min(len(engine.ids), len(native.ids)),
        )
        return PromptComparison(
            name,
            0,
            None,
            None,
            None,
            0,
            0,
            False,
            f"the engine saw {len(engine.ids)} tokens, the format module rendered"
            f" {len(native.ids)}; first difference at position {first}: engine"
            f" {engine.ids[first : first + 4]}, format {native.ids[first : first + 4]}",
        )
    if len(engine.logprobs) != len(native.logprobs):
        raise ProbeError(
            f"{name}: {len(engine.logprobs)} engine logprobs for {len(native.logprobs)} positions"
        )
    diffs = [
        abs(e - n) if math.isfinite(e) and math.isfinite(n) else math.inf
        for e, n in zip(engine.logprobs, native.logprobs, strict=True)
    ]
    worst = max(range(len(diffs)), key=diffs.__getitem__) if diffs else None
    agree = compared = 0
    if engine.top1 is not None and native.top1 is not None:
        for e_top, n_top in zip(engine.top1, native.top1, strict=True):
            if e_top is not None and n_top is not None:
                compared += 1
                agree += e_top == n_top
    return PromptComparison(
        name,
        len(diffs),
        max(diffs) if diffs else 0.0,
        sum(diffs) / len(diffs) if diffs else 0.0,
        None if worst is None else worst + 1,
        agree,
        compared,
        True,
    )


@dataclass(frozen=True)
class Summary:
    verdict: Verdict
    tolerance: float
    max_abs: float | None
    mean_abs: float | None  # over every compared token of every prompt
    tokens: int
    top1_agreement: float | None  # None: no top-1 from the engine
    top1_compared: int
    reasons: list[str] = field(default_factory=list)


def summarize(
    comparisons: Sequence[PromptComparison], tolerance: float, min_top1: float | None = None
) -> Summary:
    """The verdict over all prompts: fail on any tokenization difference, any |Δlogprob|
    above `tolerance` (or not finite), or top-1 agreement below `min_top1` when given."""
    reasons = [f"{c.name}: {c.detail}" for c in comparisons if not c.ids_match]
    matched = [c for c in comparisons if c.ids_match and c.tokens]
    tokens = sum(c.tokens for c in matched)
    max_abs = max((c.max_abs for c in matched if c.max_abs is not None), default=None)
    mean_abs = sum((c.mean_abs or 0.0) * c.tokens for c in matched) / tokens if tokens else None
    if max_abs is not None and not max_abs <= tolerance:
        worst = max(matched, key=lambda c: c.max_abs or 0.0)
        reasons.append(
            f"max |Δlogprob| {max_abs:.3g} > tolerance {tolerance:g}"
            f" ({worst.name}, token {worst.worst_position})"
        )
    compared = sum(c.top1_compared for c in comparisons)
    agreement = sum(c.top1_agree for c in comparisons) / compared if compared else None
    if min_top1 is not None:
        if agreement is None:
            reasons.append("--min-top1 given, but the engine reports no top-1 tokens")
        elif agreement < min_top1:
            reasons.append(f"top-1 agreement {agreement:.3f} < {min_top1:g}")
    if not reasons and not tokens:
        reasons.append("no prompt token was compared")
    return Summary(
        "fail" if reasons else "pass",
        tolerance,
        max_abs,
        mean_abs,
        tokens,
        agreement,
        compared,
        reasons,
    )


# --- engine requests and answers ---------------------------------------------------------


def _ranked_first(entry: dict[str, Any]) -> int | None:
    """vLLM's per-position dict {"id": {"logprob", "rank", ...}}: the id of rank 1."""
    for key, value in entry.items():
        if isinstance(value, dict) and value.get("rank") == 1:
            return int(key)
    return None


def parse_vllm_prompt_logprobs(choice: dict[str, Any], expected: Sequence[int]) -> TokenScores:
    """vLLM's `prompt_logprobs` (its extension to /v1/completions): one entry per prompt
    token, None first, then {"<id>": {"logprob", "rank", "decoded_token"}} holding the
    prompt's own token and the top-k. The ids come from `prompt_token_ids` where the engine
    returns them; otherwise a position whose dict lacks the expected id shows a different
    tokenization."""
    entries = choice["prompt_logprobs"]
    ids = choice.get("prompt_token_ids")
    if not isinstance(ids, list):
        fits = len(entries) == len(expected) and all(
            isinstance(entry, dict) and str(token) in entry
            for token, entry in zip(expected[1:], entries[1:], strict=True)
        )
        # Unknown ids that are not the expected ones: the comparison reports the difference.
        ids = list(expected) if fits else [-1] * len(entries)
    ids = [int(i) for i in ids]
    if len(ids) != len(entries):
        raise ProbeError(f"{len(entries)} prompt logprobs for {len(ids)} prompt tokens")
    logprobs: list[float] = []
    top1: list[int | None] = []
    for token, entry in zip(ids[1:], entries[1:], strict=True):
        if not isinstance(entry, dict) or str(token) not in entry:
            return TokenScores(ids, [], None)  # ids differ: the comparison says where
        logprobs.append(float(entry[str(token)]["logprob"]))
        top1.append(_ranked_first(entry))
    return TokenScores(ids, logprobs, top1)


def _echo_id(token: str) -> int | None:
    return int(token.removeprefix("token_id:")) if token.startswith("token_id:") else None


def parse_echo_logprobs(body: dict[str, Any], expected: Sequence[int]) -> TokenScores:
    """OpenAI legacy `echo` + `logprobs`: `logprobs.tokens` / `token_logprobs` /
    `top_logprobs` cover the prompt and then the generated token. Tokens are ids where the
    engine writes them as "token_id:N" (vLLM's `return_tokens_as_token_ids`); as plain text
    pieces the ids cannot be checked, only the count."""
    choice = body["choices"][0]
    lp = choice["logprobs"]
    usage = body.get("usage") or {}
    n = int(usage.get("prompt_tokens") or len(lp["tokens"]) - 1)
    tokens = lp["tokens"][:n]
    parsed = [_echo_id(str(t)) for t in tokens]
    if all(i is not None for i in parsed):
        ids = [int(i) for i in parsed if i is not None]
    elif n == len(expected):
        ids = list(expected)  # text pieces: the count agrees, the ids are taken on trust
    else:
        ids = [-1] * n
    values = lp["token_logprobs"][1:n]
    top = lp.get("top_logprobs")
    top1: list[int | None] | None = None
    if isinstance(top, list) and all(_echo_id(str(k)) is not None for t in top[1:n] for k in t):
        top1 = [_echo_id(max(t.items(), key=lambda kv: kv[1])[0]) if t else None for t in top[1:n]]
    return TokenScores(ids, [float(v) for v in values], top1)


def parse_tgi_prefill(body: dict[str, Any]) -> TokenScores:
    """TGI `/generate` with `decoder_input_details`: `details.prefill` = [{id, text, logprob}]
    per prompt token, logprob null for the first. TGI gives no top-k for the prompt."""
    details = body.get("details") or {}
    prefill = details.get("prefill") or []
    if not prefill:
        raise ProbeUnsupported(
            "the engine's /generate answered without details.prefill (decoder_input_details)"
        )
    ids = [int(t["id"]) for t in prefill]
    values = [t.get("logprob") for t in prefill[1:]]
    if any(v is None for v in values):
        raise ProbeUnsupported("the engine's prefill tokens carry no logprobs")
    return TokenScores(ids, [float(v) for v in values], None)


class Engine:
    """The engine under test: one request per prompt, answered as `TokenScores`."""

    def __init__(
        self, url: str, protocol: Protocol, model: str | None, timeout_s: float = 300.0
    ) -> None:
        import httpx

        self.url = url.rstrip("/")
        self.protocol = protocol
        self.client = httpx.Client(base_url=self.url, timeout=timeout_s)
        self.model = model
        self.method = ""  # which request gave the logprobs, for the report

    def close(self) -> None:
        self.client.close()

    def _post(self, path: str, body: dict[str, Any]) -> tuple[int, Any]:
        import httpx

        try:
            response = self.client.post(path, json=body)
        except httpx.HTTPError as exc:
            raise ProbeError(f"cannot reach the engine at {self.url}{path}: {exc}") from exc
        try:
            payload = response.json()
        except ValueError:
            payload = response.text
        return response.status_code, payload

    def resolve_model(self) -> str | None:
        """The OpenAI model name: the one given, else the first the engine lists."""
        if self.protocol != "openai" or self.model:
            return self.model
        import httpx

        try:
            listed = self.client.get("/v1/models").json().get("data") or []
        except (httpx.HTTPError, ValueError, AttributeError) as exc:
            raise ProbeError(f"cannot list the engine's models at {self.url}: {exc}") from exc
        if not listed:
            raise ProbeError(f"{self.url}/v1/models lists no model: give --engine-model")
        self.model = str(listed[0]["id"])
        return self.model

    def score(self, text: str, expected: Sequence[int]) -> TokenScores:
        if self.protocol == "tgi":
            return self._score_tgi(text)
        return self._score_openai(text, expected)

    def _score_tgi(self, text: str) -> TokenScores:
        status, body = self._post("/generate", tgi_request(text))
        if status != 200 or not isinstance(body, dict):
            raise ProbeError(f"{self.url}/generate answered {status}: {str(body)[:300]}")
        self.method = "tgi /generate decoder_input_details"
        return parse_tgi_prefill(body)

    def _score_openai(self, text: str, expected: Sequence[int]) -> TokenScores:
        attempts: list[str] = []
        for method, body in openai_requests(str(self.model), text):
            status, answer = self._post("/v1/completions", body)
            if status in (400, 422) or (status == 200 and not isinstance(answer, dict)):
                attempts.append(f"{method}: {status} {str(answer)[:200]}")
                continue  # the engine refuses this form: try the next
            if status != 200:
                raise ProbeError(f"{self.url}/v1/completions answered {status}: {answer!s:.300}")
            choices = answer.get("choices") or [{}]
            if method == "prompt_logprobs" and choices[0].get("prompt_logprobs"):
                self.method = "openai /v1/completions prompt_logprobs"
                return parse_vllm_prompt_logprobs(choices[0], expected)
            logprobs = choices[0].get("logprobs")
            if (
                method.startswith("echo")
                and isinstance(logprobs, dict)
                and logprobs.get("token_logprobs")
            ):
                self.method = f"openai /v1/completions {method}"
                return parse_echo_logprobs(answer, expected)
            attempts.append(f"{method}: answered without prompt logprobs")
        raise ProbeUnsupported(
            f"the engine at {self.url} gives no prompt logprobs on /v1/completions ("
            + "; ".join(attempts)
            + "). vLLM gives them; `transformers serve` ignores echo/logprobs"
        )


def tgi_request(text: str) -> dict[str, Any]:
    return {
        "inputs": text,
        "parameters": {
            "max_new_tokens": 1,  # TGI validation wants at least one; it is not scored
            "do_sample": False,
            "details": True,
            "decoder_input_details": True,
        },
    }


def openai_requests(model: str, text: str) -> list[tuple[str, dict[str, Any]]]:
    """The forms tried in turn: vLLM's `prompt_logprobs` (with the rank-1 token, and the
    prompt's ids with `return_token_ids`), then OpenAI's legacy `echo` + `logprobs` with ids
    (vLLM's `return_tokens_as_token_ids`), then plain `echo` + `logprobs`. One generated
    token each (not every engine takes `max_tokens: 0`); it is never scored."""
    base = {"model": model, "prompt": text, "max_tokens": 1, "temperature": 0.0}
    return [
        ("prompt_logprobs", {**base, "prompt_logprobs": 1, "return_token_ids": True}),
        (
            "echo+logprobs (token ids)",
            {**base, "echo": True, "logprobs": 1, "return_tokens_as_token_ids": True},
        ),
        ("echo+logprobs", {**base, "echo": True, "logprobs": 1}),
    ]


# --- the native forward ------------------------------------------------------------------


def load_native(model_dir: Path, dtype: str, device: str) -> Any:
    """The reference model on `device`: transformers' own implementation of the checkpoint's
    model type, Baichuan through trainer.baichuan; remote code never runs."""
    try:
        import torch
        from transformers import AutoModelForCausalLM
    except ImportError as exc:
        raise ProbeError(
            f"the native forward needs torch and transformers ({exc}): pip install -e '.[train]'"
        ) from exc
    from transformers.utils import logging as hf_logging

    from trainer.model import DTYPES, NATIVE_MODEL_TYPES, config_json

    hf_logging.disable_progress_bar()  # type: ignore[no-untyped-call]  # the probe prints a table
    model_type = config_json(str(model_dir)).get("model_type")
    if model_type in NATIVE_MODEL_TYPES:
        from trainer import baichuan

        baichuan.register()
    try:
        model: Any = AutoModelForCausalLM.from_pretrained(
            str(model_dir), dtype=DTYPES[dtype], trust_remote_code=False
        )
    except (OSError, ValueError, KeyError) as exc:
        raise ProbeError(f"cannot load {model_dir} natively: {exc}") from exc
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    return model.to(device).eval()


def native_scores(model: Any, ids: Sequence[int]) -> TokenScores:
    import torch

    with torch.no_grad():
        tensor = torch.tensor([list(ids)], device=model.device)
        logits = model(input_ids=tensor).logits[0, :-1].float()
        logp = torch.log_softmax(logits, dim=-1)
        token = logp.gather(1, tensor[0, 1:, None])[:, 0]
        top1 = logp.argmax(dim=-1)
    # One device-to-host copy per prompt: the comparison runs on plain floats.
    return TokenScores(list(ids), token.cpu().tolist(), top1.cpu().tolist())


# --- the command -------------------------------------------------------------------------


@dataclass
class ProbeResult:
    verdict: Verdict
    at: str
    tolerance: float
    max_abs_logprob_diff: float | None
    mean_abs_logprob_diff: float | None
    top1_agreement: float | None
    top1_compared: int
    tokens: int
    engine: dict[str, Any]
    native: dict[str, Any]
    prompts: list[dict[str, Any]]
    detail: str


def render_prompts(fmt: ChatFormat, budget: int) -> list[tuple[str, str, list[int]]]:
    out = []
    for name, turns in PROBE_DIALOGUES:
        prompt = fmt.render_prompt(list(turns), budget)
        out.append((name, prompt.text, prompt.input_ids))
    return out


def run_probe(
    *,
    engine: Engine,
    fmt: ChatFormat,
    model_dir: Path,
    dtype: str,
    device: str,
    tolerance: float,
    min_top1: float | None,
    budget: int,
) -> ProbeResult:
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    prompts = render_prompts(fmt, budget)
    engine.resolve_model()
    engine_info = {"url": engine.url, "protocol": engine.protocol, "model": engine.model}
    native_info = {"model_dir": str(model_dir), "dtype": dtype}
    try:
        # The engine first: an engine that cannot be probed costs no model load.
        scored = [(name, ids, engine.score(text, ids)) for name, text, ids in prompts]
    except ProbeUnsupported as exc:
        return ProbeResult(
            "unsupported", now, tolerance, None, None, None, 0, 0,
            engine_info, native_info, [], str(exc),
        )  # fmt: skip
    engine_info["method"] = engine.method
    model = load_native(model_dir, dtype, device)
    native_info["device"] = str(model.device)
    native_info["model_type"] = str(model.config.model_type)
    comparisons = [compare_prompt(name, native_scores(model, ids), e) for name, ids, e in scored]
    summary = summarize(comparisons, tolerance, min_top1)
    return ProbeResult(
        summary.verdict,
        now,
        tolerance,
        summary.max_abs,
        summary.mean_abs,
        summary.top1_agreement,
        summary.top1_compared,
        summary.tokens,
        engine_info,
        native_info,
        [asdict(c) for c in comparisons],
        "; ".join(summary.reasons),
    )


def _jsonable(value: Any) -> Any:
    """JSON has no infinity: an infinite difference is written as the string "inf"."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    return value


def _fmt(value: float | None) -> str:
    return "—" if value is None else f"{value:.2e}"


def print_table(result: ProbeResult) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console(highlight=False)
    engine = result.engine
    console.print(
        f"engine {engine['url']} ({engine['protocol']}, model {engine.get('model')},"
        f" {engine.get('method') or 'no method'}) vs native {result.native['model_dir']}"
        f" ({result.native.get('model_type', '?')}, {result.native['dtype']},"
        f" {result.native.get('device', '?')})"
    )
    if result.prompts:
        table = Table("prompt", "tokens", "max |Δlogprob|", "mean |Δlogprob|", "worst at", "top-1")
        for p in result.prompts:
            top1 = f"{p['top1_agree']}/{p['top1_compared']}" if p["top1_compared"] else "n/a"
            if not p["ids_match"]:
                table.add_row(p["name"], "ids differ", "—", "—", "—", "—")
                continue
            table.add_row(
                p["name"],
                str(p["tokens"]),
                _fmt(p["max_abs"]),
                _fmt(p["mean_abs"]),
                str(p["worst_position"]),
                top1,
            )
        console.print(table)
    top1 = (
        "n/a (the engine reports no top-k)"
        if result.top1_agreement is None
        else f"{result.top1_agreement:.3f} of {result.top1_compared} positions"
    )
    style = {"pass": "[green]PASS[/green]", "fail": "[red]FAIL[/red]"}
    console.print(f"verdict: {style.get(result.verdict, '[yellow]UNSUPPORTED[/yellow]')}")
    if result.tokens:
        console.print(
            f"  max |Δlogprob| {_fmt(result.max_abs_logprob_diff)} (tolerance"
            f" {result.tolerance:g}), mean {_fmt(result.mean_abs_logprob_diff)}"
        )
        console.print(f"  top-1 agreement {top1}")
    if result.detail:
        console.print(f"  {result.detail}")


@click.command()
@click.option("--engine-url", help="The engine. Default: MEDCHAT_ENGINE_URL (the gateway's).")
@click.option(
    "--protocol",
    type=click.Choice(["openai", "tgi"]),
    help="How to ask it. Default: MEDCHAT_ENGINE_PROTOCOL.",
)
@click.option(
    "--engine-model",
    help="The engine's name for the model (OpenAI `model`). Default: the first of /v1/models.",
)
@click.option(
    "--model",
    "model_dir",
    required=True,
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="The weights the engine serves, as a local directory (the native reference).",
)
@click.option(
    "--tokenizer",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="Tokenizer directory for the format module. Default: --model.",
)
@click.option("--profile", help="Conversation format profile. Default: MEDCHAT_PROFILE.")
@click.option(
    "--tolerance",
    type=float,
    default=DEFAULT_TOLERANCE,
    show_default=True,
    help="Largest |Δlogprob| that passes (float32 engine; raise it for bf16/fp16 engines).",
)
@click.option("--min-top1", type=float, help="Also require this top-1 agreement (0..1).")
@click.option(
    "--dtype",
    type=click.Choice(["float32", "bfloat16", "float16"]),
    default="float32",
    show_default=True,
    help="The native forward's dtype.",
)
@click.option("--device", default="auto", show_default=True, help="cpu, cuda, cuda:1, auto.")
@click.option(
    "--max-prompt-tokens",
    type=int,
    default=200,
    show_default=True,
    help="Prompt budget: older rounds are dropped past it, as the gateway does.",
)
@click.option("--timeout", type=float, default=300.0, show_default=True, help="Per request, s.")
@click.option(
    "--record",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Where to write the result. Default: MEDCHAT_PROBE_RECORD (what /readyz reads).",
)
@click.option("--no-record", is_flag=True, help="Do not write the probe record.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def probe(
    engine_url: str | None,
    protocol: Protocol | None,
    engine_model: str | None,
    model_dir: Path,
    tokenizer: Path | None,
    profile: str | None,
    tolerance: float,
    min_top1: float | None,
    dtype: str,
    device: str,
    max_prompt_tokens: int,
    timeout: float,
    record: Path | None,
    no_record: bool,
    as_json: bool,
) -> None:
    """Compare the engine's prompt logprobs with the native forward pass on the same
    weights. Exit 0 pass, 1 fail (past the tolerance, or another tokenization), 2 no
    verdict (unsupported engine, unreachable)."""
    from services.core.chatformat import (
        FormatError,
        TokenizerLoadError,
        chat_format,
        get_profile,
        load_tokenizer,
    )
    from services.core.probe_record import write_record
    from services.gateway.config import GatewaySettings

    settings = GatewaySettings()
    try:
        fmt = chat_format(
            load_tokenizer(tokenizer or model_dir), get_profile(profile or settings.profile)
        )
    except (TokenizerLoadError, FormatError, ValueError, OSError) as exc:
        raise click.ClickException(f"cannot build the probe prompts: {exc}") from exc
    engine = Engine(
        engine_url or settings.engine_url,
        protocol or settings.engine_protocol,
        engine_model,
        timeout,
    )
    try:
        result = run_probe(
            engine=engine,
            fmt=fmt,
            model_dir=model_dir,
            dtype=dtype,
            device=device,
            tolerance=tolerance,
            min_top1=min_top1,
            budget=max_prompt_tokens,
        )
    except ProbeError as exc:
        click.echo(f"probe: no verdict: {exc}", err=True)
        raise SystemExit(2) from exc
    finally:
        engine.close()
    payload = _jsonable(asdict(result))
    if not no_record:
        write_record(record or settings.probe_record_path, payload)
    if as_json:
        click.echo(json.dumps(payload, indent=2, ensure_ascii=False))
    else:
        print_table(result)
    raise SystemExit(EXIT[result.verdict])
