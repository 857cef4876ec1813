"""Gateway settings (prefix MEDCHAT_), on top of the platform's shared ones."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from services.core.settings import PlatformSettings


class GatewaySettings(PlatformSettings):
    # The inference engine.
    engine_url: str = "http://127.0.0.1:8080"
    engine_protocol: Literal["tgi", "openai"] = "tgi"
    engine_model: str = "disc-medllm"  # the model name sent to OpenAI-compatible engines
    # The engine's model as /v1/models lists it, fine-tunes name their base and the registry
    # knows it (default: engine_model). Set it when the engine names its model otherwise,
    # e.g. by a path: one name for one model in the API, the console, the CLI and the registry.
    model_name: str = ""
    # Send top_k / repetition_penalty to OpenAI-compatible engines (vLLM, SGLang, TGI take
    # them; `transformers serve` refuses fields outside OpenAI's schema).
    engine_sampling_extras: bool = True
    engine_connect_timeout_s: float = 5.0
    engine_first_token_timeout_s: float = 60.0
    engine_total_timeout_s: float = 600.0
    engine_retries: int = 2  # only before the first token: a retry never repeats output
    # Used when the engine does not report its limits (/info on TGI).
    engine_max_total_tokens: int = 4096
    engine_max_input_tokens: int | None = None
    # "enforce": refuse to chat when the engine tokenizes the canary prompt differently;
    # "warn": log it and serve anyway (e.g. while migrating an engine).
    engine_tokenization_check: Literal["enforce", "warn"] = "enforce"
    # How the engine names a registered model (fine-tunes, other bases): "name" — by its
    # registry name, as vLLM `--lora-modules NAME=PATH` and TGI `LORA_ADAPTERS` declare it;
    # "path" — by its directory, as an unpinned `transformers serve` loads it on demand.
    engine_model_ref: Literal["name", "path"] = "name"
    # TGI's LORA_ADAPTERS, as given to TGI ("NAME=PATH,..."): TGI answers an unknown
    # adapter_id with the base model instead of an error, so only these can be chosen.
    engine_adapters: str = ""
    # vLLM started with --enable-lora and VLLM_ALLOW_RUNTIME_LORA_UPDATING=True: a chosen
    # adapter it does not list is loaded through /v1/load_lora_adapter.
    engine_runtime_lora: bool = False
    # How often the gateway checks that vLLM still has the chosen adapter (a restarted
    # vLLM has forgotten it) and loads it again.
    engine_adapter_check_s: float = 10.0
    # How long a gateway process keeps the admin's serving choice before reading it again.
    serving_refresh_s: float = 5.0

    # The conversation format.
    tokenizer_path: Path | None = None
    max_new_tokens: int = 1024
    # Where `medchat engine probe` writes its last result, which /readyz reports (default:
    # probe.json beside files_dir, on the data volume the gateway and the worker share).
    probe_record: Path | None = None

    # Sessions, context and limits.
    context_ttl_s: int = 24 * 3600
    cookie_name: str = "medchat_session"
    login_ttl_s: int = 30 * 24 * 3600
    max_body_bytes: int = 1 << 20
    max_file_bytes: int = 1 << 30  # an uploaded dataset (POST /v1/files)
    max_message_chars: int = 20_000
    max_sessions_per_user: int = 1000
    # Clinicians: how soon a case should be answered (its SLA clock), urgent or not.
    case_sla_urgent_minutes: int = 15
    case_sla_minutes: int = 24 * 60
    session_lock_wait_s: float = 30.0
    session_lease_s: float = 900.0
    auth_cache_s: float = 10.0  # how long an API-key lookup is remembered (0: never)
    usage_flush_s: float = 2.0  # how often per-key usage is written (0: on every request)
    rate_limit_patient_per_minute: int = 20  # per user, browser logins (web chat)
    rate_limit_key_per_minute: int = 600  # per API key (OpenAI-compatible API)
    # Guests need no credentials, so they are also limited per client address: new guest
    # sessions per hour, and chat turns per minute of all guests from one address together.
    rate_limit_guest_create_per_ip_per_hour: int = 60
    rate_limit_guest_chat_per_ip_per_minute: int = 60
    # Reverse proxies (comma-separated addresses or CIDR ranges) whose X-Forwarded-For is
    # believed; from anyone else it is ignored. Empty: the peer is the client.
    trusted_proxies: str = ""
    webui_dir: Path | None = None  # the built web UI (default: frontend/dist, if built)

    @property
    def served_model_name(self) -> str:
        return self.model_name or self.engine_model

    @property
    def probe_record_path(self) -> Path:
        return self.probe_record or self.files_dir.parent / "probe.json"


@lru_cache
def get_settings() -> GatewaySettings:
    return GatewaySettings()
