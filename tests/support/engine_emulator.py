"""A scripted inference engine behind a real HTTP server, for the gateway's tests.

It speaks TGI's native API (`/info`, `/health`, `/tokenize`, `/generate`,
`/generate_stream`; shapes from `shared/reference/tgi-openapi-3.3.6.json`, behaviour from
TGI's router source) and the OpenAI-compatible one a vLLM server offers (`/v1/completions`,
`/v1/models`). Prompts are tokenized with the format module's `encode_text_form`, so
prompt lengths and validation match what the gateway computes.

The reply is scripted (`EngineState.reply_tokens`) and the failure `mode` is switched per
test, in process (`app[ENGINE_KEY].state`) or over HTTP (`POST /_control`) when the
emulator runs as a separate process (`run_emulator`, or
`python -m tests.support.engine_emulator --port P --tokenizer DIR`).

Modes apply to the generation endpoints only (`/generate`, `/generate_stream`,
`/v1/completions`); `/info`, `/health`, `/tokenize` and `/v1/models` always answer.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import logging
import math
import re
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import AsyncIterator, Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import IO, Any, Final, Literal, get_args

import orjson
from aiohttp import web
from aiohttp.typedefs import Handler
from jsonschema import Draft202012Validator

from services.core.chatformat import Tokenizer, load_tokenizer
from tests.support.servers import free_port, stop_process
from tests.support.tokenizers import SHARED

log = logging.getLogger("engine_emulator")

REPO_ROOT: Final = Path(__file__).resolve().parents[2]
TGI_OPENAPI: Final = SHARED / "reference" / "tgi-openapi-3.3.6.json"
CONTROL_PATH: Final = "/_control"

Mode = Literal[
    "ok",
    "overloaded",  # TGI: 429, or an SSE error event; OpenAI: 429
    "validation",  # TGI: 422, or an SSE error event; OpenAI: 400
    "generation_error",  # fails after 2 tokens: 424 / SSE error event / OpenAI error chunk
    "http_500",  # a proxy-style 500 whose body is not JSON
    "garbage",  # 200 whose body is neither the expected JSON nor SSE
    "truncated_stream",  # 2 tokens, then the body ends: no final event, no error, no [DONE]
    "hang",  # accepts the request, sends no token until the client goes away
]
MODES: Final[frozenset[str]] = frozenset(get_args(Mode))
FinishReason = Literal["length", "eos_token"]

DEFAULT_REPLY: Final = ("您好", "，", "建议", "多", "休息", "。")
TOKEN_LOGPROB: Final = -0.25
EOS_LOGPROB: Final = -0.01
SAMPLING_SEED: Final = 4242  # TGI reports a random seed when sampling without one: fixed here
DISCONNECT_POLL_S: Final = 0.02

OVERLOADED: Final = "Model is overloaded"
GENERATION_FAILED: Final = "Request failed during generation: emulated engine failure"
EMULATED_VALIDATION: Final = "Input validation error: emulated validation failure"

_SCRIPTED: Final = ("reply_tokens", "first_token_delay", "token_delay", "mode")
_BYTE_PIECE = re.compile(r"<0x([0-9A-Fa-f]{2})>")


# ------------------------------------------------------------------ state and config


@dataclass
class EngineState:
    """What a test scripts, and what the emulator saw."""

    reply_tokens: list[str] = field(default_factory=lambda: list(DEFAULT_REPLY))
    first_token_delay: float = 0.0
    token_delay: float = 0.005
    mode: Mode = "ok"
    requests: list[dict[str, Any]] = field(default_factory=list)  # {"method","path","body"}
    disconnects: int = 0  # generations whose client left before the end
    loaded_loras: dict[str, str] = field(default_factory=dict)  # runtime-loaded: name -> path

    def apply(self, fields: Mapping[str, Any]) -> None:
        """Set scripted fields; `reset: true` clears what was recorded. All-or-nothing."""
        unknown = set(fields) - {*_SCRIPTED, "reset"}
        if unknown:
            raise ValueError(f"unknown control fields: {sorted(unknown)}")
        updates: dict[str, Any] = {}
        if "reply_tokens" in fields:
            tokens = fields["reply_tokens"]
            if not isinstance(tokens, list) or not all(isinstance(t, str) and t for t in tokens):
                raise ValueError("reply_tokens must be a list of non-empty strings")
            updates["reply_tokens"] = list(tokens)
        for name in ("first_token_delay", "token_delay"):
            if name in fields:
                value = fields[name]
                if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
                    raise ValueError(f"{name} must be a number >= 0")
                updates[name] = float(value)
        if "mode" in fields:
            if fields["mode"] not in MODES:
                raise ValueError(f"mode must be one of {sorted(MODES)}")
            updates["mode"] = fields["mode"]
        reset = fields.get("reset", False)
        if not isinstance(reset, bool):
            raise ValueError("reset must be a boolean")
        if reset:
            self.requests.clear()
            self.disconnects = 0
        for name, value in updates.items():
            setattr(self, name, value)

    def snapshot(self) -> dict[str, Any]:
        return {
            "mode": self.mode,
            "reply_tokens": list(self.reply_tokens),
            "first_token_delay": self.first_token_delay,
            "token_delay": self.token_delay,
            "requests": list(self.requests),
            "disconnects": self.disconnects,
        }


@dataclass(frozen=True)
class EngineConfig:
    """Router limits, as `/info` reports them (TGI defaults where the gateway does not care)."""

    model_id: str = "disc-medllm-emulator"
    max_input_tokens: int = 3072
    max_total_tokens: int = 4096
    max_concurrent_requests: int = 128
    max_best_of: int = 2
    max_stop_sequences: int = 4
    max_client_batch_size: int = 4
    version: str = "3.3.6"
    # TGI's LORA_ADAPTERS ids. TGI answers an adapter_id it did not load with the base model
    # (its server maps unknown ids to adapter index 0), and so does the emulator.
    adapters: tuple[str, ...] = ()
    # vLLM's `--lora-modules` names, listed by /v1/models and accepted as `model`.
    lora_modules: tuple[str, ...] = ()
    # vLLM with VLLM_ALLOW_RUNTIME_LORA_UPDATING=True: /v1/load_lora_adapter exists.
    runtime_lora: bool = False


# ------------------------------------------------------------------ generation plan


@dataclass(frozen=True)
class _Token:
    id: int
    text: str
    special: bool

    def tgi(self) -> dict[str, Any]:
        logprob = EOS_LOGPROB if self.special else TOKEN_LOGPROB
        return {"id": self.id, "text": self.text, "logprob": logprob, "special": self.special}


@dataclass(frozen=True)
class _Plan:
    """Everything one request will emit, decided before the first token."""

    prompt_ids: list[int]
    tokens: list[_Token]
    finish_reason: FinishReason
    first_token_delay: float
    token_delay: float

    @property
    def text(self) -> str:
        # Engines decode with skip_special_tokens: EOS is a token event, not text.
        return "".join(t.text for t in self.tokens if not t.special)


class _Exchange:
    """One generation request: paces tokens and notices a client that went away."""

    def __init__(self, request: web.Request, state: EngineState):
        self._request = request
        self._state = state
        self.left = False

    def mark_left(self) -> None:
        if not self.left:
            self.left = True
            self._state.disconnects += 1

    def client_gone(self) -> bool:
        # aiohttp drops the protocol's transport on connection_lost; polling it works
        # whether or not the server cancels handlers on disconnect.
        transport = self._request.transport
        if transport is None or transport.is_closing():
            self.mark_left()
        return self.left

    async def wait(self, seconds: float) -> bool:
        """Sleep up to `seconds`; False as soon as the client has gone."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + seconds
        try:
            while not self.client_gone():
                remaining = deadline - loop.time()
                if remaining <= 0:
                    return True
                await asyncio.sleep(min(remaining, DISCONNECT_POLL_S))
        except asyncio.CancelledError:
            self.client_gone()  # a server with handler_cancellation cancels on disconnect
            raise
        return False

    async def paced(self, plan: _Plan, tokens: list[_Token]) -> AsyncIterator[tuple[int, _Token]]:
        """Yield (1-based index, token) when each is due; stop if the client leaves."""
        for i, token in enumerate(tokens):
            if not await self.wait(plan.first_token_delay if i == 0 else plan.token_delay):
                return
            yield i + 1, token

    async def consume(self, plan: _Plan, tokens: list[_Token]) -> bool:
        async for _ in self.paced(plan, tokens):
            pass
        return not self.left


