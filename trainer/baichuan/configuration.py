"""BaichuanConfig: the original Baichuan config.json keys, read without remote code.

Two position schemes share one layout (see modeling.py):
- Baichuan-13B (DISC-MedLLM's base): ALiBi attention biases, no rotary; its config.json
  names the context length `model_max_length`.
- Baichuan-7B: rotary positions (RoPE, theta 10000); its config.json names it
  `max_position_embeddings` and has no `model_max_length`.

The rule, as in the originals: `position_embedding` ("alibi" or "rope") when given
explicitly (save_pretrained writes it); otherwise "alibi" if `model_max_length` is present,
"rope" if only `max_position_embeddings` is, and "alibi" (the 13B defaults) if neither is.
Unknown keys of the original files (`torch_dtype`, ...) are kept as attributes and otherwise
ignored; `auto_map` (the 2023 remote code) is dropped, so a checkpoint saved from here never
points at code files it does not carry.
"""

from __future__ import annotations

from typing import Any

from transformers import PreTrainedConfig

POSITION_EMBEDDINGS = ("alibi", "rope")


class BaichuanConfig(PreTrainedConfig):  # type: ignore[no-untyped-call]
    """Defaults are Baichuan-13B's (hidden 5120, 40 layers, 40 heads, ALiBi)."""

    model_type = "baichuan"

    vocab_size: int = 64000
    hidden_size: int = 5120
    intermediate_size: int = 13696
    num_hidden_layers: int = 40
    num_attention_heads: int = 40
    hidden_act: str = "silu"
    model_max_length: int | None = None
    max_position_embeddings: int | None = None
    position_embedding: str | None = None
    rope_theta: float = 10000.0
    initializer_range: float = 0.02
    rms_norm_eps: float = 1e-6
    use_cache: bool = True
    pad_token_id: int | None = 0
    bos_token_id: int | None = 1
    eos_token_id: int | list[int] | None = 2
    tie_word_embeddings: bool = False

    def __post_init__(self, **kwargs: Any) -> None:
        kwargs.pop("auto_map", None)
        if self.position_embedding is None:
            if self.model_max_length is None and self.max_position_embeddings is not None:
                self.position_embedding = "rope"
            else:
                self.position_embedding = "alibi"
        if self.position_embedding not in POSITION_EMBEDDINGS:
            raise ValueError(
                f"position_embedding must be one of {POSITION_EMBEDDINGS}, "
                f"not {self.position_embedding!r}"
            )
        if self.hidden_size % self.num_attention_heads:
            raise ValueError(
                f"hidden_size {self.hidden_size} is not a multiple of "
                f"num_attention_heads {self.num_attention_heads}"
            )
        super().__post_init__(**kwargs)  # type: ignore[no-untyped-call]

    @property
    def head_dim(self) -> int:
        return int(self.hidden_size // self.num_attention_heads)
