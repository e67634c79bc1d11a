"""EGGROLL: evolution strategies with low-rank perturbations.

Reference: B. Sarkar et al., "Evolution Strategies at the Hyperscale" (EGGROLL), 2025.

For every 2-D weight ``W`` (m x n) and noise pair ``k`` the factors ``A_k`` (m x r) and ``B_k``
(n x r) are standard normal, drawn from ``member_key(key, generation, k, param_index)`` and never
stored. Member ``i`` of pair ``k`` is evaluated at ``W + sigma E_i`` with

    E_i = +-A_k B_k^T / sqrt(r)          (+ for member 2k, - for member 2k+1)

whose entries have unit variance like dense Gaussian noise. The network applies it as
``x W^T + (+-sigma / sqrt(r)) (x B_k) A_k^T`` (``perturbation.LowRank``), never forming the m x n
product per member. The update direction ``g = 1 / (N sigma) sum_i f~_i E_i`` of that weight is

    g = 1 / (N sigma sqrt(r)) * [w_1 A_1 | ... | w_K A_K] (m, K r) @ [B_1 | ... | B_K]^T (K r, n)

with ``w_k`` the signed sum of the pair's shaped fitness: one matmul, one m x n result. Other
parameters (biases, learned leaks and thresholds) get dense Gaussian noise.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

import jax
import jax.numpy as jnp

from eggroll_snn.errors import ConfigError
from eggroll_snn.perturbation import LowRank
from eggroll_snn.strategies import noise
from eggroll_snn.strategies.base import EvolutionStrategy


@dataclass(frozen=True)
class EggrollStrategy(EvolutionStrategy):
    """Low-rank ES (maximises fitness); all options of :class:`StrategyConfig` plus ``rank``.

    Attributes:
      rank: r, rank of each member's weight perturbation; 1 <= r <= min(m, n) of every weight.
    """

    name: ClassVar[str] = "eggroll"
    rank: int = 1

    def __post_init__(self):
        super().__post_init__()
        if isinstance(self.rank, bool) or not isinstance(self.rank, int) or self.rank < 1:
            raise ConfigError(f"rank={self.rank!r} must be a positive integer")

    def _check_params(self, params) -> None:
        for path, leaf in jax.tree_util.tree_flatten_with_path(params)[0]:
            if leaf.ndim == 2 and self.rank > min(leaf.shape):
                raise ConfigError(
                    f"rank={self.rank} exceeds min(m, n) = {min(leaf.shape)} of the {leaf.shape[0]} x "
                    f"{leaf.shape[1]} weight params{jax.tree_util.keystr(path)}; a rank-r perturbation "
                    f"needs r <= min(m, n): use rank <= {min(leaf.shape)}"
                )

    def _weight_perturbations(self, keys, shape, member_scales):
        a, b = noise.low_rank_factors(keys, shape, self.rank)
        members = noise.member_pairs(self.population_size, self.antithetic)
        return LowRank(a=a[members], b=b[members], scale=member_scales / math.sqrt(self.rank))

    def _weight_direction(self, keys, shape, pair_weights):
        a, b = noise.low_rank_factors(keys, shape, self.rank)
        # Contracting over (pair, rank) at once is the (m, K r) @ (K r, n) matmul of the docstring.
        weighted = a * pair_weights[:, None, None]
        return jnp.einsum("kmr,knr->mn", weighted, b) / math.sqrt(self.rank)


__all__ = ["EggrollStrategy"]