class _SSE:
    """A server-sent-event body; a failed write counts as the client leaving."""

    def __init__(self, request: web.Request, exchange: _Exchange, prefix: bytes):
        self.response = web.StreamResponse(
            status=200,
            headers={
                "Content-Type": "text/event-stream",
                "Cache-Control": "no-cache",
                "X-Accel-Buffering": "no",
            },
        )
        self._request = request
        self._exchange = exchange
        self._prefix = prefix

    async def open(self) -> None:
        await self.response.prepare(self._request)

    async def send(self, payload: Any) -> bool:
        data = payload if isinstance(payload, bytes) else orjson.dumps(payload)
        try:
            await self.response.write(self._prefix + data + b"\n\n")
        except ConnectionError:
            self._exchange.mark_left()
            return False
        return True

    async def close(self) -> web.StreamResponse:
        if not self._exchange.left:
            try:
                await self.response.write_eof()
            except ConnectionError:
                self._exchange.mark_left()
        return self.response


# ------------------------------------------------------------------ request checks

# TGI deserializes GenerateParameters with serde: a wrong type is a 422 in plain text,
# before any of its own validation (which answers JSON).
_UNSIGNED_OPTIONAL = ("max_new_tokens", "top_k", "top_n_tokens", "truncate", "seed", "best_of")
_FLOAT_OPTIONAL = ("temperature", "top_p", "typical_p", "repetition_penalty", "frequency_penalty")
_BOOL = ("details", "decoder_input_details", "do_sample", "watermark")


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _serde_problem(body: Any) -> str | None:
    if not isinstance(body, dict):
        return "invalid type: expected struct GenerateRequest"
    if "inputs" not in body:
        return "missing field `inputs`"
    if not isinstance(body["inputs"], str):
        return "inputs: invalid type: expected a string"
    if "parameters" not in body:
        return None
    params = body["parameters"]
    if not isinstance(params, dict):
        return "parameters: invalid type: expected struct GenerateParameters"
    adapter_id = params.get("adapter_id")
    if adapter_id is not None and not isinstance(adapter_id, str):
        return "parameters.adapter_id: invalid type: expected a string"
    for name in _UNSIGNED_OPTIONAL:
        value = params.get(name)
        if value is not None and not (_is_int(value) and value >= 0):
            return f"parameters.{name}: invalid value: expected an unsigned integer"
    for name in _FLOAT_OPTIONAL:
        value = params.get(name)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int | float)):
            return f"parameters.{name}: invalid type: expected a float"
    for name in _BOOL:
        if name in params and not isinstance(params[name], bool):
            return f"parameters.{name}: invalid type: expected a boolean"
    return_full_text = params.get("return_full_text")
    if return_full_text is not None and not isinstance(return_full_text, bool):
        return "parameters.return_full_text: invalid type: expected a boolean"
    stop = params.get("stop", [])
    if not isinstance(stop, list) or not all(isinstance(s, str) for s in stop):
        return "parameters.stop: invalid type: expected a sequence of strings"
    return None


