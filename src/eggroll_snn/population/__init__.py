"""The population of an evolution strategy on one shared minibatch: every member's logits and losses.

The network (:mod:`eggroll_snn.network`) knows one parameter set and one perturbation; this package
evaluates N perturbed members at once and is what a strategy's fitness is computed from:

* :func:`population_logits`: every member's logits, by the readable reference path
  (:mod:`.reference`, ``jax.vmap`` of the network over the members) or the fast path
  (:mod:`.fast`, the same values up to float rounding), a chunk of members at a time
  (:mod:`.chunks`: sized from the layers and a memory budget);
* :func:`member_losses`: each member's mean cross-entropy and accuracy on the minibatch.

Figures measured with these paths are in benchmarks/README.md.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from eggroll_snn.network import NetworkConfig
from eggroll_snn.perturbation import check_population_size
from eggroll_snn.population import chunks
from eggroll_snn.population.chunks import CPU_CHUNK_BYTES, member_bytes, member_chunk, memory_budget_bytes
from eggroll_snn.population.fast import fast_logits
from eggroll_snn.population.reference import reference_logits


def population_logits(
    params: dict, perturbations: dict, inputs: jax.Array, config: NetworkConfig, member_chunk: int | None = None,
    antithetic_pairs: bool = False, fast: bool = False, memory_budget_mb: float | None = None,
) -> jax.Array:
    """Logits of every population member on one shared batch: ``(N, B, num_classes)``.

    Args:
      params: the mean parameters, shared by all members.
      perturbations: a leading member axis N on every leaf (``LowRank`` fields included).
      inputs: ``(B, T, input_size)``, shared by all members.
      config: the network.
      member_chunk: members evaluated at once; ``None`` sizes it from the layers and the memory
        budget (:func:`~eggroll_snn.population.chunks.member_chunk`).
      antithetic_pairs: members ``2k`` and ``2k + 1`` hold ``+E_k`` and ``-E_k`` (as antithetic
        strategies ask), so the first layer's perturbation product is formed once per pair.
      fast: the fast path (:mod:`.fast`); else the reference (:mod:`.reference`). Fixed-point
        networks always take the reference path member by member (exact integers in any order).
      memory_budget_mb: the budget ``member_chunk = None`` sizes chunks for (``None``: the device's).

    Returns:
      ``(N, B, C)`` float32.
    """
    population_size = jax.tree_util.tree_leaves(perturbations)[0].shape[0]
    if antithetic_pairs:
        check_population_size(population_size, antithetic=True, option="population_logits members")
    if member_chunk is None:
        member_chunk = chunks.member_chunk(
            config, inputs.shape[0], inputs.shape[1], population_size, memory_budget_mb,
            fast=fast and config.fixed_point is None,
        )
    if config.fixed_point is not None:  # exact integers in any order: each member as it is
        return reference_logits(params, perturbations, inputs, config, member_chunk, antithetic_pairs=False)
    if fast:
        return fast_logits(params, perturbations, inputs, config, member_chunk, antithetic_pairs)
    return reference_logits(params, perturbations, inputs, config, member_chunk, antithetic_pairs)


def population_losses(
    params: dict, perturbations: dict, inputs: jax.Array, labels: jax.Array, config: NetworkConfig,
    member_chunk: int | None = None, antithetic_pairs: bool = False, fast: bool = False, memory_budget_mb: float | None = None,
) -> tuple[jax.Array, jax.Array]:
    """:func:`member_losses` of :func:`population_logits` (same arguments), each chunk's losses
    formed inside the chunk: every member's loss then comes from arrays of the same shapes, however
    the population is split over devices, so the split does not change its last bit.

    Returns:
      ``(loss (N,), accuracy (N,))``.
    """
    population_size = jax.tree_util.tree_leaves(perturbations)[0].shape[0]
    if antithetic_pairs:
        check_population_size(population_size, antithetic=True, option="population_logits members")
    if member_chunk is None:
        member_chunk = chunks.member_chunk(
            config, inputs.shape[0], inputs.shape[1], population_size, memory_budget_mb,
            fast=fast and config.fixed_point is None,
        )
    finish = lambda logits: member_losses(logits, labels)  # noqa: E731
    if config.fixed_point is not None:
        return reference_logits(params, perturbations, inputs, config, member_chunk, False, finish)
    path = fast_logits if fast else reference_logits
    return path(params, perturbations, inputs, config, member_chunk, antithetic_pairs, finish)


def member_losses(logits: jax.Array, labels: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Mean cross-entropy and accuracy of every member on the minibatch.

    Args:
      logits: ``(N, B, C)``.
      labels: ``(B,)`` int.

    Returns:
      ``(loss (N,), accuracy (N,))`` with ``loss_i = -1/B sum_b log softmax(logits_i,b)[y_b]``.
    """
    log_probs = jax.nn.log_softmax(logits, axis=-1)
    picked = jnp.take_along_axis(log_probs, labels[None, :, None], axis=-1)[..., 0]
    accuracy = (jnp.argmax(logits, axis=-1) == labels[None, :]).mean(axis=1)
    return -picked.mean(axis=1), accuracy


__all__ = [
    "population_logits",
    "population_losses",
    "member_losses",
    "member_chunk",
    "member_bytes",
    "memory_budget_bytes",
    "CPU_CHUNK_BYTES",
    "reference_logits",
    "fast_logits",
]
