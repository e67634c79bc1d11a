"""Weight perturbations and the one linear map that applies them.

This module is the only thing the network (``snn.py``) and the strategies share: a strategy
produces, for each population member, a pytree shaped like the parameters whose leaves are
perturbations, and the network applies them through :func:`perturbed_linear` and
:func:`perturbed_vector`.

A perturbation of a 2-D weight ``W`` (m x n) is one of

* :class:`LowRank` ``(a, b, scale)`` with ``a`` (m, r), ``b`` (n, r): the perturbed map is
  ``x W^T + scale * (x b) a^T``, i.e. ``W + scale * a b^T`` without ever forming the m x n
  product (EGGROLL; ``scale = +-sigma / sqrt(r)``);
* a dense array ``delta`` (m, n): the perturbed map is ``x (W + delta)^T`` (full-rank ES);
* ``None``: no perturbation.

A perturbation of a 1-D parameter is a dense array of the same shape (already scaled by sigma)
or ``None``.
"""

from __future__ import annotations

from typing import NamedTuple, Union

import jax

from eggroll_snn.options import check, is_integer


class LowRank(NamedTuple):
    """Low-rank perturbation ``scale * a @ b.T`` of an (m, n) weight.

    Attributes:
      a: (m, r) factor.
      b: (n, r) factor.
      scale: scalar, ``+-sigma / sqrt(r)`` for EGGROLL (sign carries the antithetic pair).
    """

    a: jax.Array
    b: jax.Array
    scale: jax.Array


Perturbation = Union[LowRank, jax.Array, None]


def perturbed_linear(x: jax.Array, weight: jax.Array, perturbation: Perturbation = None, elementwise_rank: bool = False) -> jax.Array:
    """``x (W + E)^T`` for inputs ``x`` (..., n) and weight ``W`` (m, n); returns (..., m).

    Under ``jax.vmap`` over members with ``x`` and ``weight`` shared, ``x @ W.T`` does not depend
    on the mapped axis and is computed once for the whole population; only the rank-r term is
    per member. ``elementwise_rank``: see :func:`low_rank_term`.
    """
    out = x @ weight.T
    if perturbation is None:
        return out
    return out + perturbation_term(x, perturbation, elementwise_rank)


def perturbation_term(x: jax.Array, perturbation: Perturbation, elementwise_rank: bool = False) -> jax.Array:
    """``x E^T`` alone for inputs ``x`` (..., n) and a non-``None`` weight perturbation ``E`` (m, n)."""
    if isinstance(perturbation, LowRank):
        return low_rank_term(x @ perturbation.b, perturbation.a, perturbation.scale, elementwise_rank)
    return x @ perturbation.T


def low_rank_term(xb: jax.Array, a: jax.Array, scale, elementwise: bool = False) -> jax.Array:
    """``scale * xb a^T`` for the projected inputs ``xb = x b`` (..., r) and the factor ``a`` (m, r).

    ``elementwise``: form it as ``sum_j xb[..., j] a[:, j]``, r broadcast multiply-adds, instead of
    a product with a contraction of length r: per member of a population such a product is a
    batched matrix product with an inner dimension of r (a few), which CPUs run far below their
    rate, while the multiply-adds fuse with what follows. They are written as r broadcasts with
    the layer's outputs as the minor axis (not a sum over a minor axis of length r, which XLA's CPU
    loop emitter vectorises poorly). Same value up to float rounding.
    """
    if not elementwise:
        return scale * (xb @ a.T)
    term = xb[..., 0:1] * a[:, 0]
    for j in range(1, a.shape[-1]):  # r broadcast multiply-adds, the layer's outputs the minor axis
        term = term + xb[..., j : j + 1] * a[:, j]
    return scale * term


def perturbed_vector(value: jax.Array, perturbation: Perturbation = None) -> jax.Array:
    """A 1-D parameter plus its dense perturbation (or unchanged for ``None``)."""
    if perturbation is None:
        return value
    return value + perturbation


def materialise(weight: jax.Array, perturbation: Perturbation) -> jax.Array:
    """The perturbed weight ``W + E`` as a dense array (for tests and reference code only)."""
    if perturbation is None:
        return weight
    if isinstance(perturbation, LowRank):
        return weight + perturbation.scale * (perturbation.a @ perturbation.b.T)
    return weight + perturbation


def scaled(perturbations, factor):
    """Every perturbation of a pytree times ``factor`` (a low-rank one through its ``scale``)."""
    def scale(leaf):
        return leaf._replace(scale=factor * leaf.scale) if isinstance(leaf, LowRank) else factor * leaf

    return jax.tree_util.tree_map(scale, perturbations, is_leaf=is_low_rank)


def is_low_rank(node) -> bool:
    """``jax.tree_util`` leaf predicate that keeps :class:`LowRank` nodes whole."""
    return isinstance(node, LowRank)


def check_population_size(size, antithetic: bool, option: str = "strategy.population_size") -> None:
    """The one rule of a population's size: 2..1,000,000 members, and even with antithetic pairs
    (members ``2k`` and ``2k + 1`` hold ``+E_k`` and ``-E_k``).

    Raises:
      ConfigError: naming ``option``.
    """
    check(is_integer(size) and 2 <= size <= 1_000_000, option, size, "an integer 2..1000000")
    check(
        not antithetic or size % 2 == 0, option, size,
        "an even number while strategy.antithetic = true (members 2k, 2k+1 are +sigma/-sigma pairs)",
    )


__all__ = ["check_population_size", "LowRank", "Perturbation", "perturbed_linear", "perturbation_term", "low_rank_term", "perturbed_vector", "materialise", "scaled", "is_low_rank"]