def _tgi_parameter_problem(params: Mapping[str, Any], config: EngineConfig) -> str | None:
    """TGI's validation.rs rules, messages included (without the 'Input validation error: ')."""
    temperature = params.get("temperature")
    if temperature is not None and temperature <= 0:
        return "`temperature` must be strictly positive"
    penalty = params.get("repetition_penalty")
    if penalty is not None and penalty <= 0:
        return "`repetition_penalty` must be strictly positive"
    for name in ("top_p", "typical_p"):
        value = params.get(name)
        if value is not None and not 0 < value < 1:  # 1.0 is rejected, unlike in OpenAI APIs
            return f"`{name}` must be > 0.0 and < 1.0"
    if params.get("top_k") == 0:
        return "`top_k` must be strictly positive"
    if params.get("max_new_tokens") == 0:
        return "`max_new_tokens` must be strictly positive"
    stop = params.get("stop", [])
    if len(stop) > config.max_stop_sequences:
        return (
            f"`stop` supports up to {config.max_stop_sequences} stop sequences. Given: {len(stop)}"
        )
    return None


def _sampling(params: Mapping[str, Any]) -> bool:
    # TGI samples when asked, or when any logits warper is set.
    warpers = (
        params.get("temperature") not in (None, 1.0)
        or params.get("top_k") is not None
        or params.get("top_p") is not None
        or params.get("typical_p") is not None
    )
    return bool(params.get("do_sample")) or warpers


# ------------------------------------------------------------------ responses


def _json(
    payload: Any, status: int = 200, headers: Mapping[str, str] | None = None
) -> web.Response:
    return web.Response(
        status=status, body=orjson.dumps(payload), content_type="application/json", headers=headers
    )


def _text(status: int, text: str) -> web.Response:
    return web.Response(status=status, text=text, content_type="text/plain")


def _tgi_error(message: str, error_type: str) -> dict[str, str]:
    return {"error": message, "error_type": error_type}


def _openai_error(status: int, message: str, kind: str) -> web.Response:
    return _json(
        {"error": {"message": message, "type": kind, "param": None, "code": status}}, status
    )


