"""EGGROLL: evolution strategies with low-rank perturbations.

Reference: B. Sarkar et al., "Evolution Strategies at the Hyperscale" (EGGROLL), 2025.

For every 2-D weight ``W`` (m x n) and noise pair ``k`` the factors ``A_k`` (m x r) and ``B_k``
(n x r), with ``r = min(rank, m, n)`` (a weight narrower than the rank gets its full rank), are
standard normal, drawn from ``member_key(key, generation, k, param_index)`` and never
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

from eggroll_snn.options import check, is_integer
from eggroll_snn.perturbation import LowRank
from eggroll_snn.strategies import noise
from eggroll_snn.strategies.base import EvolutionStrategy


def check_rank(rank: int, weight_shapes, option: str = "strategy.rank") -> None:
    """The one rank rule: ``rank`` may not exceed the largest ``min(m, n)`` of the weights (each
    weight uses ``min(rank, m, n)``, so a larger rank would clip every weight).

    Raises:
      ConfigError: naming ``option``, the bound and the shapes.
    """
    weight_shapes = [tuple(shape) for shape in weight_shapes]
    widest = max_rank(weight_shapes, default=rank)
    check(
        rank <= widest, option, rank,
        f"at most {widest}, the largest min(m, n) of the network's weight matrices "
        f"({', '.join(f'{m}x{n}' for m, n in weight_shapes)}; narrower weights use their full rank)",
    )


def max_rank(weight_shapes, default: int = 1) -> int:
    """The largest useful rank for weights of ``weight_shapes`` ``[(m, n), ...]``: the largest min(m, n).

    Each weight uses ``min(r, m, n)``, so a rank above this would clip every weight and name a
    rank that no layer uses. ``default`` when there is no weight.
    """
    return max((min(shape) for shape in weight_shapes), default=default)


@dataclass(frozen=True)
class EggrollStrategy(EvolutionStrategy):
    """Low-rank ES (maximises fitness); all options of :class:`StrategyConfig` plus ``rank``.

    Attributes:
      rank: r, rank of each member's weight perturbation. A weight with min(m, n) < r uses
        min(m, n) (its full rank; e.g. the 10 x 128 read-out at r = 16); r above the largest
        min(m, n) of the network is refused, since every weight would be clipped.
    """

    name: ClassVar[str] = "eggroll"
    rank: int = 1  # at the defaults' budget rank 1 validated as well as 4 at 2.5x the generations (docs/results.md)

    def __post_init__(self):
        super().__post_init__()
        check(is_integer(self.rank) and self.rank >= 1, "strategy.rank", self.rank, "a positive integer")

    def layer_rank(self, shape: tuple[int, int]) -> int:
        """The rank used for a weight of ``shape`` (m, n): ``min(rank, m, n)``."""
        return min(self.rank, *shape)

    def _check_params(self, params) -> None:
        check_rank(self.rank, [leaf.shape for leaf in jax.tree_util.tree_leaves(params) if leaf.ndim == 2])

    def _weight_perturbations(self, keys, shape, member_scales):
        rank = self.layer_rank(shape)
        a, b = noise.low_rank_factors(keys, shape, rank)
        members = noise.member_pairs(self.population_size, self.antithetic)
        return LowRank(a=a[members], b=b[members], scale=member_scales / math.sqrt(rank))

    def _weight_direction(self, keys, shape, pair_weights, sigma):
        rank = self.layer_rank(shape)
        a, b = noise.low_rank_factors(keys, shape, rank)
        # Contracting over (pair, rank) at once is the (m, K r) @ (K r, n) matmul of the docstring.
        weighted = a * pair_weights[:, None, None]
        return jnp.einsum("kmr,knr->mn", weighted, b) / math.sqrt(rank)


__all__ = ["EggrollStrategy", "check_rank", "max_rank"]
