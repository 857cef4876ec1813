"""Evaluation settings (prefix MEDCHAT_), for the worker's runs and the CLI's defaults."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from services.core.settings import PlatformSettings

# DISC-MedLLM's eval/ folder, from the shared material beside a checkout.
DEFAULT_DATA_DIR = Path(__file__).resolve().parents[3] / "shared" / "data" / "disc-medllm" / "eval"


class EvalSettings(PlatformSettings):
    eval_gateway_url: str = "http://127.0.0.1:8000"  # the model under test is reached here
    eval_data_dir: Path = DEFAULT_DATA_DIR  # holds samples/ (and DISC-MedLLM's published files)
    eval_results_dir: Path = Path("var/medchat/evals")  # the worker's JSONL, one per run
    eval_concurrency: int = 4  # cases in flight at once per run
    eval_turns: int = 3  # doctor replies per dialogue (DISC-MedLLM's dialogues have 3)
    eval_timeout_s: float = 300.0  # one request to the gateway, the patient or the judge
    eval_retries: int = 3  # transport errors, 429 and 5xx, with backoff
    eval_judge_retries: int = 2  # more judge calls when its reply cannot be parsed
    eval_patient_api_key: str | None = None
    eval_judge_api_key: str | None = None


@lru_cache
def get_eval_settings() -> EvalSettings:
    return EvalSettings()