async def _truncated_json(request: web.Request, payload: Any) -> web.StreamResponse:
    """Promise the whole body, send half, drop the connection (a crashed engine or proxy)."""
    body = orjson.dumps(payload)
    response = web.StreamResponse(status=200)
    response.content_type = "application/json"
    response.content_length = len(body)
    await response.prepare(request)
    await response.write(body[: len(body) // 2])
    if request.transport is not None:
        request.transport.close()
    return response


def _proxy_failure(mode: Mode, *, stream: bool) -> web.Response | None:
    if mode == "http_500":
        return _text(500, "Internal Server Error")
    if mode == "garbage":
        if stream:
            return web.Response(
                status=200,
                body=b"data:<!doctype html><title>upstream</title>\n\n",
                content_type="text/event-stream",
            )
        return web.Response(
            status=200,
            body=b"<!doctype html><title>upstream</title>",
            content_type="application/json",
        )
    return None


@dataclass(frozen=True)
class _TgiRequest:
    inputs: str
    params: dict[str, Any]


# ------------------------------------------------------------------ the engine


class Engine:
    def __init__(
        self, tokenizer: Tokenizer, config: EngineConfig, state: EngineState | None = None
    ):
        self.tokenizer = tokenizer
        self.config = config
        self.state = state or EngineState()
        self._created = int(time.time())
        self._completion_ids = itertools.count(1)
        self._token_cache: dict[str, _Token] = {}

    # -------------------------------------------------------------- shared pieces

    def _reply_token(self, text: str) -> _Token:
        token = self._token_cache.get(text)
        if token is None:
            token_id = self.tokenizer.token_to_id(text)
            if token_id is None:  # not one piece: the id of its first piece stands for it
                ids = self.tokenizer.encode(text)
                token_id = ids[0] if ids else (self.tokenizer.unk_id or 0)
            token = self._token_cache[text] = _Token(token_id, text, special=False)
        return token

    def _plan(self, prompt_ids: list[int], max_new_tokens: int | None) -> _Plan:
        state = self.state
        tokens = [self._reply_token(t) for t in state.reply_tokens]
        eos = self.tokenizer.eos_id
        if eos is not None:
            tokens.append(_Token(eos, self.tokenizer.id_to_token(eos), special=True))
        # Without max_new_tokens TGI and vLLM allow whatever the context has left.
        budget = (
            max_new_tokens
            if max_new_tokens is not None
            else self.config.max_total_tokens - len(prompt_ids)
        )
        finish: FinishReason = "eos_token"
        if budget < len(tokens):
            tokens, finish = tokens[:budget], "length"
        return _Plan(prompt_ids, tokens, finish, state.first_token_delay, state.token_delay)

    def _simple_tokens(self, text: str, ids: list[int]) -> list[dict[str, Any]]:
        """TGI's SimpleToken list; offsets are characters, approximate but monotonic."""
        out: list[dict[str, Any]] = []
        cursor = 0
        pending = bytearray()
        for token_id in ids:
            piece = self.tokenizer.id_to_token(token_id)
            surface = piece.replace("\u2581", " ")
            byte = _BYTE_PIECE.fullmatch(piece)
            if byte:
                # Byte-fallback pieces spell one character over several ids: the offset
                # moves when the character is complete.
                pending.append(int(byte[1], 16))
                try:
                    length = len(pending.decode("utf-8"))
                    pending.clear()
                except UnicodeDecodeError:
                    length = 0
                    if len(pending) >= 4:
                        pending.clear()
            elif text.startswith(surface, cursor):
                length = len(surface)
            else:
                length = len(self.tokenizer.decode([token_id]))
            start, cursor = cursor, min(len(text), cursor + length)
            out.append({"id": token_id, "text": piece, "start": start, "stop": cursor})
        return out

    async def _tgi_request(self, request: web.Request) -> _TgiRequest | web.Response:
        if request.content_type != "application/json":
            return _text(415, "Expected request with `Content-Type: application/json`")
        try:
            body = orjson.loads(await request.read())
        except orjson.JSONDecodeError as exc:
            return _text(400, f"Failed to parse the request body as JSON: {exc}")
        problem = _serde_problem(body)
        if problem:
            return _text(
                422, f"Failed to deserialize the JSON body into the target type: {problem}"
            )
        return _TgiRequest(body["inputs"], dict(body.get("parameters") or {}))

    def _tgi_plan(self, req: _TgiRequest, *, stream: bool) -> _Plan | str:
        """The plan, or TGI's validation message."""
        params = req.params
        if self.state.mode == "validation":
            return EMULATED_VALIDATION
        if stream and params.get("best_of") not in (None, 1):
            return "Input validation error: `best_of` != 1 is not supported when streaming tokens"
        if stream and params.get("decoder_input_details"):
            return (
                "Input validation error: `decoder_input_details` == true is not supported "
                "when streaming tokens"
            )
        problem = _tgi_parameter_problem(params, self.config)
        if problem is None and not req.inputs:
            problem = "`inputs` cannot be empty"
        ids = self.tokenizer.encode_text_form(req.inputs)
        if params.get("truncate"):
            ids = ids[-params["truncate"] :]  # TGI keeps the end of the prompt
        max_new = params.get("max_new_tokens")
        cfg = self.config
        if problem is None and len(ids) > cfg.max_input_tokens:
            problem = (
                f"`inputs` must have less than {cfg.max_input_tokens} tokens. Given: {len(ids)}"
            )
        if problem is None and max_new is not None and len(ids) + max_new > cfg.max_total_tokens:
            problem = (
                f"`inputs` tokens + `max_new_tokens` must be <= {cfg.max_total_tokens}. "
                f"Given: {len(ids)} `inputs` tokens and {max_new} `max_new_tokens`"
            )
        if problem is not None:
            return f"Input validation error: {problem}"
        return self._plan(ids, max_new)

    def _generated_text(self, req: _TgiRequest, plan: _Plan) -> str:
        return req.inputs + plan.text if req.params.get("return_full_text") else plan.text

    def _seed(self, params: Mapping[str, Any]) -> int | None:
        if not _sampling(params):
            return None
        seed = params.get("seed")
        return int(seed) if seed is not None else SAMPLING_SEED

    # -------------------------------------------------------------- TGI native

    async def info(self, request: web.Request) -> web.StreamResponse:
        cfg = self.config
        return _json(
            {
                "model_id": cfg.model_id,
                "model_sha": None,
                "model_pipeline_tag": "text-generation",
                "max_concurrent_requests": cfg.max_concurrent_requests,
                "max_best_of": cfg.max_best_of,
                "max_stop_sequences": cfg.max_stop_sequences,
                "max_input_tokens": cfg.max_input_tokens,
                "max_total_tokens": cfg.max_total_tokens,
                "validation_workers": 2,
                "max_client_batch_size": cfg.max_client_batch_size,
                "router": "text-generation-router",
                "version": cfg.version,
                "sha": None,
                "docker_label": None,
            }
        )

    async def health(self, request: web.Request) -> web.StreamResponse:
        return web.Response(status=200)

    async def tokenize(self, request: web.Request) -> web.StreamResponse:
        parsed = await self._tgi_request(request)
        if isinstance(parsed, web.Response):
            return parsed
        ids = self.tokenizer.encode_text_form(parsed.inputs)
        return _json(self._simple_tokens(parsed.inputs, ids))

    async def generate(self, request: web.Request) -> web.StreamResponse:
        mode = self.state.mode
        failure = _proxy_failure(mode, stream=False)
        if failure is not None:
            return failure
        parsed = await self._tgi_request(request)
        if isinstance(parsed, web.Response):
            return parsed
        # TGI takes a concurrency permit before it validates.
        if mode == "overloaded":
            return _json(_tgi_error(OVERLOADED, "overloaded"), 429)
        plan = self._tgi_plan(parsed, stream=False)
        if isinstance(plan, str):
            return _json(_tgi_error(plan, "validation"), 422)
        exchange = _Exchange(request, self.state)
        if mode == "hang":
            await exchange.wait(math.inf)
            return web.Response()  # nobody is left to read it
        if mode == "generation_error":
            if not await exchange.consume(plan, plan.tokens[:2]):
                return web.Response()
            return _json(_tgi_error(GENERATION_FAILED, "generation"), 424)
        body: dict[str, Any] = {"generated_text": self._generated_text(parsed, plan)}
        params = parsed.params
        # The schema documents details as defaulting to true; the router's serde default is false.
        if params.get("details") or params.get("decoder_input_details"):
            body["details"] = {
                "finish_reason": plan.finish_reason,
                "generated_tokens": len(plan.tokens),
                "seed": self._seed(params),
                "prefill": self._prefill(plan) if params.get("decoder_input_details") else [],
                "tokens": [t.tgi() for t in plan.tokens],
            }
        if mode == "truncated_stream":
            if not await exchange.consume(plan, plan.tokens[:2]):
                return web.Response()
            return await _truncated_json(request, body)
        if not await exchange.consume(plan, plan.tokens):
            return web.Response()
        headers = {
            "x-prompt-tokens": str(len(plan.prompt_ids)),
            "x-generated-tokens": str(len(plan.tokens)),
        }
        return _json(body, headers=headers)

    def _prefill(self, plan: _Plan) -> list[dict[str, Any]]:
        return [
            {"id": i, "text": self.tokenizer.id_to_token(i), "logprob": None if n == 0 else -1.0}
            for n, i in enumerate(plan.prompt_ids)
        ]

    async def generate_stream(self, request: web.Request) -> web.StreamResponse:
        mode = self.state.mode
        failure = _proxy_failure(mode, stream=True)
        if failure is not None:
            return failure
        parsed = await self._tgi_request(request)  # serde rejections come before the stream
        if isinstance(parsed, web.Response):
            return parsed
        exchange = _Exchange(request, self.state)
        sse = _SSE(request, exchange, prefix=b"data:")  # axum writes no space after the colon
        await sse.open()
        # From here on TGI answers 200 and reports every failure as an event.
        if mode == "overloaded":
            await sse.send(_tgi_error(OVERLOADED, "overloaded"))
            return await sse.close()
        plan = self._tgi_plan(parsed, stream=True)
        if isinstance(plan, str):
            await sse.send(_tgi_error(plan, "validation"))
            return await sse.close()
        if mode == "hang":
            await exchange.wait(math.inf)
            return sse.response
        complete = mode not in ("generation_error", "truncated_stream")
        tokens = plan.tokens if complete else plan.tokens[:2]
        async for index, token in exchange.paced(plan, tokens):
            final = complete and index == len(plan.tokens)
            event = {
                "index": index,
                "token": token.tgi(),
                "generated_text": self._generated_text(parsed, plan) if final else None,
                "details": self._stream_details(parsed, plan) if final else None,
            }
            if not await sse.send(event):
                return sse.response
        if exchange.left:
            return sse.response
        if mode == "generation_error":
            await sse.send(_tgi_error(GENERATION_FAILED, "generation"))
        return await sse.close()

    def _stream_details(self, req: _TgiRequest, plan: _Plan) -> dict[str, Any] | None:
        if not req.params.get("details"):  # TGI: null unless the request asked for details
            return None
        return {
            "finish_reason": plan.finish_reason,
            "generated_tokens": len(plan.tokens),
            "seed": self._seed(req.params),
            "input_length": len(plan.prompt_ids),
        }

    # -------------------------------------------------------------- OpenAI-compatible

    def _served(self) -> list[str]:
        return [self.config.model_id, *self.config.lora_modules, *self.state.loaded_loras]

    async def models(self, request: web.Request) -> web.StreamResponse:
        cfg = self.config
        models = [
            {
                "id": name,
                "object": "model",
                "created": self._created,
                "owned_by": "engine-emulator",
                # vLLM's fields: adapters name their base as parent; gateways size prompts
                # by max_model_len.
                "parent": None if name == cfg.model_id else cfg.model_id,
                "max_model_len": cfg.max_total_tokens,
            }
            for name in self._served()
        ]
        return _json({"object": "list", "data": models})

    async def load_lora_adapter(self, request: web.Request) -> web.StreamResponse:
        """vLLM's runtime adapter loading (messages as vLLM's serving_models.py words them)."""
        if not self.config.runtime_lora:
            return _json({"detail": "Not Found"}, 404)  # the route exists only when enabled
        body: Any = None
        with suppress(orjson.JSONDecodeError):
            body = orjson.loads(await request.read())
        name = body.get("lora_name") if isinstance(body, dict) else None
        path = body.get("lora_path") if isinstance(body, dict) else None
        if not isinstance(name, str) or not name or not isinstance(path, str) or not path:
            return _openai_error(
                400, "Both 'lora_name' and 'lora_path' must be provided.", "InvalidUserInput"
            )
        if name in self._served():
            return _openai_error(
                400, f"The lora adapter '{name}' has already been loaded.", "InvalidUserInput"
            )
        if not (Path(path) / "adapter_config.json").is_file():
            return _openai_error(
                404, f"Loading lora {name} failed: No adapter found for {path}", "NotFoundError"
            )
        self.state.loaded_loras[name] = path
        return _text(200, f"Success: LoRA adapter '{name}' added successfully.")

    async def unload_lora_adapter(self, request: web.Request) -> web.StreamResponse:
        if not self.config.runtime_lora:
            return _json({"detail": "Not Found"}, 404)
        body: Any = None
        with suppress(orjson.JSONDecodeError):
            body = orjson.loads(await request.read())
        name = body.get("lora_name") if isinstance(body, dict) else None
        if name not in self.state.loaded_loras:
            return _openai_error(
                404, f"The lora adapter '{name}' cannot be found.", "NotFoundError"
            )
        del self.state.loaded_loras[name]
        return _text(200, f"Success: LoRA adapter '{name}' removed successfully.")

    async def completions(self, request: web.Request) -> web.StreamResponse:
        mode = self.state.mode
        body: Any = None
        with suppress(orjson.JSONDecodeError):
            body = orjson.loads(await request.read())
        stream = isinstance(body, dict) and body.get("stream") is True
        failure = _proxy_failure(mode, stream=stream)
        if failure is not None:
            return failure
        if not isinstance(body, dict):
            return _openai_error(400, "the request body must be a JSON object", "BadRequestError")
        prompt = body.get("prompt")
        if isinstance(prompt, list) and len(prompt) == 1:
            prompt = prompt[0]
        if not isinstance(prompt, str):
            return _openai_error(400, "prompt must be a string", "BadRequestError")
        model = body.get("model")
        if model is not None and model not in self._served():
            return _openai_error(404, f"The model `{model}` does not exist.", "NotFoundError")
        max_tokens = body.get("max_tokens")
        if max_tokens is not None and not (_is_int(max_tokens) and max_tokens >= 1):
            return _openai_error(400, "max_tokens must be at least 1", "BadRequestError")
        if mode == "overloaded":
            return _openai_error(429, OVERLOADED, "RateLimitError")
        if mode == "validation":
            return _openai_error(400, EMULATED_VALIDATION, "BadRequestError")
        ids = self.tokenizer.encode_text_form(prompt)
        problem = self._context_problem(len(ids), max_tokens)
        if problem is not None:
            return _openai_error(400, problem, "BadRequestError")
        plan = self._plan(ids, max_tokens)
        exchange = _Exchange(request, self.state)
        head = {
            "id": f"cmpl-{next(self._completion_ids)}",
            "object": "text_completion",
            "created": int(time.time()),
            "model": model or self.config.model_id,
            "system_fingerprint": f"{self.config.version}-emulator",
        }
        finish = "stop" if plan.finish_reason == "eos_token" else "length"
        usage = {
            "prompt_tokens": len(ids),
            "completion_tokens": len(plan.tokens),  # EOS counts, as in vLLM
            "total_tokens": len(ids) + len(plan.tokens),
        }
        if stream:
            return await self._completion_stream(request, exchange, plan, head, finish, usage)
        if mode == "hang":
            await exchange.wait(math.inf)
            return web.Response()
        if mode == "generation_error":
            if not await exchange.consume(plan, plan.tokens[:2]):
                return web.Response()
            return _openai_error(500, GENERATION_FAILED, "InternalServerError")
        choice = {"index": 0, "text": plan.text, "logprobs": None, "finish_reason": finish}
        result = {**head, "choices": [choice], "usage": usage}
        if mode == "truncated_stream":
            if not await exchange.consume(plan, plan.tokens[:2]):
                return web.Response()
            return await _truncated_json(request, result)
        if not await exchange.consume(plan, plan.tokens):
            return web.Response()
        return _json(result)

    async def _completion_stream(
        self,
        request: web.Request,
        exchange: _Exchange,
        plan: _Plan,
        head: dict[str, Any],
        finish: str,
        usage: dict[str, int],
    ) -> web.StreamResponse:
        mode = self.state.mode
        sse = _SSE(request, exchange, prefix=b"data: ")
        await sse.open()
        if mode == "hang":
            await exchange.wait(math.inf)
            return sse.response
        complete = mode not in ("generation_error", "truncated_stream")
        tokens = plan.tokens if complete else plan.tokens[:2]
        async for index, token in exchange.paced(plan, tokens):
            final = complete and index == len(plan.tokens)
            choice = {
                "index": 0,
                "text": "" if token.special else token.text,
                "logprobs": None,
                "finish_reason": finish if final else None,
            }
            chunk = {**head, "choices": [choice], **({"usage": usage} if final else {})}
            if not await sse.send(chunk):
                return sse.response
        if exchange.left:
            return sse.response
        if mode == "truncated_stream":
            return await sse.close()
        if mode == "generation_error":
            error = {"message": GENERATION_FAILED, "type": "InternalServerError", "code": 500}
            await sse.send({"error": {**error, "param": None}})  # vLLM: an error chunk, then [DONE]
        await sse.send(b"[DONE]")
        return await sse.close()

    def _context_problem(self, prompt_tokens: int, max_tokens: int | None) -> str | None:
        cfg = self.config
        if prompt_tokens > cfg.max_input_tokens:
            return (
                f"This model's maximum input length is {cfg.max_input_tokens} tokens. "
                f"However, your prompt has {prompt_tokens} tokens."
            )
        wanted = prompt_tokens + (max_tokens or 0)
        if wanted > cfg.max_total_tokens or prompt_tokens >= cfg.max_total_tokens:
            return (
                f"This model's maximum context length is {cfg.max_total_tokens} tokens. "
                f"However, you requested {wanted} tokens ({prompt_tokens} in the messages, "
                f"{max_tokens or 0} in the completion). Please reduce the length of the "
                "messages or completion."
            )
        return None

    # -------------------------------------------------------------- control

    async def get_control(self, request: web.Request) -> web.StreamResponse:
        return _json(self.state.snapshot())

    async def post_control(self, request: web.Request) -> web.StreamResponse:
        try:
            fields = orjson.loads(await request.read())
            if not isinstance(fields, dict):
                raise ValueError("the control body must be a JSON object")
            self.state.apply(fields)
        except ValueError as exc:  # orjson.JSONDecodeError is a ValueError
            return _json({"error": str(exc)}, 400)
        return _json(self.state.snapshot())


ENGINE_KEY: Final = web.AppKey("engine", Engine)


def _recorded_body(raw: bytes) -> Any:
    if not raw:
        return None
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        return raw.decode("utf-8", "replace")


def create_app(
    tokenizer: Tokenizer | str | Path,
    config: EngineConfig | None = None,
    state: EngineState | None = None,
) -> web.Application:
    """The emulator as an aiohttp application; `app[ENGINE_KEY].state` scripts it in process."""
    tok = tokenizer if isinstance(tokenizer, Tokenizer) else load_tokenizer(tokenizer)
    engine = Engine(tok, config or EngineConfig(), state)

    @web.middleware
    async def record(request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path != CONTROL_PATH:
            body = _recorded_body(await request.read())  # read() caches: handlers still see it
            engine.state.requests.append(
                {"method": request.method, "path": request.path, "body": body}
            )
        return await handler(request)

    # TGI's default --payload-limit is 2 MB (aiohttp's own limit is 1 MiB).
    app = web.Application(middlewares=[record], client_max_size=2_000_000)
    app[ENGINE_KEY] = engine
    app.router.add_get("/info", engine.info)
    app.router.add_get("/health", engine.health)
    app.router.add_post("/tokenize", engine.tokenize)
    app.router.add_post("/generate", engine.generate)
    app.router.add_post("/generate_stream", engine.generate_stream)
    app.router.add_post("/v1/completions", engine.completions)
    app.router.add_get("/v1/models", engine.models)
    app.router.add_post("/v1/load_lora_adapter", engine.load_lora_adapter)
    app.router.add_post("/v1/unload_lora_adapter", engine.unload_lora_adapter)
    app.router.add_get(CONTROL_PATH, engine.get_control)
    app.router.add_post(CONTROL_PATH, engine.post_control)
    return app


# ------------------------------------------------------------------ TGI's schema


def _from_openapi(node: Any, strict: bool) -> Any:
    """An OpenAPI 3.0 schema object as JSON Schema 2020-12."""
    if not isinstance(node, dict):
        return node
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key in ("nullable", "example", "discriminator"):  # OpenAPI-only keywords
            continue
        if key == "properties":
            out[key] = {name: _from_openapi(s, strict) for name, s in value.items()}
        elif key in ("items", "additionalProperties") and isinstance(value, dict):
            out[key] = _from_openapi(value, strict)
        elif key in ("allOf", "anyOf", "oneOf"):
            out[key] = [_from_openapi(s, strict) for s in value]
        else:
            out[key] = value
    if strict and out.get("type") == "object" and "properties" in out:
        out.setdefault("additionalProperties", False)
    if node.get("nullable"):
        if isinstance(out.get("type"), str):
            out["type"] = [out["type"], "null"]
        else:  # `allOf: [$ref]` + nullable: a null alternative around the whole schema
            out = {"anyOf": [out, {"type": "null"}]}
    return out


@cache
def _tgi_components(strict: bool) -> dict[str, Any]:
    spec = json.loads(TGI_OPENAPI.read_text(encoding="utf-8"))
    return {
        "schemas": {
            name: _from_openapi(schema, strict)
            for name, schema in spec["components"]["schemas"].items()
        }
    }


def tgi_schema_validator(name: str, *, strict: bool = False) -> Draft202012Validator:
    """A validator for `#/components/schemas/<name>` of TGI's OpenAPI document.

    `nullable: true` becomes a null alternative. `strict` also closes every object schema
    (TGI's has no additionalProperties), so an invented or misspelt field fails too.
    """
    root = {"$ref": f"#/components/schemas/{name}", "components": _tgi_components(strict)}
    return Draft202012Validator(root)


# ------------------------------------------------------------------ a separate process


class EmulatorError(RuntimeError):
    pass


def _http_json(method: str, url: str, payload: Any = None, timeout: float = 5.0) -> Any:
    data = None if payload is None else orjson.dumps(payload)
    request = urllib.request.Request(
        url, data=data, method=method, headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return orjson.loads(response.read())
    except urllib.error.HTTPError as exc:
        raise EmulatorError(f"{method} {url}: {exc.code} {exc.read().decode()}") from exc


@dataclass(frozen=True)
class EmulatorHandle:
    url: str
    process: subprocess.Popen[bytes]

    def control(self, **fields: Any) -> dict[str, Any]:
        """Set state fields (reply_tokens, first_token_delay, token_delay, mode, reset)."""
        result: dict[str, Any] = _http_json("POST", self.url + CONTROL_PATH, fields)
        return result

    def state(self) -> dict[str, Any]:
        result: dict[str, Any] = _http_json("GET", self.url + CONTROL_PATH)
        return result


def _output(log_file: IO[bytes]) -> str:
    log_file.seek(0)
    return log_file.read().decode("utf-8", "replace")


def _wait_healthy(
    process: subprocess.Popen[bytes], url: str, log_file: IO[bytes], timeout: float
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise EmulatorError(
                f"engine emulator exited with {process.returncode} before answering:\n"
                + _output(log_file)
            )
        try:
            with urllib.request.urlopen(url + "/health", timeout=0.5) as response:
                if response.status == 200:
                    return
        except OSError:  # refused while it starts (URLError, ConnectionError, timeouts)
            pass
        time.sleep(0.05)
    raise EmulatorError(
        f"engine emulator did not answer {url}/health within {timeout:.0f} s:\n" + _output(log_file)
    )


@contextmanager
def run_emulator(
    tokenizer_dir: str | Path,
    *,
    max_input_tokens: int | None = None,
    max_total_tokens: int | None = None,
    model_id: str | None = None,
    adapters: tuple[str, ...] = (),
    lora_modules: tuple[str, ...] = (),
    runtime_lora: bool = False,
    startup_timeout: float = 20.0,
) -> Iterator[EmulatorHandle]:
    """Run the emulator as its own process on a free port, healthy before it is yielded."""
    port = free_port()
    command = [
        sys.executable,
        "-m",
        "tests.support.engine_emulator",
        "--port",
        str(port),
        "--tokenizer",
        str(tokenizer_dir),
    ]
    options = {
        "--max-input-tokens": max_input_tokens,
        "--max-total-tokens": max_total_tokens,
        "--model-id": model_id,
    }
    for flag, value in options.items():
        if value is not None:
            command += [flag, str(value)]
    for name in adapters:
        command += ["--adapter", name]
    for name in lora_modules:
        command += ["--lora-module", name]
    if runtime_lora:
        command.append("--runtime-lora")
    url = f"http://127.0.0.1:{port}"
    # A file, not a pipe: nobody drains the output while the tests run.
    with tempfile.TemporaryFile() as log_file:
        process = subprocess.Popen(
            command, cwd=REPO_ROOT, stdout=log_file, stderr=subprocess.STDOUT
        )
        try:
            _wait_healthy(process, url, log_file, startup_timeout)
            yield EmulatorHandle(url, process)
        finally:
            stop_process(process, timeout=5)


def main(argv: list[str] | None = None) -> int:
    defaults = EngineConfig()
    parser = argparse.ArgumentParser(
        prog="python -m tests.support.engine_emulator",
        description="A scripted TGI / OpenAI-compatible engine for the gateway's tests.",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--tokenizer", required=True, help="tokenizer directory (or .model file)")
    parser.add_argument("--max-input-tokens", type=int, default=defaults.max_input_tokens)
    parser.add_argument("--max-total-tokens", type=int, default=defaults.max_total_tokens)
    parser.add_argument("--model-id", default=defaults.model_id)
    parser.add_argument("--adapter", action="append", default=[], help="a TGI LORA_ADAPTERS id")
    parser.add_argument("--lora-module", action="append", default=[], help="a vLLM LoRA name")
    parser.add_argument("--runtime-lora", action="store_true", help="/v1/load_lora_adapter")
    args = parser.parse_args(argv)
    logging.basicConfig(stream=sys.stderr, level=logging.INFO, format="%(name)s: %(message)s")
    config = EngineConfig(
        model_id=args.model_id,
        max_input_tokens=args.max_input_tokens,
        max_total_tokens=args.max_total_tokens,
        adapters=tuple(args.adapter),
        lora_modules=tuple(args.lora_module),
        runtime_lora=args.runtime_lora,
    )
    app = create_app(args.tokenizer, config)
    log.info("serving %s on http://%s:%d", args.tokenizer, args.host, args.port)
    # A short shutdown timeout: a test's hanging generation must not hold up termination.
    web.run_app(
        app, host=args.host, port=args.port, print=None, access_log=None, shutdown_timeout=0.5
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
