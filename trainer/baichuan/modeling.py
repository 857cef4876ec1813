"""Baichuan (7B and 13B) for transformers 5, native: no `trust_remote_code`.

Written from the architecture: a LLaMA-style decoder (RMSNorm, SwiGLU MLP, pre-norm residual
blocks, untied head) whose attention projects q, k and v with one fused linear `W_pack`
([3 * hidden, hidden], no bias), so the original checkpoints load unchanged. Positions:
- "alibi" (Baichuan-13B): no rotary; every head h adds slope_h * (pos_k - pos_q) to its
  attention scores (Press et al.; the slopes of `alibi_slopes`, BLOOM's for any head count).
  The bias is computed from position ids, so packed rows whose position ids restart per
  conversation get each conversation's exact biases under a block-diagonal mask. Softmax is
  shift-invariant per row, so this equals the original's slope_h * pos_k form.
- "rope" (Baichuan-7B): rotary embeddings (rotate-half, theta `rope_theta`) on q and k.
See configuration.py for which one a config gets.

Attention runs through transformers' attention interface ("eager", "sdpa"): the model
builds one additive 4D mask (batch, heads or 1, q, k): causal plus a 2D padding mask, or the
caller's 4D mask (additive, or boolean True = attend) as given, plus the ALiBi bias.
"flex_attention" takes a BlockMask (the trainer's packed rows), a 2D padding mask or none
(causal) and adds ALiBi in a score_mod, so nothing dense is built; a 4D tensor mask raises.
Not supported: flash-attention (no ALiBi there; `_supports_flash_attn` is False).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from transformers import GenerationMixin, PreTrainedModel
from transformers.cache_utils import Cache, DynamicCache
from transformers.modeling_layers import GradientCheckpointingLayer
from transformers.modeling_outputs import BaseModelOutputWithPast, CausalLMOutputWithPast
from transformers.modeling_utils import ALL_ATTENTION_FUNCTIONS

from .configuration import BaichuanConfig


def alibi_slopes(num_heads: int) -> torch.Tensor:
    """ALiBi's per-head slopes (float32): for n the largest power of two <= num_heads, the
    geometric sequence 2^(-8/n), 2^(-16/n), ..., 2^(-8); for the remaining heads, the odd
    terms of the sequence for 2n: 2^(-4/n), 2^(-12/n), ... (as BLOOM's build_alibi_tensor)."""
    closest = 2 ** math.floor(math.log2(num_heads))
    base = 2.0 ** (-8.0 / closest)
    slopes = torch.pow(torch.tensor(base), torch.arange(1, closest + 1, dtype=torch.float32))
    if closest != num_heads:
        extra_base = torch.tensor(2.0 ** (-4.0 / closest))
        odd = torch.arange(1, 2 * (num_heads - closest) + 1, 2, dtype=torch.float32)
        extra = torch.pow(extra_base, odd)
        slopes = torch.cat([slopes, extra])
    return slopes


def alibi_bias(
    num_heads: int, query_positions: torch.Tensor, key_positions: torch.Tensor
) -> torch.Tensor:
    """(batch, heads, q, k) float32: slope_h * (key position - query position)."""
    slopes = alibi_slopes(num_heads).to(query_positions.device)
    distance = key_positions[:, None, :] - query_positions[:, :, None]  # (batch, q, k)
    return slopes[None, :, None, None] * distance[:, None, :, :].float()


def rotate_half(x: torch.Tensor) -> torch.Tensor:
    first, second = x.chunk(2, dim=-1)
    return torch.cat((-second, first), dim=-1)


def rotary_cos_sin(
    positions: torch.Tensor, head_dim: int, theta: float, dtype: torch.dtype
) -> tuple[torch.Tensor, torch.Tensor]:
    """cos and sin (batch, 1, q, head_dim) for rotate-half RoPE at `positions` (batch, q)."""
    inv_freq = 1.0 / (
        theta
        ** (torch.arange(0, head_dim, 2, dtype=torch.float32, device=positions.device) / head_dim)
    )
    freqs = positions[..., None].float() * inv_freq  # (batch, q, head_dim / 2)
    angles = torch.cat((freqs, freqs), dim=-1)[:, None, :, :]
    return angles.cos().to(dtype), angles.sin().to(dtype)


class BaichuanRMSNorm(nn.Module):
    def __init__(self, hidden_size: int, eps: float) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(hidden_size))
        self.eps = eps

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        dtype = hidden_states.dtype
        x = hidden_states.float()
        x = x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps)
        return self.weight * x.to(dtype)


