"""Full-rank ES (OpenAI-ES): dense Gaussian noise on every parameter, the EGGROLL baseline.

Reference: T. Salimans et al., "Evolution Strategies as a Scalable Alternative to Reinforcement
Learning", 2017.

Member ``i`` of noise pair ``k`` is evaluated at ``W + sigma E_i`` with ``E_i = +-epsilon_k``,
``epsilon_k`` an m x n standard normal draw from ``member_key(key, generation, k, param_index)``.
Same interface, shaping, antithetic pairs and optimiser as EGGROLL, so only the noise differs.

Kept as fast as the method allows, so that speed-ups measured against it are honest: the noise
is drawn once per pair (K = N / 2 draws); the network computes the shared ``x W^T`` once and, in
the first layer, whose inputs all members share, ``x epsilon_k^T`` once per antithetic pair (its
partner adds the negation; ``shares_pairs``); deeper layers form ``h epsilon^T`` per member; ``tell``
regenerates exactly the draws of ``ask`` (inside one ``jit``, XLA computes them once) and forms
``g = 1 / (N sigma) sum_k w_k epsilon_k`` as one contraction over the pairs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import jax.numpy as jnp

from eggroll_snn.strategies import noise
from eggroll_snn.strategies.base import EvolutionStrategy


@dataclass(frozen=True)
class FullRankStrategy(EvolutionStrategy):
    """Dense-noise ES (maximises fitness) with the options of :class:`StrategyConfig`."""

    name: ClassVar[str] = "full_rank"

    def _weight_perturbations(self, keys, shape, member_scales):
        draws = noise.gaussian_pairs(keys, shape)
        members = noise.member_pairs(self.population_size, self.antithetic)
        return member_scales[:, None, None] * draws[members]

    def _weight_direction(self, keys, shape, pair_weights, sigma):
        return jnp.tensordot(pair_weights, noise.gaussian_pairs(keys, shape), axes=1)


__all__ = ["FullRankStrategy"]
