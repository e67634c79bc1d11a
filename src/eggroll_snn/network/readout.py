"""Read-out layers: the logits of the network from the last hidden layer's spikes.

* :class:`LeakyReadout` (NIR ``Affine`` or ``Affine -> LI``), a non-spiking leaky integrator::

      u[t]   = beta_out * u[t-1] + W_out s[t] + b_out      (beta_out = readout_beta)
      logits = mean_t u[t]        mode="mean"
      logits = max_t u[t]         mode="max"

  With ``beta_out = 0`` (the default) it keeps no memory, ``u[t] = W_out s[t] + b_out``, and the
  NIR export is the Affine itself.

* :class:`SpikeCountReadout`: a LIF output layer (the hidden layers' ``beta``, ``theta`` and reset,
  :mod:`eggroll_snn.network.lif`) whose logits are its spike counts ``sum_t s_out[t]``.
"""

from __future__ import annotations

from dataclasses import dataclass

import jax

from eggroll_snn.network.base import Dense, LayerOutput, init_weight, learned_constants
from eggroll_snn.network.dense import DenseLIF

READOUT_MODES = ("mean", "max", "spike_count")


@dataclass(frozen=True)
class LeakyReadout(Dense):
    """``size`` leaky integrators (the logits) fed by ``fan_in`` spikes per time bin; ``mode``: mean or max."""

    beta: float
    mode: str = "mean"

    def init(self, key: jax.Array, gain: float, learn_beta: bool, learn_threshold: bool) -> dict:
        return {**init_weight(key, self.weight_shape, gain), **learned_constants(self.size, self.beta if learn_beta else None, None)}

    def run(self, params: dict, perturbation: dict | None, currents: jax.Array, arithmetic, record: bool) -> LayerOutput:
        membranes = arithmetic.integrating(params, perturbation, currents, self.beta)
        logits, extra = arithmetic.logits(membranes, self.mode)
        return LayerOutput(logits, {"readout_membrane": membranes, **extra})


@dataclass(frozen=True)
class SpikeCountReadout(DenseLIF):
    """``size`` LIF output neurons fed by ``fan_in`` spikes per time bin; logits are their spike counts."""

    def run(self, params: dict, perturbation: dict | None, currents: jax.Array, arithmetic, record: bool) -> LayerOutput:
        state = arithmetic.spiking(params, perturbation, currents, self.neuron, record)
        spikes, membranes = state["spikes"], state["membranes"]
        return LayerOutput(spikes.sum(axis=0), {"readout_membrane": spikes if membranes is None else membranes})


__all__ = ["READOUT_MODES", "LeakyReadout", "SpikeCountReadout"]
