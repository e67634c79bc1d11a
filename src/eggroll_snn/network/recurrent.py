"""Recurrent LIF layer: a dense LIF layer that also receives its own spikes of the previous step.

Neuron model (NIR ``Affine -> CubaLIF`` with a recurrent ``Linear`` edge; state starts at zero,
``s[0] = 0``), recurrent weight ``V`` (out, out)::

    v[t]  = beta * v'[t-1] + W s_in[t] + V s[t-1] + b
    s[t]  = H(v[t] - theta),   v'[t] as in :mod:`eggroll_snn.network.dense`

``V`` is one more 2-D weight, so the strategies perturb it like any other (a low-rank
``E = s a b^T`` adds ``s * (s[t-1] b) a^T`` per step). It starts at zero: an untrained recurrent
network computes what the feed-forward one does, and training grows the recurrence. The term
needs the previous step's spikes, so it is computed inside the time loop.
"""

from __future__ import annotations

from dataclasses import dataclass

import jax
import jax.numpy as jnp

from eggroll_snn.network.base import LayerOutput
from eggroll_snn.network.dense import DenseLIF


@dataclass(frozen=True)
class RecurrentLIF(DenseLIF):
    """A :class:`~eggroll_snn.network.dense.DenseLIF` with a recurrent weight ``"recurrent"`` (size, size)."""

    @property
    def recurrent_shape(self) -> tuple[int, int]:
        return (self.size, self.size)

    def init(self, key: jax.Array, gain: float, learn_beta: bool, learn_threshold: bool) -> dict:
        return {**super().init(key, gain, learn_beta, learn_threshold), "recurrent": jnp.zeros(self.recurrent_shape, jnp.float32)}

    def run(self, params: dict, perturbation: dict | None, currents: jax.Array, arithmetic, record: bool) -> LayerOutput:
        feedback = arithmetic.feedback(params, perturbation)
        state = arithmetic.spiking(params, perturbation, currents, self.neuron, record, feedback)
        return LayerOutput(state["spikes"], state)


__all__ = ["RecurrentLIF"]
