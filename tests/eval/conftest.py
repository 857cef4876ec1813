"""The evaluation against real servers: Postgres, the gateway in front of a real
`transformers serve` with a tiny model (the model under test), and stand-in OpenAI-compatible
services for the patient simulator and the judge, whose replies each test scripts."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from services.eval.config import DEFAULT_DATA_DIR
from services.gateway.app import create_app
from services.gateway.config import GatewaySettings
from tests.support.platform import REDIS_URL, broker_url, make_key
from tests.support.servers import serve, temporary_database, transformers_serve
from tests.support.stand_in_llm import Reply, StandIn, stand_in
from tests.support.tiny_model import build_tiny_marker_model

EVAL_DATA = DEFAULT_DATA_DIR  # ../shared/data/disc-medllm/eval, read in place
MAX_NEW = 8  # the tiny model's answers: noise, cut by length
GOOD_SCORES = "Proactivity: 4\nAccuracy: 3\nHelpfulness: 4\nLinguistic Quality: 5"


@pytest.fixture(scope="session")
def database_url() -> Iterator[str]:
    with temporary_database() as url:
        yield url


@pytest.fixture(scope="session")
def served_model(
    hf_marker_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[str, str]]:
    """The tiny model under a real `transformers serve`: (its URL, its model id)."""
    pytest.importorskip("torch", reason="needs the serve extra (torch): pip install -e '.[serve]'")
    root = tmp_path_factory.mktemp("tiny_engine")
    model_dir = build_tiny_marker_model(root / "model", hf_marker_dir)
    with transformers_serve(model_dir, root / "serve.log") as served:
        yield served


@pytest.fixture(scope="session")
def gateway(
    database_url: str,
    served_model: tuple[str, str],
    hf_marker_dir: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[str]:
    """The gateway in front of the tiny model, as deployed: the model under test is reached
    through its /v1/chat/completions with an API key."""
    settings = GatewaySettings(
        environment="test",
        database_url=database_url,
        redis_url=REDIS_URL,
        broker_url=broker_url(),
        engine_url=served_model[0],
        engine_protocol="openai",
        engine_model=served_model[1],
        engine_first_token_timeout_s=30.0,
        engine_sampling_extras=False,
        engine_max_total_tokens=4096,
        tokenizer_path=hf_marker_dir,
        max_new_tokens=MAX_NEW,
        files_dir=tmp_path_factory.mktemp("files"),
        models_dir=tmp_path_factory.mktemp("models"),
        rate_limit_patient_per_minute=100_000,
        rate_limit_guest_create_per_ip_per_hour=100_000,
        rate_limit_guest_chat_per_ip_per_minute=100_000,
        rate_limit_key_per_minute=100_000,
        auth_cache_s=0.0,
        usage_flush_s=0.0,
    )
    with serve(create_app(settings)) as url:
        yield url


@pytest.fixture(scope="session")
def api_key(database_url: str) -> str:
    return make_key(database_url, "integrator")


def patient_script(body: dict[str, Any], number: int) -> Reply:
    """A patient who asks one follow-up per doctor reply, prefixed as simulators often do."""
    return f"患者：医生，我还想问第{number}个问题，需要做什么检查吗？"


JUDGE_FIRST_QUESTION = re.compile(r"\[start of conversation\]\npatient: (.*)")


def question_of(judge_request: dict[str, Any]) -> str:
    """The case a judge request is about: its dialogue's first patient line."""
    m = JUDGE_FIRST_QUESTION.search(judge_request["messages"][0]["content"])
    assert m is not None
    return m.group(1)


@pytest.fixture
def patient() -> Iterator[StandIn]:
    with stand_in("patient-sim", patient_script) as server:
        yield server


@pytest.fixture
def judge() -> Iterator[StandIn]:
    """Answers in the published format unless a test swaps its script."""
    with stand_in("judge-gpt", lambda body, n: GOOD_SCORES) as server:
        yield server