class BaichuanMLP(nn.Module):
    def __init__(self, config: BaichuanConfig) -> None:
        super().__init__()
        self.gate_proj = nn.Linear(config.hidden_size, config.intermediate_size, bias=False)
        self.up_proj = nn.Linear(config.hidden_size, config.intermediate_size, bias=False)
        self.down_proj = nn.Linear(config.intermediate_size, config.hidden_size, bias=False)
        if config.hidden_act != "silu":
            raise ValueError(f"Baichuan uses silu, not {config.hidden_act!r}")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        down: torch.Tensor = self.down_proj(F.silu(self.gate_proj(x)) * self.up_proj(x))
        return down


def eager_attention_forward(
    module: nn.Module,
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    attention_mask: torch.Tensor | None,
    scaling: float,
    dropout: float = 0.0,
    **kwargs: Any,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Softmax attention in float32 with the additive mask; output (batch, q, heads, dim)."""
    scores = torch.matmul(query, key.transpose(2, 3)) * scaling
    if attention_mask is not None:
        scores = scores + attention_mask
    weights = F.softmax(scores, dim=-1, dtype=torch.float32).to(query.dtype)
    weights = F.dropout(weights, p=dropout, training=module.training)
    output = torch.matmul(weights, value).transpose(1, 2).contiguous()
    return output, weights


@dataclass(frozen=True)
class FlexMask:
    """What flex_attention needs instead of a dense mask: the BlockMask (which pairs may
    attend), and for ALiBi the slopes and positions its score_mod reads."""

    block_mask: Any  # torch.nn.attention.flex_attention.BlockMask
    slopes: torch.Tensor | None  # (heads,) float32; None: no bias (RoPE)
    query_positions: torch.Tensor  # (batch, q)
    key_positions: torch.Tensor  # (batch, past + q)


def flex_attention_forward(
    module: nn.Module,
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    mask: FlexMask,
    scaling: float,
) -> torch.Tensor:
    """FlexAttention with the ALiBi bias as a score_mod (nothing dense is materialized):
    score + slope_h * (pos_k - pos_q). Compiled on GPUs (transformers' cached wrapper); the
    uncompiled reference kernel elsewhere (the CPU: forward only, it has no backward)."""
    from torch.nn.attention.flex_attention import flex_attention
    from transformers.integrations.flex_attention import compile_friendly_flex_attention

    score_mod = None
    if mask.slopes is not None:
        slopes, queries, keys = mask.slopes, mask.query_positions, mask.key_positions

        def alibi_score_mod(
            score: torch.Tensor, b: torch.Tensor, h: torch.Tensor, q: torch.Tensor, k: torch.Tensor
        ) -> torch.Tensor:
            return score + slopes[h] * (keys[b, k] - queries[b, q])

        score_mod = alibi_score_mod
    kwargs: dict[str, Any] = {"score_mod": score_mod, "block_mask": mask.block_mask}
    if query.device.type == "cuda":
        output = compile_friendly_flex_attention(
            query, key, value, training=module.training, scale=scaling, **kwargs
        )
    else:
        output = flex_attention(query, key, value, scale=scaling, **kwargs)
    assert isinstance(output, torch.Tensor)
    return output.transpose(1, 2).contiguous()


class BaichuanAttention(nn.Module):
    def __init__(self, config: BaichuanConfig, layer_idx: int) -> None:
        super().__init__()
        self.config = config
        self.layer_idx = layer_idx
        self.num_heads = config.num_attention_heads
        self.head_dim = config.head_dim
        self.hidden_size = config.hidden_size
        self.scaling = self.head_dim**-0.5
        self.num_key_value_groups = 1
        self.is_causal = True
        self.W_pack = nn.Linear(self.hidden_size, 3 * self.hidden_size, bias=False)
        self.o_proj = nn.Linear(self.hidden_size, self.hidden_size, bias=False)

    def forward(
        self,
        hidden_states: torch.Tensor,
        attention_mask: torch.Tensor | FlexMask | None,
        rotary: tuple[torch.Tensor, torch.Tensor] | None,
        cache: Cache | None,
        **kwargs: Any,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        batch, length, _ = hidden_states.shape
        qkv = self.W_pack(hidden_states).view(batch, length, 3, self.num_heads, self.head_dim)
        query, key, value = (t.transpose(1, 2) for t in qkv.unbind(dim=2))
        if rotary is not None:
            cos, sin = rotary
            query = query * cos + rotate_half(query) * sin
            key = key * cos + rotate_half(key) * sin
        if cache is not None:
            key, value = cache.update(key, value, self.layer_idx)
        if isinstance(attention_mask, FlexMask):
            output = flex_attention_forward(self, query, key, value, attention_mask, self.scaling)
            output = output.reshape(batch, length, self.hidden_size)
            flexed: torch.Tensor = self.o_proj(output)
            return flexed, None
        interface: Callable[..., tuple[torch.Tensor, torch.Tensor | None]] = (
            ALL_ATTENTION_FUNCTIONS.get_interface(
                self.config._attn_implementation, eager_attention_forward
            )
        )
        output, weights = interface(
            self,
            query,
            key,
            value,
            attention_mask,
            dropout=0.0,
            scaling=self.scaling,
            **kwargs,
        )
        output = output.reshape(batch, length, self.hidden_size).contiguous()
        projected: torch.Tensor = self.o_proj(output)
        return projected, weights


class BaichuanDecoderLayer(GradientCheckpointingLayer):  # type: ignore[no-untyped-call]
    def __init__(self, config: BaichuanConfig, layer_idx: int) -> None:
        super().__init__()
        self.self_attn = BaichuanAttention(config, layer_idx)
        self.mlp = BaichuanMLP(config)
        self.input_layernorm = BaichuanRMSNorm(config.hidden_size, config.rms_norm_eps)
        self.post_attention_layernorm = BaichuanRMSNorm(config.hidden_size, config.rms_norm_eps)

    def forward(
        self,
        hidden_states: torch.Tensor,
        attention_mask: torch.Tensor | FlexMask | None = None,
        rotary: tuple[torch.Tensor, torch.Tensor] | None = None,
        cache: Cache | None = None,
        **kwargs: Any,
    ) -> torch.Tensor:
        attended, _ = self.self_attn(
            self.input_layernorm(hidden_states), attention_mask, rotary, cache, **kwargs
        )
        hidden_states = hidden_states + attended
        output: torch.Tensor = hidden_states + self.mlp(
            self.post_attention_layernorm(hidden_states)
        )
        return output


class BaichuanPreTrainedModel(PreTrainedModel):  # type: ignore[no-untyped-call]
    config_class = BaichuanConfig
    config: BaichuanConfig
    base_model_prefix = "model"
    supports_gradient_checkpointing = True
    _no_split_modules = ["BaichuanDecoderLayer"]  # noqa: RUF012 (PreTrainedModel's own type)
    _supports_sdpa = True
    _supports_flash_attn = False
    _supports_flex_attn = True
    _supports_attention_backend = False


def _positions(
    attention_mask: torch.Tensor | None,
    position_ids: torch.Tensor | None,
    batch: int,
    length: int,
    past: int,
    device: torch.device,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Query positions (batch, q) and key positions (batch, past + q).

    Given position ids are the queries'; without a cache they are the keys' too (packed rows).
    Otherwise positions count real tokens of a 2D padding mask (left padding starts at 0),
    or 0, 1, 2, ... over the cache and the new tokens."""
    total = past + length
    if attention_mask is not None and attention_mask.dim() == 2:
        counted = (attention_mask.long().cumsum(-1) - 1).clamp(min=0)[:, -total:]
    else:
        counted = torch.arange(total, device=device).expand(batch, total)
    queries = position_ids if position_ids is not None else counted[:, past:]
    keys = queries if past == 0 else counted
    return queries, keys


def _additive_mask(
    attention_mask: torch.Tensor | None,
    batch: int,
    length: int,
    past: int,
    dtype: torch.dtype,
    device: torch.device,
) -> torch.Tensor:
    """(batch, 1 or heads, q, past + q) float32: 0 where attending, the dtype's minimum not."""
    minimum = torch.finfo(dtype).min
    if attention_mask is not None and attention_mask.dim() == 4:
        if attention_mask.dtype == torch.bool:
            zeros = torch.zeros((), dtype=torch.float32, device=device)
            return torch.where(attention_mask, zeros, minimum)
        return attention_mask.float()
    if attention_mask is not None and attention_mask.dim() != 2:
        raise ValueError("attention_mask must be 2D (padding) or 4D (additive or boolean)")
    total = past + length
    query_index = torch.arange(past, total, device=device)
    allowed = torch.arange(total, device=device)[None, :] <= query_index[:, None]
    allowed = allowed[None, None, :, :].expand(batch, 1, length, total)
    if attention_mask is not None:
        allowed = allowed & attention_mask[:, None, None, -total:].bool()
    mask = torch.zeros(allowed.shape, dtype=torch.float32, device=device)
    return mask.masked_fill(~allowed, minimum)


class BaichuanModel(BaichuanPreTrainedModel):  # type: ignore[no-untyped-call]
    def __init__(self, config: BaichuanConfig) -> None:
        super().__init__(config)
        self.embed_tokens: nn.Module = nn.Embedding(
            config.vocab_size, config.hidden_size, config.pad_token_id
        )
        self.layers = nn.ModuleList(
            [BaichuanDecoderLayer(config, i) for i in range(config.num_hidden_layers)]
        )
        self.norm = BaichuanRMSNorm(config.hidden_size, config.rms_norm_eps)
        self.gradient_checkpointing = False
        self.post_init()  # type: ignore[no-untyped-call]

    def get_input_embeddings(self) -> nn.Module:
        embeddings: nn.Module = self.embed_tokens
        return embeddings

    def set_input_embeddings(self, value: nn.Module) -> None:
        self.embed_tokens = value

    def attention_bias(
        self,
        attention_mask: Any,
        position_ids: torch.Tensor | None,
        batch: int,
        length: int,
        past: int,
        dtype: torch.dtype,
        device: torch.device,
    ) -> tuple[torch.Tensor | FlexMask, torch.Tensor]:
        """What every layer's attention takes as its mask, and the query positions: for
        flex_attention a FlexMask (the given BlockMask, else causal and padding); otherwise the
        additive mask in `dtype`, ALiBi included."""
        if self.config._attn_implementation == "flex_attention":
            return self._flex_mask(attention_mask, position_ids, batch, length, past, device)
        if attention_mask is not None and not isinstance(attention_mask, torch.Tensor):
            raise ValueError(
                "a FlexAttention BlockMask needs attn_implementation='flex_attention'; "
                "eager and sdpa take a 2D or 4D tensor attention_mask"
            )
        queries, keys = _positions(attention_mask, position_ids, batch, length, past, device)
        mask = _additive_mask(attention_mask, batch, length, past, dtype, device)
        if self.config.position_embedding == "alibi":
            bias = alibi_bias(self.config.num_attention_heads, queries, keys)
            mask = (mask + bias).clamp(min=torch.finfo(dtype).min)
        return mask.to(dtype), queries

    def _flex_mask(
        self,
        attention_mask: Any,
        position_ids: torch.Tensor | None,
        batch: int,
        length: int,
        past: int,
        device: torch.device,
    ) -> tuple[FlexMask, torch.Tensor]:
        from torch.nn.attention.flex_attention import BlockMask, create_block_mask

        padding = None
        if isinstance(attention_mask, torch.Tensor) and attention_mask.dim() == 2:
            padding = attention_mask  # generate() passes one, all ones without padding
        elif attention_mask is not None and not isinstance(attention_mask, BlockMask):
            raise NotImplementedError(
                "Baichuan's flex_attention takes a BlockMask, a 2D padding mask or none, not "
                "a 4D tensor mask; use sdpa or eager for those"
            )
        if not isinstance(attention_mask, BlockMask):
            real = None if padding is None else padding[:, -(past + length) :].bool()

            def causal(b: Any, h: Any, q: Any, k: Any) -> Any:
                allowed = q + past >= k
                return allowed if real is None else allowed & real[b, k]

            attention_mask = create_block_mask(
                causal,
                B=None if real is None else batch,
                H=None,
                Q_LEN=length,
                KV_LEN=past + length,
                device=device,
            )
        queries, keys = _positions(padding, position_ids, batch, length, past, device)
        slopes = None
        if self.config.position_embedding == "alibi":
            slopes = alibi_slopes(self.config.num_attention_heads).to(device)
        return FlexMask(attention_mask, slopes, queries, keys), queries

    def forward(
        self,
        input_ids: torch.Tensor | None = None,
        attention_mask: Any = None,  # 2D or 4D tensor, or (flex_attention) a BlockMask
        position_ids: torch.Tensor | None = None,
        cache: Cache | None = None,
        inputs_embeds: torch.Tensor | None = None,
        use_cache: bool | None = None,
        past_key_values: Cache | None = None,
        **kwargs: Any,
    ) -> BaseModelOutputWithPast:
        if (input_ids is None) == (inputs_embeds is None):
            raise ValueError("pass exactly one of input_ids and inputs_embeds")
        if inputs_embeds is None:
            inputs_embeds = self.embed_tokens(input_ids)
        assert inputs_embeds is not None
        cache = cache if cache is not None else past_key_values
        use_cache = self.config.use_cache if use_cache is None else use_cache
        if not use_cache:
            cache = None
        elif cache is None:
            cache = DynamicCache(config=self.config)
        batch, length, _ = inputs_embeds.shape
        past = cache.get_seq_length() if cache is not None else 0
        mask, queries = self.attention_bias(
            attention_mask,
            position_ids,
            batch,
            length,
            past,
            inputs_embeds.dtype,
            inputs_embeds.device,
        )
        rotary = None
        if self.config.position_embedding == "rope":
            rotary = rotary_cos_sin(
                queries, self.config.head_dim, self.config.rope_theta, inputs_embeds.dtype
            )
        kwargs.pop("output_attentions", None)
        kwargs.pop("output_hidden_states", None)
        kwargs.pop("return_dict", None)
        hidden_states = inputs_embeds
        for layer in self.layers:
            hidden_states = layer(hidden_states, mask, rotary, cache, **kwargs)
        return BaseModelOutputWithPast(last_hidden_state=self.norm(hidden_states), cache=cache)


class BaichuanForCausalLM(BaichuanPreTrainedModel, GenerationMixin):  # type: ignore[no-untyped-call]
    def __init__(self, config: BaichuanConfig) -> None:
        super().__init__(config)
        self.model = BaichuanModel(config)
        self.lm_head = nn.Linear(config.hidden_size, config.vocab_size, bias=False)
        self.post_init()  # type: ignore[no-untyped-call]

    def get_input_embeddings(self) -> nn.Module:
        embeddings: nn.Module = self.model.embed_tokens
        return embeddings

    def set_input_embeddings(self, value: nn.Module) -> None:
        self.model.embed_tokens = value

    def get_output_embeddings(self) -> nn.Module:
        head: nn.Module = self.lm_head
        return head

    def set_output_embeddings(self, value: nn.Module) -> None:
        self.lm_head = value

    def forward(
        self,
        input_ids: torch.Tensor | None = None,
        attention_mask: Any = None,  # 2D or 4D tensor, or (flex_attention) a BlockMask
        position_ids: torch.Tensor | None = None,
        cache: Cache | None = None,
        inputs_embeds: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        use_cache: bool | None = None,
        logits_to_keep: int = 0,
        past_key_values: Cache | None = None,
        **kwargs: Any,
    ) -> CausalLMOutputWithPast:
        """Logits (batch, q, vocab); with `labels`, the mean next-token cross-entropy
        (labels shifted here, -100 ignored)."""
        outputs = self.model(
            input_ids=input_ids,
            attention_mask=attention_mask,
            position_ids=position_ids,
            cache=cache if cache is not None else past_key_values,
            inputs_embeds=inputs_embeds,
            use_cache=use_cache,
            **kwargs,
        )
        hidden_states = outputs.last_hidden_state
        if logits_to_keep:
            hidden_states = hidden_states[:, -logits_to_keep:, :]
        logits = self.lm_head(hidden_states)
        loss = None
        if labels is not None:
            loss = F.cross_entropy(
                logits[:, :-1, :].float().reshape(-1, logits.shape[-1]),
                labels[:, 1:].reshape(-1).to(logits.device),
                ignore_index=-100,
            )
        return CausalLMOutputWithPast(loss=loss, logits=logits, cache=outputs.cache)
