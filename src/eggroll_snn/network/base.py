"""What every layer kind shares: its output record and the initial weights rule.

A layer is a frozen dataclass (hashable, static under ``jit``) holding its sizes and fixed
constants, with

* ``weight_shape``: ``(out, in)`` of its weight matrix (a conv kernel as (C_out, C_in*k*k));
* ``init(key, gain, learn_beta, learn_threshold) -> dict``: its parameters;
* ``features(activity) -> x``: what its weight multiplies, from the previous layer's time-major
  activity (the identity, a flattening, or receptive fields);
* ``run(params, perturbation, currents, arithmetic, record) -> LayerOutput``: its dynamics over
  the time-major currents ``arithmetic.drive(params, perturbation, x)``;
* ``activity_size`` and ``feature_size``: numbers per sample and time bin of its neurons' arrays
  and of its input features, which the population uses to size its member chunks.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp


class LayerOutput(NamedTuple):
    """A layer's result over the whole time window.

    Attributes:
      activity: what the next layer's ``features`` read (spikes, pooled spikes), time-major; for a
        read-out, the logits ``(B, C)``.
      state: the trajectories ``forward_with_state`` reports (time-major; absent ones are ``None``).
    """

    activity: jax.Array
    state: dict[str, Any]


def init_weight(key: jax.Array, shape: tuple[int, int], gain: float) -> dict:
    """``{"weight": N(0, (gain / sqrt(fan_in))^2) (out, in), "bias": 0 (out,)}`` float32.

    Why this scale: with ``W`` zero-mean of variance ``g^2 / n`` the input current of a neuron has
    standard deviation ``g * ||s_in|| / sqrt(n)``. For N-MNIST frames (2 x 34 x 34 counts, 0..3
    events per pixel and bin, ``||s_in|| ~ 30`` for 10 bins over 300 ms) ``g = 1`` gives currents
    of std ~ 0.6 theta: enough activity for weight perturbations to change the output, without
    saturating the layer, and initial logits of std ~ 1 through the same rule in the read-out.
    """
    fan_out, fan_in = shape
    std = gain / math.sqrt(fan_in)
    return {
        "weight": std * jax.random.normal(key, (fan_out, fan_in), jnp.float32),
        "bias": jnp.zeros((fan_out,), jnp.float32),
    }


def learned_constants(size: int, beta: float | None, threshold: float | None) -> dict:
    """Per-neuron ``"beta"`` / ``"threshold"`` vectors (out,) starting at the given values (``None``: not learned)."""
    constants = {}
    if beta is not None:
        constants["beta"] = jnp.full((size,), beta, jnp.float32)
    if threshold is not None:
        constants["threshold"] = jnp.full((size,), threshold, jnp.float32)
    return constants


@dataclass(frozen=True)
class Dense:
    """A fully connected layer's sizes: ``size`` neurons fed by ``fan_in`` inputs per time bin."""

    size: int
    fan_in: int

    @property
    def weight_shape(self) -> tuple[int, int]:
        return (self.size, self.fan_in)

    @property
    def activity_size(self) -> int:
        return self.size

    @property
    def feature_size(self) -> int:
        return self.fan_in

    def features(self, activity: jax.Array) -> jax.Array:
        """The previous layer's activity (T, B, ...) flattened to (T, B, fan_in) (a conv block's maps
        in (y, x, channel) order)."""
        return activity.reshape(activity.shape[:2] + (-1,))


__all__ = ["LayerOutput", "Dense", "init_weight", "learned_constants"]
