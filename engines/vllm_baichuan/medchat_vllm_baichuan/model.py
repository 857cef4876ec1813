"""Baichuan-13B (ALiBi) and Baichuan-7B (RoPE) on vLLM's own layers.

The architecture (the reference is the project's trainer/baichuan/modeling.py): a pre-norm
decoder with RMSNorm, a SwiGLU MLP (gate_proj, up_proj, down_proj), an untied LM head, and
attention whose q, k and v come out of one fused projection `W_pack` of shape
[3 * hidden, hidden] with rows [q; k; v], each `hidden` rows in head order. Positions come
from ALiBi biases (13B) or rotate-half rotary embeddings with theta `rope_theta` (7B);
configuration.py decides which, from config.json as the native implementation does.

vLLM's pieces:
- `W_pack` is a QKVParallelLinear. Its fused on-disk weight has exactly the row order vLLM
  expects ([q; k; v]), so the layer's own loader splits it per tensor-parallel rank (called
  without a shard id it cuts q, k and v apart and takes this rank's heads of each). For LoRA
  it is a packed module of one (`W_pack` -> [`W_pack`]): an adapter trained on the fused
  projection (PEFT's "all-linear" targets `W_pack`) is cut per rank the same way.
- gate_proj and up_proj load into one MergedColumnParallelLinear `gate_up_proj` (shards 0
  and 1); LoRA adapters on the two are merged into it (`packed_modules_mapping`).
- ALiBi: `Attention(..., alibi_slopes=...)` with the slopes of this rank's heads only
  (alibi.alibi_slopes_shard): with tensor parallelism rank r holds heads [r*h, (r+1)*h).
- o_proj and down_proj are RowParallelLinear; embeddings VocabParallelEmbedding; the head a
  ParallelLMHead. Pipeline parallelism as in vLLM's Llama (make_layers, intermediate
  tensors).

Not supported: Baichuan2 (its lm_head normalizes its weight rows: "NormHead"); refused at
load with a clear error rather than served wrong.
"""

from __future__ import annotations

from collections.abc import Iterable
from itertools import islice

import torch
from torch import nn
from vllm.compilation.decorators import support_torch_compile
from vllm.config import CacheConfig, VllmConfig
from vllm.distributed import (
    get_pp_group,
    get_tensor_model_parallel_rank,
    get_tensor_model_parallel_world_size,
)
from vllm.model_executor.layers.activation import SiluAndMul
from vllm.model_executor.layers.attention import Attention
from vllm.model_executor.layers.layernorm import RMSNorm
from vllm.model_executor.layers.linear import (
    MergedColumnParallelLinear,
    QKVParallelLinear,
    RowParallelLinear,
)
from vllm.model_executor.layers.logits_processor import LogitsProcessor
from vllm.model_executor.layers.quantization import QuantizationConfig
from vllm.model_executor.layers.rotary_embedding import get_rope
from vllm.model_executor.layers.vocab_parallel_embedding import (
    ParallelLMHead,
    VocabParallelEmbedding,
)
from vllm.model_executor.models.interfaces import SupportsLoRA, SupportsPP, SupportsQuant
from vllm.model_executor.models.utils import (
    AutoWeightsLoader,
    PPMissingLayer,
    WeightsMapper,
    make_empty_intermediate_tensors_factory,
    make_layers,
    maybe_prefix,
)
from vllm.sequence import IntermediateTensors

from .alibi import alibi_slopes_shard
from .configuration import context_length_of, position_embedding_of

BAICHUAN2_VOCAB_SIZE = 125696  # Baichuan2-7B/13B: NormHead, not supported here


class BaichuanMLP(nn.Module):
    def __init__(
        self,
        hidden_size: int,
        intermediate_size: int,
        hidden_act: str,
        quant_config: QuantizationConfig | None,
        prefix: str,
    ) -> None:
        super().__init__()
        if hidden_act != "silu":
            raise ValueError(f"Baichuan uses silu, not {hidden_act!r}")
        self.gate_up_proj = MergedColumnParallelLinear(
            hidden_size,
            [intermediate_size, intermediate_size],
            bias=False,
            quant_config=quant_config,
            prefix=f"{prefix}.gate_up_proj",
        )
        self.down_proj = RowParallelLinear(
            intermediate_size,
            hidden_size,
            bias=False,
            quant_config=quant_config,
            prefix=f"{prefix}.down_proj",
        )
        self.act_fn = SiluAndMul()  # silu(gate) * up, on the two halves of gate_up_proj

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        gate_up, _ = self.gate_up_proj(x)
        out: torch.Tensor = self.down_proj(self.act_fn(gate_up))[0]
        return out


