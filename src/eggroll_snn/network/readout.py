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
import numpy as np

from eggroll_snn.network.base import Dense, LayerOutput, init_weight, learned_constants
from eggroll_snn.network.dense import DenseLIF
from eggroll_snn.perturbation import perturbed_vector

READOUT_MODES = ("mean", "max", "spike_count")


@dataclass(frozen=True)
class LeakyReadout(Dense):
    """``size`` leaky integrators (the logits) fed by ``fan_in`` spikes per time bin; ``mode``: mean or max."""

    beta: float
    mode: str = "mean"

    def init(self, key: jax.Array, gain: float, learn_beta: bool, learn_threshold: bool) -> dict:
        return {**init_weight(key, self.weight_shape, gain), **learned_constants(self.size, self.beta if learn_beta else None, None)}

    def time_weights(self, time_bins: int) -> np.ndarray | None:
        """``c`` (T,) with ``mean_t u[t] = W (sum_s c_s x[s]) + b sum_s c_s``, or ``None`` when the
        logits are not linear in the inputs over time (``mode = "max"``).

        ``u[t] = sum_{s<=t} beta^(t-s) (W x[s] + b)``, so ``c_s = (1/T) sum_{t=s}^{T-1} beta^(t-s)``
        (``1/T`` each for ``beta = 0``). A learned per-unit ``beta`` is checked by the caller.
        """
        if self.mode != "mean":
            return None
        remaining = time_bins - np.arange(time_bins, dtype=np.float64)  # T - s, the bins u[s..T-1]
        if self.beta == 1.0:
            weights = remaining
        else:
            weights = (1.0 - self.beta**remaining) / (1.0 - self.beta)
        return weights / time_bins

    def summed_logits(self, params: dict, perturbation: dict | None, activity: jax.Array, arithmetic) -> jax.Array | None:
        """The mean read-out logits from one product on the time-weighted inputs (B, fan_in) instead
        of one per time bin, or ``None`` when the read-out is not linear over time (``max``, or a
        learned ``beta``). Equal to :meth:`run`'s logits up to float rounding."""
        weights = self.time_weights(activity.shape[0])
        if weights is None or "beta" in params:
            return None
        inputs = self.features(activity)  # (T, B, fan_in)
        # One multiply-add per bin (T is static), rather than a product or a reduction over the
        # leading axis, which XLA's CPU backend runs far slower than these fused element-wise ops.
        pooled = sum(np.float32(weight) * inputs[step] for step, weight in enumerate(weights))
        logits = arithmetic.drive(params, perturbation, pooled)  # W x_bar + b
        total = float(weights.sum())
        if total != 1.0:  # the bias enters u[t] every bin: sum_s c_s times in all
            bias = perturbed_vector(params["bias"], None if perturbation is None else perturbation.get("bias"))
            logits = logits + (total - 1.0) * bias
        return logits

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
