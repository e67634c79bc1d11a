"""The population of an evolution strategy on one shared minibatch: every member's logits and losses.

The network (:mod:`eggroll_snn.network`) knows one parameter set and one perturbation; this module
evaluates N perturbed members at once and is what a strategy's fitness is computed from:

* :func:`population_logits`: ``jax.vmap`` of the network over the members' perturbations, with
  ``params`` and the inputs shared (so ``x W^T`` is formed once for the population), in cache-sized
  chunks on CPU, and with antithetic pairs sharing their first-layer perturbation product;
* :func:`member_losses`: each member's mean cross-entropy and accuracy on the minibatch.

Figures measured with these paths are in benchmarks/README.md.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from eggroll_snn.errors import ConfigError
from eggroll_snn.perturbation import perturbation_term, perturbed_vector, scaled
from eggroll_snn.network import NetworkConfig, activity_sizes, first_layer_currents, forward, input_features

#: Target size of one chunk's per-member activity in :func:`population_logits` (bytes): about one
#: core's L2 cache, so a chunk's time loop does not stream its state through main memory.
CHUNK_BYTES = 2 << 20


def default_member_chunk(inputs: jax.Array, config: NetworkConfig, population_size: int) -> int:
    """Members per chunk when the caller gives none: the whole population on accelerators; on CPU
    the largest divisor of N whose chunk holds at most :data:`CHUNK_BYTES` of activity (each
    layer states the size of its widest per-member array, :func:`~eggroll_snn.network.activity_sizes`)."""
    if jax.default_backend() != "cpu":
        return population_size
    batch, time_bins = inputs.shape[:2]
    bytes_per_member = 4 * batch * time_bins * max(activity_sizes(config))
    largest = max(1, CHUNK_BYTES // bytes_per_member)
    # A divisor of N: a remainder chunk would compile the forward pass a second time.
    return max(size for size in range(1, min(largest, population_size) + 1) if population_size % size == 0)


def _pair_logits(params: dict, inputs: jax.Array, config: NetworkConfig, shared: jax.Array, plus: dict) -> jax.Array:
    """Logits ``(2, B, C)`` of an antithetic pair: the members at ``params + E`` and ``params - E``.

    The first layer's currents are ``shared = x W^T + b`` (computed once for the population by the
    caller) plus ``+-(x E_0^T + e_b)``, whose product is formed once for the pair instead of once
    per member; everything after it depends on the member's own activity and runs per member.
    """
    dtype = jnp.dtype(config.compute_dtype)
    first_plus = plus["layers"][0]
    weight_plus = jax.tree_util.tree_map(lambda leaf: leaf.astype(dtype), first_plus["weight"])
    first_inputs = input_features(inputs, config)
    term = perturbed_vector(perturbation_term(first_inputs.astype(dtype), weight_plus).astype(jnp.float32), first_plus.get("bias"))

    def member(sign):
        return forward(params, inputs, config, scaled(plus, sign), first_currents=shared + sign * term)

    return jax.vmap(member)(jnp.asarray([1.0, -1.0], jnp.float32))


def population_logits(
    params: dict, perturbations: dict, inputs: jax.Array, config: NetworkConfig, member_chunk: int | None = None,
    antithetic_pairs: bool = False,
) -> jax.Array:
    """Logits of every population member on one shared batch: ``(N, B, num_classes)``.

    ``perturbations`` has a leading member axis N on every leaf (``LowRank`` fields included).
    :func:`~eggroll_snn.network.forward` is ``jax.vmap``-ed over it with ``params`` and ``inputs`` shared, so the
    unperturbed products ``x W^T`` are computed once for the whole population.

    Members are evaluated ``member_chunk`` at a time (``lax.map`` over chunks of a ``vmap``):
    the per-member arrays of one chunk, ``(chunk, T, B, H)``, then stay in the CPU cache across
    the time loop instead of streaming the whole population's state through memory every step
    (measured in benchmarks/README.md). ``None`` picks, on CPU, the largest divisor of N whose chunk holds
    at most :data:`CHUNK_BYTES` of activity and, on accelerators (which want one wide kernel
    rather than a sequential loop), the whole population; ``member_chunk >= N`` is one ``vmap``.

    ``antithetic_pairs``: members ``2k`` and ``2k + 1`` hold opposite perturbations (``+E_k``,
    ``-E_k``, as antithetic strategies ask), so the first layer's perturbation product
    ``x E_k^T`` is formed once per pair (:func:`_pair_logits`), the largest per-member product of
    full-rank ES (its speed-up is in benchmarks/README.md). Same logits up to float rounding.
    """
    population_size = jax.tree_util.tree_leaves(perturbations)[0].shape[0]
    if antithetic_pairs:
        return _population_pair_logits(params, perturbations, inputs, config, member_chunk, population_size)
    if member_chunk is None:
        member_chunk = default_member_chunk(inputs, config, population_size)
    if member_chunk >= population_size:
        return jax.vmap(lambda member: forward(params, inputs, config, member))(perturbations)
    return jax.lax.map(lambda member: forward(params, inputs, config, member), perturbations, batch_size=member_chunk)


def _population_pair_logits(params, perturbations, inputs, config, member_chunk, population_size) -> jax.Array:
    """:func:`population_logits` over antithetic pairs (see there)."""
    if population_size % 2:
        raise ConfigError(f"antithetic pairs need an even population; got {population_size} members")
    pairs = population_size // 2
    plus = jax.tree_util.tree_map(lambda leaf: leaf[0::2], perturbations)
    if member_chunk is None:
        member_chunk = default_member_chunk(inputs, config, population_size)
    pair_chunk = max(size for size in range(1, max(1, member_chunk // 2) + 1) if pairs % size == 0)
    shared = first_layer_currents(params["layers"][0], None, inputs, config)
    pair = lambda member: _pair_logits(params, inputs, config, shared, member)  # noqa: E731
    logits = jax.vmap(pair)(plus) if pair_chunk >= pairs else jax.lax.map(pair, plus, batch_size=pair_chunk)
    return logits.reshape((population_size,) + logits.shape[2:])


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


__all__ = ["CHUNK_BYTES", "default_member_chunk", "population_logits", "member_losses"]
