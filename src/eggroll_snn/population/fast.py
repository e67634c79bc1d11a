"""The fast population forward: the same members, computed in fewer and better-fused operations.

It equals :mod:`.reference` up to float rounding (which can move a spike whose membrane lies
within rounding of the threshold); tests hold the two together for every layer kind, both
resets, every read-out and antithetic pairs. Per chunk of noise draws (a pair's ``+E_k`` with
its partner ``-E_k``, or each member), on top of the network's ``forward(..., fast=True)``
(time loops unrolled, a mean read-out from one product on its time-weighted spikes, see
:func:`eggroll_snn.network.forward`):

* the first layer's shared product ``x W^T + b`` is formed once for the population, and its
  perturbation term once per draw and shared by the pair (``+term``, ``-term``);
* a low-rank term ``s (x b) a^T`` is formed as r multiply-adds
  (:func:`~eggroll_snn.perturbation.low_rank_term`), which fuse with the membrane update,
  instead of a per-member product with an inner dimension of r.

Every chunk has the same shapes, so a member's result does not depend on the population size or
on how the population is split over devices (see :mod:`.chunks`). Integer (fixed-point)
networks use the reference path: their arithmetic is exact in any order.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from eggroll_snn.network import NetworkConfig, first_layer_currents, forward, input_features
from eggroll_snn.perturbation import LowRank, low_rank_term, perturbed_vector, scaled


def fast_logits(
    params: dict, perturbations: dict, inputs: jax.Array, config: NetworkConfig, chunk: int, antithetic_pairs: bool,
    finish=None,
):
    """Logits ``(N, B, C)``, ``chunk`` members at a time; ``finish(logits (k, B, C))`` maps each draw's
    members' logits (k = 2 for a pair) to what is returned instead, per member along axis 0."""
    population_size = jax.tree_util.tree_leaves(perturbations)[0].shape[0]
    signs = (1.0, -1.0) if antithetic_pairs else (1.0,)
    # One entry per noise draw: a pair's + member (its partner is the negation), or each member.
    draws = jax.tree_util.tree_map(lambda leaf: leaf[0::2], perturbations) if antithetic_pairs else perturbations
    count = population_size // len(signs)
    dtype = jnp.dtype(config.compute_dtype)
    features = input_features(inputs, config).astype(dtype)  # (B, T, n), or a conv block's receptive fields
    shared = first_layer_currents(params["layers"][0], None, inputs, config)  # x W^T + b, once

    def draw(member):
        first = member["layers"][0]
        weight = jax.tree_util.tree_map(lambda leaf: leaf.astype(dtype), first.get("weight"))
        if isinstance(weight, LowRank):
            term = low_rank_term(features @ weight.b, weight.a, weight.scale, elementwise=True)
        elif weight is not None:
            term = features @ weight.T
        else:
            term = jnp.zeros_like(shared)
        term = perturbed_vector(term.astype(jnp.float32), first.get("bias"))
        logits = jnp.stack([
            forward(params, inputs, config, scaled(member, sign), first_currents=shared + sign * term, fast=True)
            for sign in signs
        ])
        return logits if finish is None else finish(logits)

    draw_chunk = max(size for size in range(1, max(1, chunk // len(signs)) + 1) if count % size == 0)
    results = jax.vmap(draw)(draws) if draw_chunk >= count else jax.lax.map(draw, draws, batch_size=draw_chunk)
    return jax.tree_util.tree_map(lambda leaf: leaf.reshape((population_size,) + leaf.shape[2:]), results)


__all__ = ["fast_logits"]
