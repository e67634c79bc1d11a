"""Dense LIF layer: a fully connected layer of LIF neurons.

Neuron model (NIR ``Affine -> CubaLIF`` with a zero synaptic time constant; one update per time
bin ``t = 1..T``; state starts at zero), weight ``W`` (out, in), bias ``b`` (out,), inputs
``s_in[t]`` (in,) (spikes of the layer below, or frame counts)::

    v[t]  = beta * v'[t-1] + W s_in[t] + b
    s[t]  = H(v[t] - theta)
    v'[t] = v[t] - theta * s[t]      reset="subtract"
    v'[t] = v[t] * (1 - s[t])        reset="zero"

(:mod:`eggroll_snn.network.lif`). A perturbation ``E = s a b^T`` of ``W`` adds
``s * (s_in b) a^T`` to the currents and is never formed. Inputs from a conv block, ``(H, W, C)``
maps, are flattened in (y, x, channel) order.
"""

from __future__ import annotations

from dataclasses import dataclass

import jax

from eggroll_snn.network.arithmetic import LIFNeuron
from eggroll_snn.network.base import Dense, LayerOutput, init_weight, learned_constants


@dataclass(frozen=True)
class DenseLIF(Dense):
    """A dense layer of ``size`` LIF neurons fed by ``fan_in`` inputs per time bin."""

    neuron: LIFNeuron

    def init(self, key: jax.Array, gain: float, learn_beta: bool, learn_threshold: bool) -> dict:
        return {
            **init_weight(key, self.weight_shape, gain),
            **learned_constants(
                self.size, self.neuron.beta if learn_beta else None, self.neuron.threshold if learn_threshold else None
            ),
        }

    def run(self, params: dict, perturbation: dict | None, currents: jax.Array, arithmetic, record: bool) -> LayerOutput:
        state = arithmetic.spiking(params, perturbation, currents, self.neuron, record)
        return LayerOutput(state["spikes"], state)


__all__ = ["DenseLIF"]
