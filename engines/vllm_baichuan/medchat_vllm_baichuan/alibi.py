"""ALiBi slopes (Press et al., "Train Short, Test Long"), and their tensor-parallel shards.

Pure Python (no torch, no vLLM), so the project's own test environment can check it against
the native implementation without installing vLLM.
"""

from __future__ import annotations

import math


def alibi_slopes(num_heads: int) -> list[float]:
    """Every head's slope. For n the largest power of two <= num_heads: the geometric
    sequence 2^(-8/n), 2^(-16/n), ..., 2^(-8); the heads beyond n take the odd terms of the
    sequence for 2n, 2^(-4/n), 2^(-12/n), ... (the paper's rule for other head counts;
    Baichuan-13B has 40 heads: 32 from the first sequence, 8 from the second)."""
    if num_heads < 1:
        raise ValueError(f"num_heads must be positive, not {num_heads}")
    closest = 2 ** math.floor(math.log2(num_heads))
    slopes = [2.0 ** (-8.0 * i / closest) for i in range(1, closest + 1)]
    odd_terms = range(1, 2 * (num_heads - closest), 2)
    slopes.extend(2.0 ** (-4.0 * i / closest) for i in odd_terms)
    return slopes


def alibi_slopes_shard(num_heads: int, tp_rank: int, tp_size: int) -> list[float]:
    """The slopes of the heads that tensor-parallel rank `tp_rank` of `tp_size` computes.

    vLLM's QKVParallelLinear gives rank r the contiguous heads [r * h, (r + 1) * h) with
    h = num_heads / tp_size (its q, k and v shards), so the slopes are cut the same way: a
    rank must bias its own heads, not the first h heads of the model."""
    if num_heads % tp_size:
        raise ValueError(
            f"{num_heads} attention heads cannot be split over {tp_size} tensor-parallel ranks"
        )
    per_rank = num_heads // tp_size
    return alibi_slopes(num_heads)[tp_rank * per_rank : (tp_rank + 1) * per_rank]
