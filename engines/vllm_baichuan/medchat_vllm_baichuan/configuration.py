"""Baichuan's config.json, read without the 2023 remote code.

The same rule as the project's native implementation (trainer/baichuan/configuration.py),
restated here because this package is installed alone into a vLLM environment:
- `position_embedding` ("alibi" or "rope") when the file names it (the trainer's
  save_pretrained writes it);
- else "alibi" when `model_max_length` is present (Baichuan-13B's config.json), "rope" when
  only `max_position_embeddings` is (Baichuan-7B's), and "alibi" (the 13B) when neither is.

The architecture name is not used: Baichuan-13B says `BaichuanForCausalLM`, Baichuan-7B
`BaiChuanForCausalLM`, and both get the class of model.py, which reads the rule's result.
`auto_map` (the remote code) is dropped. Other unknown keys stay as attributes.
"""

from __future__ import annotations

from typing import Any

from transformers import PretrainedConfig

POSITION_EMBEDDINGS = ("alibi", "rope")


class BaichuanConfig(PretrainedConfig):  # type: ignore[no-untyped-call]
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
        self.position_embedding = position_embedding_of(self)
        if self.hidden_size % self.num_attention_heads:
            raise ValueError(
                f"hidden_size {self.hidden_size} is not a multiple of "
                f"num_attention_heads {self.num_attention_heads}"
            )
        super().__post_init__(**kwargs)  # type: ignore[no-untyped-call]

    @property
    def head_dim(self) -> int:
        return int(self.hidden_size // self.num_attention_heads)


def position_embedding_of(config: Any) -> str:
    """ "alibi" or "rope" for any config object with the original keys: this module's class,
    or the checkpoint's own 2023 class when vLLM runs with --trust-remote-code (transformers
    then prefers the remote class, which has no `position_embedding`)."""
    explicit = getattr(config, "position_embedding", None)
    if explicit is None:
        rope = (
            getattr(config, "model_max_length", None) is None
            and getattr(config, "max_position_embeddings", None) is not None
        )
        explicit = "rope" if rope else "alibi"
    if explicit not in POSITION_EMBEDDINGS:
        raise ValueError(
            f"position_embedding must be one of {POSITION_EMBEDDINGS}, not {explicit!r}"
        )
    return str(explicit)


def context_length_of(config: Any) -> int:
    """The positions the model was trained for (13B: model_max_length, 7B:
    max_position_embeddings; 4096 for both originals)."""
    for key in ("model_max_length", "max_position_embeddings"):
        value = getattr(config, key, None)
        if value:
            return int(value)
    return 4096
