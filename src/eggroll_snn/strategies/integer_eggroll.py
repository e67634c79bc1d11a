"""EGGROLL with integer noise: every member of a fixed-point network is an integer network.

Reference: B. Sarkar et al., "Evolution Strategies at the Hyperscale" (EGGROLL), 2025, whose
integer-only language models perturb int8 weights with integer low-rank noise.

The mean parameters stay float masters in the float network's units; the network runs on their
fixed-point form ``W_int = round(W * 2**F)`` (see :mod:`eggroll_snn.integer.arithmetic`). Noise is put on
the integer grid *before* it reaches the network, so nothing is rounded inside a member::

    A_k = round(alpha a_k),  B_k = round(alpha b_k),  alpha = sqrt(sigma 2**F / sqrt(r))
    member 2k, 2k+1:  W_int +- A_k B_k^T                (integers; never formed)
    bias:             b_int +- round(sigma 2**F z_k)

with ``a_k, b_k, z_k`` the standard normal draws of :mod:`.noise` (``fold_in(key, generation,
pair, parameter)``, so resume stays exact). ``A_k B_k^T`` has entries of variance ~ ``(sigma 2**F)**2``:
the float EGGROLL perturbation ``sigma a b^T / sqrt(r)`` measured in integer steps, up to the
rounding of the factors. In the strategy's float units the unit-scale direction of pair k is
``E_k = A_k B_k^T / (sigma 2**F)`` (member = ``W_int 2**-F + sigma E_k``), and the update is
EGGROLL's ``g = 1 / (N sigma) sum_k w_k E_k`` with those same integer factors, so the estimate
is taken over exactly the members that were evaluated.

Why integer noise and not ``round(W + sigma E_i)`` per member: rounding each member onto the grid
needs its dense m x n matrix (what EGGROLL avoids: the members would cost full-rank ES), while
integer factors keep the low-rank product ``x W_int^T + (x B) A^T`` in integer arithmetic. The
price: a member's weights ``W_int +- A B^T`` are integers wider than ``weight_bits`` (not clipped);
only the centre ``W_int``, what is deployed, is int8. Float masters: Adam's updates smaller than
one integer step accumulate instead of vanishing (straight-through, as in :mod:`eggroll_snn.integer.grid`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

import jax.numpy as jnp

from eggroll_snn.errors import ConfigError
from eggroll_snn.perturbation import LowRank
from eggroll_snn.strategies import noise
from eggroll_snn.strategies.eggroll import EggrollStrategy


@dataclass(frozen=True)
class IntegerEggrollStrategy(EggrollStrategy):
    """EGGROLL whose members are integer perturbations of a fixed-point network (maximises fitness).

    Attributes:
      fraction_bits: F of the network's fixed-point form (one integer step = ``2**-F``).
    """

    name: ClassVar[str] = "eggroll_integer"
    fraction_bits: int = 7

    def __post_init__(self):
        super().__post_init__()
        if isinstance(self.fraction_bits, bool) or not isinstance(self.fraction_bits, int) or not 0 <= self.fraction_bits <= 16:
            raise ConfigError(f"fraction_bits={self.fraction_bits!r} must be an integer 0..16")

    @property
    def steps_per_unit(self) -> float:
        """``2**F``: integer steps per float unit."""
        return float(2**self.fraction_bits)

    def integer_factors(self, keys, shape, sigma):
        """Integer-valued factors ``A`` (K, m, r), ``B`` (K, n, r) of the pairs (float32 arrays)."""
        rank = self.layer_rank(shape)
        a, b = noise.low_rank_factors(keys, shape, rank)
        alpha = jnp.sqrt(sigma * self.steps_per_unit / math.sqrt(rank))
        return jnp.round(alpha * a), jnp.round(alpha * b)

    def _weight_perturbations(self, keys, shape, member_scales):
        sigma = jnp.abs(member_scales[0])
        a, b = self.integer_factors(keys, shape, sigma)
        members = noise.member_pairs(self.population_size, self.antithetic)
        signs = member_scales / sigma  # exactly +-1
        return LowRank(a=a[members], b=b[members], scale=signs / self.steps_per_unit)

    def _weight_direction(self, keys, shape, pair_weights, sigma):
        a, b = self.integer_factors(keys, shape, sigma)
        return jnp.einsum("kmr,knr->mn", a * pair_weights[:, None, None], b) / (sigma * self.steps_per_unit)

    def _vector_noise(self, keys, shape, sigma):
        steps = sigma * self.steps_per_unit
        return jnp.round(steps * noise.gaussian_pairs(keys, shape)) / steps


__all__ = ["IntegerEggrollStrategy"]