class BaichuanAttention(nn.Module):
    def __init__(
        self,
        config: object,
        cache_config: CacheConfig | None,
        quant_config: QuantizationConfig | None,
        prefix: str,
    ) -> None:
        super().__init__()
        hidden_size: int = config.hidden_size  # type: ignore[attr-defined]
        total_heads: int = config.num_attention_heads  # type: ignore[attr-defined]
        tp_size = get_tensor_model_parallel_world_size()
        if total_heads % tp_size:
            raise ValueError(
                f"{total_heads} attention heads cannot be split over {tp_size} "
                "tensor-parallel ranks"
            )
        self.num_heads = total_heads // tp_size
        self.head_dim = hidden_size // total_heads
        self.W_pack = QKVParallelLinear(
            hidden_size,
            self.head_dim,
            total_heads,
            bias=False,
            quant_config=quant_config,
            prefix=f"{prefix}.W_pack",
        )
        self.o_proj = RowParallelLinear(
            total_heads * self.head_dim,
            hidden_size,
            bias=False,
            quant_config=quant_config,
            prefix=f"{prefix}.o_proj",
        )
        slopes: list[float] | None = None
        self.rotary_emb: nn.Module | None = None
        if position_embedding_of(config) == "alibi":
            slopes = alibi_slopes_shard(total_heads, get_tensor_model_parallel_rank(), tp_size)
        else:
            self.rotary_emb = get_rope(
                self.head_dim,
                max_position=context_length_of(config),
                is_neox_style=True,  # rotate-half, as Baichuan-7B
                rope_parameters={
                    "rope_type": "default",
                    # Baichuan-7B's own config has no rope_theta: 10000, as its code.
                    "rope_theta": float(getattr(config, "rope_theta", 10000.0)),
                },
            )
        self.attn = Attention(
            self.num_heads,
            self.head_dim,
            self.head_dim**-0.5,
            num_kv_heads=self.num_heads,
            alibi_slopes=slopes,
            cache_config=cache_config,
            quant_config=quant_config,
            prefix=f"{prefix}.attn",
        )

    def forward(self, positions: torch.Tensor, hidden_states: torch.Tensor) -> torch.Tensor:
        qkv, _ = self.W_pack(hidden_states)
        # This rank's [q; k; v] shards, each num_heads * head_dim wide.
        q, k, v = qkv.chunk(3, dim=-1)
        if self.rotary_emb is not None:
            q, k = self.rotary_emb(positions, q, k)
        out: torch.Tensor = self.o_proj(self.attn(q, k, v))[0]
        return out


