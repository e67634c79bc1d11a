"""The float arithmetic the layers compute with (the integer one is :mod:`eggroll_snn.integer.arithmetic`).

A layer (:mod:`eggroll_snn.network.layers`) says *what* it computes: which inputs its weight
multiplies, which neuron integrates the result, what it passes on. An arithmetic says *how*: the
number format of the inputs, the product with the (perturbed) weight, the neuron's update and the
read-out's logits. Both arithmetics offer the same methods:

* ``features(inputs)``: the network's inputs in this arithmetic's numbers;
* ``drive(layer, perturbation, x)``: a layer's input currents for inputs ``x`` (..., in), through
  :func:`~eggroll_snn.perturbation.perturbed_linear` (a low-rank perturbation costs its rank-r term);
* ``feedback(layer, perturbation)``: the recurrent current ``s -> s V^T`` of a recurrent layer;
* ``spiking(layer, perturbation, currents, neuron, record, feedback)``: LIF dynamics over
  ``currents`` (T, B, ...), returning ``{"spikes", "membranes"[, "synaptic"]}`` time-major;
* ``integrating(layer, perturbation, currents, beta)``: the read-out membrane (T, B, C);
* ``logits(membranes, mode)``: ``(logits (B, C), extra trajectories)`` of the read-out.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import jax
import jax.numpy as jnp

from eggroll_snn.network import lif
from eggroll_snn.perturbation import perturbed_linear, perturbed_vector


@dataclass(frozen=True)
class LIFNeuron:
    """The fixed constants of a LIF layer (learned per-neuron values, when present, come from its parameters)."""

    beta: float
    threshold: float
    reset: str


@dataclass(frozen=True)
class FloatArithmetic:
    """float32 membranes; matmuls in ``compute_dtype``.

    Attributes:
      compute_dtype: ``"float32"`` or ``"bfloat16"``: dtype of the matmuls (currents and
        membranes stay float32).
      spike_fn: ``None`` for the exact Heaviside spike, or a function with the same value and
        another derivative (see :func:`eggroll_snn.network.lif.integrate`).
      fast: unroll the time loops and form rank-r perturbation terms with multiply-adds
        (:func:`~eggroll_snn.perturbation.low_rank_term`): the same equations in an order XLA
        fuses better on a population; values equal up to float rounding.
    """

    compute_dtype: str = "float32"
    spike_fn: Callable | None = None
    fast: bool = False

    @property
    def dtype(self):
        return jnp.dtype(self.compute_dtype)

    def features(self, inputs: jax.Array) -> jax.Array:
        return inputs

    def _cast(self, perturbation):
        if self.dtype == jnp.float32:
            return perturbation
        return jax.tree_util.tree_map(lambda leaf: leaf.astype(self.dtype), perturbation)

    def drive(self, layer: dict, layer_perturbation: dict | None, x: jax.Array) -> jax.Array:
        """``x (W + E)^T + b + e_b`` -> float32 ``(..., out)``, all time steps in one matmul."""
        weight_perturbation = self._cast(None if layer_perturbation is None else layer_perturbation.get("weight"))
        projected = perturbed_linear(x.astype(self.dtype), layer["weight"].astype(self.dtype), weight_perturbation, self.fast)
        bias = perturbed_vector(layer["bias"], None if layer_perturbation is None else layer_perturbation.get("bias"))
        return projected.astype(jnp.float32) + bias

    def feedback(self, layer: dict, layer_perturbation: dict | None) -> Callable[[jax.Array], jax.Array]:
        """``s -> s (V + E_V)^T`` of a recurrent layer."""
        perturbation = self._cast(None if layer_perturbation is None else layer_perturbation.get("recurrent"))
        weight = layer["recurrent"].astype(self.dtype)
        return lambda spikes: perturbed_linear(spikes.astype(self.dtype), weight, perturbation, self.fast).astype(jnp.float32)

    def spiking(
        self, layer: dict, layer_perturbation: dict | None, currents: jax.Array, neuron: LIFNeuron, record: bool,
        feedback: Callable | None = None,
    ) -> dict[str, Any]:
        beta, threshold = lif.leak_and_threshold(layer, layer_perturbation, neuron.beta, neuron.threshold)
        spikes, membranes = lif.integrate(currents, beta, threshold, neuron.reset, record, self.spike_fn, feedback, self.fast)
        return {"spikes": spikes, "membranes": membranes}

    def integrating(self, layer: dict, layer_perturbation: dict | None, currents: jax.Array, beta: float) -> jax.Array:
        beta = jnp.clip(lif.neuron_constant(layer, layer_perturbation, "beta", beta), 0.0, 1.0)
        return lif.leaky_integrate(currents, beta, self.fast)

    def logits(self, membranes: jax.Array, mode: str) -> tuple[jax.Array, dict]:
        return (membranes.mean(axis=0) if mode == "mean" else membranes.max(axis=0)), {}


__all__ = ["LIFNeuron", "FloatArithmetic"]
