"""The LIF neuron every spiking layer uses, and the leaky integrator of the read-out (float arithmetic).

Neuron model (NIR-style; one update per time bin ``t = 1..T``; state starts at zero), for input
currents ``I[t]`` (B, H) that already hold ``W s_in[t] + b``::

    v[t]  = beta * v'[t-1] + I[t] (+ V s[t-1], a recurrent layer's own spikes)
    s[t]  = H(v[t] - theta)                           spike when v[t] >= theta; H(0) = 1
    v'[t] = v[t] - theta * s[t]      reset="subtract" (keeps the overshoot)
    v'[t] = v[t] * (1 - s[t])        reset="zero"

``v'`` is the membrane after reset, the state carried to the next step. ``beta`` and ``theta``
are scalars or per-neuron vectors (H,) (learned constants); a learned ``beta`` is clipped to
[0, 1] and a learned ``theta`` to at least :data:`MIN_THRESHOLD`.

The read-out integrator: ``u[t] = beta_out * u[t-1] + I[t]``.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from eggroll_snn.perturbation import perturbed_vector

RESET_MODES = ("subtract", "zero")
#: Learned thresholds are clipped to at least this value so a neuron cannot fire on zero input
#: through a collapsed threshold.
MIN_THRESHOLD = 1e-3


def neuron_constant(layer: dict, layer_perturbation: dict | None, name: str, default: float) -> jax.Array:
    """A (possibly learned and perturbed) per-neuron constant; ``default`` when not learned."""
    if name not in layer:
        return jnp.asarray(default, jnp.float32)
    return perturbed_vector(layer[name], None if layer_perturbation is None else layer_perturbation.get(name))


def leak_and_threshold(layer: dict, layer_perturbation: dict | None, beta: float, threshold: float):
    """``(beta, theta)`` of a LIF layer: learned values clipped to their ranges, else the fixed ones."""
    beta = jnp.clip(neuron_constant(layer, layer_perturbation, "beta", beta), 0.0, 1.0)
    threshold = jnp.maximum(neuron_constant(layer, layer_perturbation, "threshold", threshold), MIN_THRESHOLD)
    return beta, threshold


def integrate(
    currents: jax.Array, beta, threshold, reset: str, record: bool, spike_fn=None, feedback=None, unroll: bool = False
) -> tuple[jax.Array, jax.Array | None]:
    """Integrate ``currents`` (T, B, H) through LIF neurons.

    Args:
      currents: input currents ``I[t]``, time-major.
      beta, threshold: scalars or (H,).
      reset: one of :data:`RESET_MODES`.
      record: also return the post-reset membranes (else ``None``: stacking an unused trajectory
        costs a full write of it per member).
      spike_fn: ``None`` for the Heaviside ``H(v - theta)``, or ``spike_fn(v, theta)`` with the
        same value and another derivative (a surrogate-gradient spike, see
        :mod:`eggroll_snn.strategies.bptt`).
      feedback: ``feedback(s[t-1]) -> (B, H)``, the recurrent current, or ``None``.
      unroll: unroll the time loop (T is static): the same operations, which XLA can then fuse
        across time bins (faster for the few bins of an N-MNIST recording).

    Returns:
      ``(spikes (T, B, H), membranes (T, B, H) or None)``.
    """

    def step(v, current):
        v = beta * v + current
        spikes = (v >= threshold).astype(current.dtype) if spike_fn is None else spike_fn(v, threshold)
        if reset == "subtract":
            v = v - threshold * spikes
        else:
            v = v * (1.0 - spikes)
        return v, (spikes, v if record else None)

    def recurrent_step(carry, current):  # the layer's own previous spikes also in the carry
        v, (spikes, membrane) = step(carry[0], current + feedback(carry[1]))
        return (v, spikes), (spikes, membrane)

    zeros = jnp.zeros(currents.shape[1:], currents.dtype)
    body, carry = (step, zeros) if feedback is None else (recurrent_step, (zeros, zeros))
    if not unroll:
        _, (spikes, membranes) = jax.lax.scan(body, carry, currents)
        return spikes, membranes
    # A Python loop over the static T: XLA sees the bins' slices of the stacked result, so a
    # consumer that reads them one by one (the summed read-out) needs no stacked copy.
    outputs = []
    for current in currents:
        carry, output = body(carry, current)
        outputs.append(output)
    spikes = jnp.stack([spikes for spikes, _ in outputs])
    return spikes, (jnp.stack([membrane for _, membrane in outputs]) if record else None)


def leaky_integrate(currents: jax.Array, beta, unroll: bool = False) -> jax.Array:
    """``u[t] = beta u[t-1] + currents[t]`` over (T, B, C); returns ``u`` (T, B, C)."""

    def step(u, current):
        u = beta * u + current
        return u, u

    _, membranes = jax.lax.scan(step, jnp.zeros(currents.shape[1:], currents.dtype), currents, unroll=unroll)
    return membranes


__all__ = ["RESET_MODES", "MIN_THRESHOLD", "neuron_constant", "leak_and_threshold", "integrate", "leaky_integrate"]
