"""Shared fixtures: tokenizers built inside the tests (no hub downloads here); the platform
and worker fixtures come from tests/support as plugins."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.support.tokenizers import (
    SFT_EXAMPLES,
    build_baichuan_like_sentencepiece,
    build_chatml_hf_tokenizer,
    build_marker_hf_tokenizer,
)

# The platform (Postgres, Redis, the gateway, the engine emulator) and a real Celery worker,
# for every test directory that needs them.
pytest_plugins = ["tests.support.platform", "tests.support.worker"]


@pytest.fixture(scope="session")
def sft_rows() -> list[dict[str, object]]:
    with SFT_EXAMPLES.open(encoding="utf-8") as f:
        return [json.loads(line) for line in f]


@pytest.fixture(scope="session")
def sp_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A directory holding only tokenizer.model, shaped like Baichuan-13B's."""
    return build_baichuan_like_sentencepiece(tmp_path_factory.mktemp("sp"))


@pytest.fixture(scope="session")
def sp_dummy_prefix_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The same, but with SentencePiece's dummy-prefix and whitespace folding switched on."""
    return build_baichuan_like_sentencepiece(
        tmp_path_factory.mktemp("sp_dummy"), add_dummy_prefix=True
    )


@pytest.fixture(scope="session")
def hf_marker_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A Hugging Face fast tokenizer with the Baichuan ids as special added tokens."""
    return build_marker_hf_tokenizer(tmp_path_factory.mktemp("hf_marker"))


@pytest.fixture(scope="session")
def chatml_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A Hugging Face fast tokenizer with a ChatML chat template (the generic profile)."""
    return build_chatml_hf_tokenizer(tmp_path_factory.mktemp("chatml"))
