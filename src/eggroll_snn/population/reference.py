"""The readable population forward: the network ``jax.vmap``-ed over the members' perturbations.

``params`` and the inputs are shared, so ``x W^T`` is formed once for the population; members
are evaluated a chunk at a time (``lax.map`` over chunks of a ``vmap``). With antithetic pairs
(members ``2k``, ``2k + 1`` at ``+E_k``, ``-E_k``) the first layer's perturbation product is
formed once per pair. This is the path every faster one is checked against.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from eggroll_snn.network import NetworkConfig, first_layer_currents, forward, input_features
from eggroll_snn.perturbation import perturbation_term, perturbed_vector, scaled


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


def reference_logits(
    params: dict, perturbations: dict, inputs: jax.Array, config: NetworkConfig, chunk: int, antithetic_pairs: bool,
    finish=None,
):
    """Logits ``(N, B, C)``, ``chunk`` members at a time (``chunk >= N``: one ``vmap``); ``finish``
    maps each member's (or pair's) logits ``(k, B, C)`` to what is returned instead."""
    finish = finish or (lambda logits: logits)
    reshape = lambda tree, size: jax.tree_util.tree_map(lambda leaf: leaf.reshape((size,) + leaf.shape[2:]), tree)  # noqa: E731
    population_size = jax.tree_util.tree_leaves(perturbations)[0].shape[0]
    if antithetic_pairs:
        pairs = population_size // 2
        plus = jax.tree_util.tree_map(lambda leaf: leaf[0::2], perturbations)
        pair_chunk = max(size for size in range(1, max(1, chunk // 2) + 1) if pairs % size == 0)
        shared = first_layer_currents(params["layers"][0], None, inputs, config)
        pair = lambda member: finish(_pair_logits(params, inputs, config, shared, member))  # noqa: E731
        results = jax.vmap(pair)(plus) if pair_chunk >= pairs else jax.lax.map(pair, plus, batch_size=pair_chunk)
        return reshape(results, population_size)
    member = lambda perturbation: finish(forward(params, inputs, config, perturbation)[None])  # noqa: E731
    results = jax.vmap(member)(perturbations) if chunk >= population_size else jax.lax.map(member, perturbations, batch_size=chunk)
    return reshape(results, population_size)


__all__ = ["reference_logits"]
