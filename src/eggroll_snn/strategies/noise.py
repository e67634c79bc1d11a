"""Counter-based noise: every random number of a generation is a pure function of its indices.

A member's noise for one parameter comes from ``member_key(key, generation, pair, param_index)``,
a chain of ``jax.random.fold_in``. Nothing random is stored between ``ask`` and ``tell``: both
call the same functions with the same indices and get the same numbers (inside one ``jit`` XLA
even computes them once).

Members and pairs: with antithetic sampling member ``i`` uses noise pair ``k = i // 2`` with sign
``+1`` for even ``i`` and ``-1`` for odd ``i`` (members 2k and 2k+1 are exact negatives); without
it, member ``i`` uses pair ``i`` with sign ``+1``.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np


def member_key(key: jax.Array, generation, pair, param_index) -> jax.Array:
    """The key of noise pair ``pair`` of parameter ``param_index`` in generation ``generation``.

    ``fold_in(fold_in(fold_in(key, generation), pair), param_index)``: distinct index triples give
    independent streams; equal ones give the same numbers. Indices may be traced integers.
    """
    return jax.random.fold_in(jax.random.fold_in(jax.random.fold_in(key, generation), pair), param_index)


def pair_keys(key: jax.Array, generation, num_pairs: int, param_index: int) -> jax.Array:
    """Keys ``(num_pairs,)`` of all noise pairs of one parameter in one generation."""
    return jax.vmap(lambda pair: member_key(key, generation, pair, param_index))(jnp.arange(num_pairs))


def num_pairs(population_size: int, antithetic: bool) -> int:
    """How many independent noise draws a population uses."""
    return population_size // 2 if antithetic else population_size


def member_pairs(population_size: int, antithetic: bool) -> np.ndarray:
    """``(N,)`` int: the noise pair each member uses."""
    members = np.arange(population_size)
    return members // 2 if antithetic else members


def member_signs(population_size: int, antithetic: bool) -> np.ndarray:
    """``(N,)`` float32 +-1: the sign each member applies to its pair's noise."""
    if not antithetic:
        return np.ones(population_size, np.float32)
    return np.where(np.arange(population_size) % 2 == 0, 1.0, -1.0).astype(np.float32)


#: Draws of at most this many numbers are made together in :func:`gaussian_pairs` (2^20 floats =
#: 4 MiB): on CPU, XLA runs threefry as a loop of rounds over whole arrays, slow when those arrays
#: stream through memory and slow in many small pieces. The ask of the default network at r = 4
#: (1.7 million numbers) took 9.6 ms in blocks of 2^20 against 14.1 ms for 2^18 and 32 ms for 2^16
#: (16.8 and 22.5 ms with the fast forward's compiler options; 2-core AMD EPYC).
DRAW_CHUNK_SIZE = 1 << 20


def gaussian_pairs(keys: jax.Array, shape: tuple[int, ...]) -> jax.Array:
    """Standard normal noise ``(K, *shape)``, one draw per key of ``keys`` (K,).

    Draw ``k`` depends only on ``keys[k]`` and ``shape`` (not on K or on how draws are batched).
    """
    draw_size = int(np.prod(shape, dtype=np.int64))
    batch_size = max(1, min(len(keys), DRAW_CHUNK_SIZE // max(draw_size, 1)))
    return jax.lax.map(lambda key: jax.random.normal(key, shape, jnp.float32), keys, batch_size=batch_size)


def low_rank_factors(keys: jax.Array, shape: tuple[int, int], rank: int) -> tuple[jax.Array, jax.Array]:
    """EGGROLL factors for a weight of ``shape`` (m, n): ``a`` (K, m, r), ``b`` (K, n, r), standard normal.

    Both factors come from one draw of ``(m + n, r)`` per key, so ``a`` and ``b`` are independent.
    """
    rows, columns = shape
    stacked = gaussian_pairs(keys, (rows + columns, rank))
    return stacked[:, :rows], stacked[:, rows:]


__all__ = [
    "member_key",
    "pair_keys",
    "num_pairs",
    "member_pairs",
    "member_signs",
    "gaussian_pairs",
    "low_rank_factors",
]
