"""Fitness shaping: raw fitness (higher is better) -> weights of the update.

Both shapings are invariant to shifting the fitness and robust to outliers in their own way.
A member whose fitness is not finite (NaN from a diverged network, +-inf) counts as the worst
member of the generation: it never pulls the update towards itself.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp


def centered_ranks(fitness: jax.Array) -> jax.Array:
    """Ranks scaled to [-0.5, 0.5]: ``rank_i / (N - 1) - 0.5``; best member gets 0.5.

    Ties share their mean rank (so equal fitness gives equal weight, which matters for
    accuracy-like fitness), and non-finite values tie for the lowest rank. The weights sum to 0.

    Args:
      fitness: ``(N,)`` with ``N >= 2``.
    """
    values = jnp.where(jnp.isfinite(fitness), fitness, -jnp.inf)
    below = (values[None, :] < values[:, None]).sum(axis=1)
    equal = (values[None, :] == values[:, None]).sum(axis=1)
    ranks = below + (equal - 1) / 2.0
    return (ranks / (fitness.shape[0] - 1) - 0.5).astype(jnp.float32)


def z_scores(fitness: jax.Array) -> jax.Array:
    """``(f - mean f) / std f`` with non-finite members set to the worst finite fitness first.

    All-equal (or all non-finite) fitness gives all zeros.
    """
    finite = jnp.isfinite(fitness)
    worst = jnp.min(jnp.where(finite, fitness, jnp.inf))
    values = jnp.where(finite, fitness, jnp.where(jnp.isfinite(worst), worst, 0.0))
    centred = values - values.mean()
    std = jnp.sqrt(jnp.mean(centred**2))
    return jnp.where(std > 0, centred / jnp.where(std > 0, std, 1.0), 0.0).astype(jnp.float32)


SHAPINGS = {"centered_rank": centered_ranks, "zscore": z_scores}


__all__ = ["centered_ranks", "z_scores", "SHAPINGS"]