class BaichuanDecoderLayer(nn.Module):
    def __init__(self, vllm_config: VllmConfig, prefix: str) -> None:
        super().__init__()
        config = vllm_config.model_config.hf_config
        quant_config = vllm_config.quant_config
        self.self_attn = BaichuanAttention(
            config, vllm_config.cache_config, quant_config, prefix=f"{prefix}.self_attn"
        )
        self.mlp = BaichuanMLP(
            config.hidden_size,
            config.intermediate_size,
            config.hidden_act,
            quant_config,
            prefix=f"{prefix}.mlp",
        )
        self.input_layernorm = RMSNorm(config.hidden_size, eps=config.rms_norm_eps)
        self.post_attention_layernorm = RMSNorm(config.hidden_size, eps=config.rms_norm_eps)

    def forward(
        self,
        positions: torch.Tensor,
        hidden_states: torch.Tensor,
        residual: torch.Tensor | None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        # vLLM's fused "add residual, then norm": returns (norm(x + residual), x + residual).
        if residual is None:
            residual = hidden_states
            hidden_states = self.input_layernorm(hidden_states)
        else:
            hidden_states, residual = self.input_layernorm(hidden_states, residual)
        hidden_states = self.self_attn(positions, hidden_states)
        hidden_states, residual = self.post_attention_layernorm(hidden_states, residual)
        return self.mlp(hidden_states), residual


# Explicit dynamic dimensions: this module's annotations are strings (future import), which
# the decorator cannot read to find the token dimension itself.
@support_torch_compile(
    dynamic_arg_dims={
        "input_ids": 0,
        "positions": 0,
        "intermediate_tensors": 0,
        "inputs_embeds": 0,
    }
)
class BaichuanModel(nn.Module):
    def __init__(self, *, vllm_config: VllmConfig, prefix: str = "") -> None:
        super().__init__()
        config = vllm_config.model_config.hf_config
        self.config = config
        pp = get_pp_group()
        self.embed_tokens: VocabParallelEmbedding | PPMissingLayer = (
            VocabParallelEmbedding(
                config.vocab_size, config.hidden_size, quant_config=vllm_config.quant_config
            )
            # A tied head (no Baichuan checkpoint has one) reads the embedding on the last rank.
            if pp.is_first_rank or (config.tie_word_embeddings and pp.is_last_rank)
            else PPMissingLayer()  # type: ignore[no-untyped-call]
        )
        self.start_layer, self.end_layer, self.layers = make_layers(
            config.num_hidden_layers,
            lambda prefix: BaichuanDecoderLayer(vllm_config, prefix),
            prefix=f"{prefix}.layers",
        )
        self.norm: RMSNorm | PPMissingLayer = (
            RMSNorm(config.hidden_size, eps=config.rms_norm_eps)
            if pp.is_last_rank
            else PPMissingLayer()  # type: ignore[no-untyped-call]
        )
        self.make_empty_intermediate_tensors = make_empty_intermediate_tensors_factory(
            ["hidden_states", "residual"], config.hidden_size
        )

    def embed_input_ids(self, input_ids: torch.Tensor) -> torch.Tensor:
        embedded: torch.Tensor = self.embed_tokens(input_ids)
        return embedded

    def forward(
        self,
        input_ids: torch.Tensor | None,
        positions: torch.Tensor,
        intermediate_tensors: IntermediateTensors | None,
        inputs_embeds: torch.Tensor | None = None,
    ) -> torch.Tensor | IntermediateTensors:
        if get_pp_group().is_first_rank:
            if inputs_embeds is not None:
                hidden_states = inputs_embeds
            else:
                assert input_ids is not None
                hidden_states = self.embed_input_ids(input_ids)
            residual = None
        else:
            assert intermediate_tensors is not None
            hidden_states = intermediate_tensors["hidden_states"]
            residual = intermediate_tensors["residual"]
        for layer in islice(self.layers, self.start_layer, self.end_layer):
            hidden_states, residual = layer(positions, hidden_states, residual)
        assert residual is not None
        if not get_pp_group().is_last_rank:
            return IntermediateTensors({"hidden_states": hidden_states, "residual": residual})
        normed: torch.Tensor = self.norm(hidden_states, residual)[0]
        return normed


class BaichuanForCausalLM(nn.Module, SupportsLoRA, SupportsPP, SupportsQuant):
    """Served for both `BaichuanForCausalLM` (13B) and `BaiChuanForCausalLM` (7B)."""

    # The checkpoint's gate_proj/up_proj go into gate_up_proj; W_pack loads as it is.
    hf_to_vllm_mapper = WeightsMapper(
        orig_to_new_stacked={
            ".gate_proj": (".gate_up_proj", 0),
            ".up_proj": (".gate_up_proj", 1),
        }
    )
    packed_modules_mapping = {  # noqa: RUF012 (vLLM's interface declares it so)
        "W_pack": ["W_pack"],
        "gate_up_proj": ["gate_proj", "up_proj"],
    }
    embedding_modules = {  # noqa: RUF012
        "embed_tokens": "input_embeddings",
        "lm_head": "output_embeddings",
    }

    def __init__(self, *, vllm_config: VllmConfig, prefix: str = "") -> None:
        super().__init__()
        config = vllm_config.model_config.hf_config
        if config.vocab_size == BAICHUAN2_VOCAB_SIZE:
            raise NotImplementedError(
                "this looks like Baichuan2 (vocabulary 125696), whose normalized LM head "
                "(NormHead) this plugin does not implement; it serves Baichuan-7B and "
                "Baichuan-13B (DISC-MedLLM)"
            )
        self.config = config
        self.quant_config = vllm_config.quant_config
        self.model = BaichuanModel(vllm_config=vllm_config, prefix=maybe_prefix(prefix, "model"))
        if get_pp_group().is_last_rank:
            self.lm_head: nn.Module = ParallelLMHead(
                config.vocab_size,
                config.hidden_size,
                quant_config=self.quant_config,
                prefix=maybe_prefix(prefix, "lm_head"),
            )
            if config.tie_word_embeddings:
                assert isinstance(self.model.embed_tokens, VocabParallelEmbedding)
                self.lm_head = self.lm_head.tie_weights(self.model.embed_tokens)
            self.logits_processor = LogitsProcessor(config.vocab_size)
        else:
            self.lm_head = PPMissingLayer()  # type: ignore[no-untyped-call]
        self.make_empty_intermediate_tensors = self.model.make_empty_intermediate_tensors

    def embed_input_ids(self, input_ids: torch.Tensor) -> torch.Tensor:
        return self.model.embed_input_ids(input_ids)

    def forward(
        self,
        input_ids: torch.Tensor | None,
        positions: torch.Tensor,
        intermediate_tensors: IntermediateTensors | None = None,
        inputs_embeds: torch.Tensor | None = None,
    ) -> torch.Tensor | IntermediateTensors:
        out: torch.Tensor | IntermediateTensors = self.model(
            input_ids, positions, intermediate_tensors, inputs_embeds
        )
        return out

    def compute_logits(self, hidden_states: torch.Tensor) -> torch.Tensor | None:
        logits: torch.Tensor | None = self.logits_processor(self.lm_head, hidden_states)
        return logits

    def load_weights(self, weights: Iterable[tuple[str, torch.Tensor]]) -> set[str]:
        loader = AutoWeightsLoader(self)
        loaded: set[str] = loader.load_weights(weights, mapper=self.hf_to_vllm_mapper)
        return loaded


class BaiChuanForCausalLM(BaichuanForCausalLM):
    """Baichuan-7B's architecture name; the class is the same (the config picks RoPE)."""
