"""Surrogate-gradient backpropagation through time (BPTT): the gradient reference for EGGROLL.

The network is the same one the evolution strategies train (:mod:`eggroll_snn.network`), run with
the same exact Heaviside spike. Only the derivative of the spike changes: ``dH(x)/dx`` is zero
almost everywhere, so the backward pass uses the derivative of a smooth step ``sigma_k`` of
slope ``k`` instead (Neftci, Mostafa & Zenke 2019, "Surrogate gradient learning in spiking
neural networks"), with ``x = v - theta``:

* ``fast_sigmoid`` (SuperSpike, Zenke & Ganguli 2018)::

      sigma_k(x)  = 1/2 (1 + k x / (1 + k |x|))
      sigma_k'(x) = k / (2 (1 + k |x|)^2)

* ``arctan`` (Fang et al. 2021)::

      sigma_k(x)  = 1/2 + arctan(pi k x / 2) / pi
      sigma_k'(x) = (k / 2) / (1 + (pi k x / 2)^2)

Both peak at ``k / 2`` at the threshold. JAX differentiates through the ``lax.scan`` over time
(the reset term included), and the gradient of the mean minibatch cross-entropy drives the same
optax optimiser and learning-rate schedule the strategies use (:class:`SurrogateGradient`
inherits them from :class:`~eggroll_snn.strategies.base.OptimizerConfig`).

In the trainer a BPTT "generation" is one optimiser step on a minibatch of ``train.batch_size``
recordings, drawn exactly as for the strategies; its metrics carry the same names
(``fitness_mean = fitness_max = -loss``, ``sigma = 0``).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any, Callable, ClassVar, NamedTuple

import jax
import jax.numpy as jnp
import optax

from eggroll_snn.errors import ConfigError
from eggroll_snn.network import NetworkConfig, forward
from eggroll_snn.population import member_losses
from eggroll_snn.strategies.base import GenerationMetrics, Objective, OptimizerConfig


# --------------------------------------------------------------------------------------------
# The surrogate spike


def _fast_sigmoid_step(x: jax.Array, slope: float) -> jax.Array:
    return 0.5 * (1.0 + slope * x / (1.0 + slope * jnp.abs(x)))


def _fast_sigmoid_derivative(x: jax.Array, slope: float) -> jax.Array:
    return 0.5 * slope / (1.0 + slope * jnp.abs(x)) ** 2


def _arctan_step(x: jax.Array, slope: float) -> jax.Array:
    return 0.5 + jnp.arctan(0.5 * jnp.pi * slope * x) / jnp.pi


def _arctan_derivative(x: jax.Array, slope: float) -> jax.Array:
    return 0.5 * slope / (1.0 + (0.5 * jnp.pi * slope * x) ** 2)


#: ``{name: (smooth step sigma_k(x, k), its derivative sigma_k'(x, k))}``; only the derivative is
#: used in training, the step documents what it is the derivative of (and tests check that).
SURROGATES: dict[str, tuple[Callable, Callable]] = {
    "fast_sigmoid": (_fast_sigmoid_step, _fast_sigmoid_derivative),
    "arctan": (_arctan_step, _arctan_derivative),
}


@functools.partial(jax.custom_jvp, nondiff_argnums=(2, 3))
def surrogate_spike(v: jax.Array, threshold: jax.Array, surrogate: str, slope: float) -> jax.Array:
    """``H(v - threshold)`` (1 where ``v >= threshold``) with the derivative ``sigma_k'(v - threshold)``.

    The value is computed exactly as :mod:`eggroll_snn.network` computes its spikes, so a network run
    with this spike gives bit-identical outputs. Differentiable in ``v`` and ``threshold`` (a
    learned threshold gets ``-sigma_k'``).

    Args:
      v: membrane potentials, any shape.
      threshold: firing threshold, broadcastable to ``v``.
      surrogate: a name in :data:`SURROGATES`.
      slope: ``k > 0``, the steepness of the smooth step (in 1 / membrane units).
    """
    return (v >= threshold).astype(v.dtype)


@surrogate_spike.defjvp
def _surrogate_spike_jvp(surrogate, slope, primals, tangents):
    v, threshold = primals
    v_dot, threshold_dot = tangents
    derivative = SURROGATES[surrogate][1](v - threshold, slope)
    return surrogate_spike(v, threshold, surrogate, slope), derivative * (v_dot - threshold_dot)


def spike_function(surrogate: str, slope: float) -> Callable[[jax.Array, jax.Array], jax.Array]:
    """``spike_fn(v, theta)`` for :func:`eggroll_snn.network.forward`: the Heaviside with surrogate ``surrogate``."""
    if surrogate not in SURROGATES:
        raise ConfigError(f"surrogate={surrogate!r} is not one of: {', '.join(SURROGATES)}")
    return lambda v, threshold: surrogate_spike(v, threshold, surrogate, slope)


# --------------------------------------------------------------------------------------------
# The gradient "strategy"


class GradientState(NamedTuple):
    """BPTT's part of the trainer's state (a pytree, checkpointed whole).

    Attributes:
      params: the network parameters.
      opt_state: the optax optimiser state.
      generation: int32 scalar, optimiser steps taken so far.
    """

    params: Any
    opt_state: Any
    generation: jax.Array


@dataclass(frozen=True)
class SurrogateGradient(OptimizerConfig):
    """Surrogate-gradient BPTT with the strategies' optimiser (static options, hashable).

    ``learning_rate``, ``optimizer``, ``weight_decay`` and the learning-rate schedule are the
    strategies' optimiser options (:class:`~eggroll_snn.strategies.base.OptimizerConfig`), so
    both step with the same optax transform. BPTT has no population or noise options.

    Attributes:
      surrogate: a name in :data:`SURROGATES`.
      surrogate_slope: ``k > 0`` of the smooth step whose derivative replaces the spike's.
    """

    name: ClassVar[str] = "bptt"
    #: Gradient methods have no population: nothing to split over devices.
    has_population: ClassVar[bool] = False
    surrogate: str = "fast_sigmoid"
    surrogate_slope: float = 10.0

    def __post_init__(self):
        super().__post_init__()
        if self.surrogate not in SURROGATES:
            raise ConfigError(f"surrogate={self.surrogate!r} is not one of: {', '.join(SURROGATES)}")
        if not (isinstance(self.surrogate_slope, (int, float)) and 0 < self.surrogate_slope < float("inf")):
            raise ConfigError(f"surrogate_slope={self.surrogate_slope!r} must be a finite number > 0")

    def init(self, key: jax.Array, params) -> GradientState:
        """The state before the first step (``key`` is unused: BPTT draws no noise)."""
        del key
        return GradientState(
            params=params, opt_state=self.optimizer_transform().init(params), generation=jnp.zeros((), jnp.int32)
        )

    def loss(self, params, inputs: jax.Array, labels: jax.Array, network: NetworkConfig):
        """``(mean cross-entropy, accuracy)`` of ``params`` on a batch, with the surrogate spike.

        Args:
          inputs: ``(B, T, input_size)`` float32.
          labels: ``(B,)`` int.

        Returns:
          ``(loss, accuracy)`` scalars, ``loss = -1/B sum_b log softmax(logits_b)[y_b]``.
        """
        spike_fn = spike_function(self.surrogate, self.surrogate_slope)
        logits = forward(params, inputs, network, spike_fn=spike_fn)
        losses, accuracies = member_losses(logits[None], labels)
        return losses[0], accuracies[0]

    def step(self, state: GradientState, inputs: jax.Array, labels: jax.Array, network: NetworkConfig):
        """One optimiser step on the minibatch: ``(new_state, metrics)`` (pure, jit-able).

        A step whose loss or gradient is not finite leaves the state unchanged and reports
        ``all_fitness_nan`` (the trainer then stops, as for a strategy whose every member failed).

        Returns:
          :class:`~eggroll_snn.strategies.base.GenerationMetrics`: ``fitness_mean = fitness_max = -loss``,
          ``train_loss``, ``train_accuracy`` (of the parameters before the step),
          ``invalid_fitness`` (0 or 1), ``sigma`` (0), ``learning_rate``, ``all_fitness_nan``.
        """
        (loss, accuracy), gradient = jax.value_and_grad(self.loss, has_aux=True)(state.params, inputs, labels, network)
        updates, opt_state = self.optimizer_transform().update(gradient, state.opt_state, state.params)
        stepped = GradientState(
            params=optax.apply_updates(state.params, updates), opt_state=opt_state, generation=state.generation + 1
        )
        finite = jnp.isfinite(loss) & jnp.all(
            jnp.asarray([jnp.all(jnp.isfinite(leaf)) for leaf in jax.tree_util.tree_leaves(gradient)])
        )
        new_state = jax.tree_util.tree_map(lambda new, old: jnp.where(finite, new, old), stepped, state)
        metrics = GenerationMetrics(
            fitness_mean=-loss,
            fitness_max=-loss,
            train_loss=loss,
            train_accuracy=accuracy,
            invalid_fitness=jnp.where(finite, 0, 1).astype(jnp.int32),
            sigma=jnp.zeros((), jnp.float32),
            learning_rate=self.learning_rate_at(state.generation),
            all_fitness_nan=~finite,
        )
        return new_state, metrics

    def generation(self, state: GradientState, inputs: jax.Array, labels: jax.Array, objective: Objective):
        """One optimiser step on the minibatch (the trainer's generation; ``objective.network`` is differentiated)."""
        return self.step(state, inputs, labels, objective.network)


__all__ = [
    "SURROGATES",
    "surrogate_spike",
    "spike_function",
    "GradientState",
    "SurrogateGradient",
]
