"""One generation as a pure, compiled function, and the strategy and population it runs.

One generation, compiled once and scanned over several generations per call::

    key_g    = fold_in(data_key, g)                  minibatch of B recordings, drawn inside jit
    x        = frames[idx] as float32, (B, T, P*H*W)
    E        = strategy.ask(state)                   N perturbations (low rank for EGGROLL)
    logits   = population_logits(params, E, x)       (N, B, C)
    fitness  = -mean_b CE(logits_i, y)               (N,), maximised (or minibatch accuracy)
    state    = strategy.tell(state, fitness)

A gradient method (:mod:`eggroll_snn.bptt`) takes one optimiser step on the same minibatch
instead of asking and telling.
"""

from __future__ import annotations

import dataclasses
import math

import jax
import jax.numpy as jnp

from eggroll_snn import bptt, distributed, snn, strategies
from eggroll_snn.config import TrainConfig, TrainSection
from eggroll_snn.errors import ConfigError
from eggroll_snn.population import member_losses, population_logits
from eggroll_snn.quantize import WeightGrid
from eggroll_snn.strategies.integer_eggroll import IntegerEggrollStrategy
from eggroll_snn.training.data import shift_frames


def strategy_from_config(config: TrainConfig):
    """The strategy (or gradient method) named by ``config.strategy.method``, with the section's options.

    Every option of the ``[strategy]`` section that the method's class has is passed on (the
    section takes its defaults from those classes), plus ``total_generations`` from
    ``train.generations`` for the schedules; a fixed-point network's members come from
    :class:`~eggroll_snn.strategies.integer_eggroll.IntegerEggrollStrategy`. A gradient method (:data:`eggroll_snn.bptt.GRADIENT_METHODS`)
    comes back in the strategies' place; :func:`make_generation_step` gives it the minibatch
    instead of asking and telling.
    """
    section = config.strategy
    method_class = strategies.STRATEGIES.get(section.method) or bptt.GRADIENT_METHODS[section.method]
    extra = {}
    if config.network.neuron == "fixed_point":  # integer members (checked: the method is EGGROLL)
        method_class, extra = IntegerEggrollStrategy, {"fraction_bits": config.fixed_point.fraction_bits}
    options = {
        field.name: getattr(section, field.name)
        for field in dataclasses.fields(method_class)
        if field.name in section.__dataclass_fields__ and field.name != "method"
    }
    return method_class(**options, **extra, total_generations=config.train.generations)


def member_evaluate(network: snn.NetworkConfig, antithetic_pairs: bool = False):
    """``evaluate(params, perturbations, inputs, labels) -> (loss (n,), accuracy (n,))`` of the members given.

    ``antithetic_pairs``: the members come in (+E, -E) pairs whose shared product is computed
    once (see :func:`eggroll_snn.population.population_logits`).
    """

    def evaluate(params, perturbations, inputs, labels):
        logits = population_logits(params, perturbations, inputs, network, antithetic_pairs=antithetic_pairs)
        return member_losses(logits, labels)

    return evaluate


def sharded_population(config: TrainConfig, network: snn.NetworkConfig, strategy) -> distributed.ShardedPopulation | None:
    """The population split over the ``train.devices`` that ``config`` asks for, or None for one device.

    Raises:
      ConfigError: too many devices, a population size that does not split over them, or a
        method without a population.
    """
    devices = distributed.select_devices(config.train.devices)
    if len(devices) == 1:
        return None
    if config.strategy.method not in strategies.STRATEGIES:
        raise ConfigError(
            f"option train.devices = {config.train.devices} splits the population of an evolution strategy over "
            f"{len(devices)} devices, but strategy.method = {config.strategy.method!r} has no population: "
            "use train.devices = 1"
        )
    size = config.strategy.population_size
    local = distributed.members_per_device(size, len(devices))
    # A device shares pair products only when it holds whole pairs.
    evaluate = member_evaluate(network, antithetic_pairs=strategy.shares_pairs and local % 2 == 0)
    return distributed.ShardedPopulation(distributed.population_mesh(devices), size, evaluate)


def _finite_mean(values: jax.Array, finite: jax.Array) -> jax.Array:
    return jnp.sum(jnp.where(finite, values, 0.0)) / jnp.maximum(jnp.sum(finite), 1)


def minibatch(frames: jax.Array, labels: jax.Array, generation: jax.Array, data_key: jax.Array, train: TrainSection):
    """``(inputs (B, T, P*H*W) float32, labels (B,))`` of generation ``generation``, drawn inside jit.

    ``B = train.batch_size`` recordings without replacement when ``B <= N_train``, from
    ``fold_in(data_key, generation)``, each shifted at random when ``train.augment_shift > 0``.
    """
    batch_size, count = train.batch_size, frames.shape[0]
    batch_key = jax.random.fold_in(data_key, generation)
    indices = jax.random.choice(batch_key, count, (batch_size,), replace=batch_size > count)
    batch_frames = frames[indices]
    if train.augment_shift > 0:
        batch_frames = shift_frames(batch_frames, jax.random.fold_in(batch_key, 1), train.augment_shift)
    return batch_frames.astype(jnp.float32).reshape(batch_size, frames.shape[1], -1), labels[indices]


def make_generation_step(
    strategy, network: snn.NetworkConfig, train: TrainSection, data_key: jax.Array, evaluate=None,
    weight_grid: WeightGrid | None = None,
):
    """``step(state, frames, labels) -> (state, metrics)`` for one generation (pure, jit-able).

    ``frames`` is the whole training part, ``(N_train, T, P, H, W)`` uint8 on the device;
    ``labels`` ``(N_train,)`` int32. The minibatch (:func:`minibatch`) is drawn inside the step,
    so the step needs no host input and the same generation always sees the same inputs.

    ``evaluate(params, perturbations, inputs, labels) -> (loss (N,), accuracy (N,))`` scores the
    population; the default (:func:`member_evaluate`) runs it all here,
    :meth:`eggroll_snn.distributed.ShardedPopulation.evaluate` splits it over devices.

    ``weight_grid``: the population is evaluated around ``weight_grid.apply(params)`` (integer
    weights, see :mod:`eggroll_snn.quantize`) while the strategy updates the float ``params``.
    """
    if isinstance(strategy, bptt.SurrogateGradient):  # a gradient step on the same minibatch

        def gradient_step(state, frames, labels):
            inputs, batch_labels = minibatch(frames, labels, state.generation, data_key, train)
            return strategy.step(state, inputs, batch_labels, network)

        return gradient_step

    fitness = train.fitness
    if evaluate is None:
        evaluate = member_evaluate(network, antithetic_pairs=strategy.shares_pairs)

    def step(state, frames, labels):
        inputs, batch_labels = minibatch(frames, labels, state.generation, data_key, train)
        perturbations = strategy.ask(state)
        params = state.params if weight_grid is None else weight_grid.apply(state.params)
        losses, accuracies = evaluate(params, perturbations, inputs, batch_labels)
        member_fitness = -losses if fitness == "cross_entropy" else accuracies
        new_state, info = strategy.tell(state, member_fitness)
        finite = jnp.isfinite(member_fitness)
        metrics = {
            "fitness_mean": _finite_mean(member_fitness, finite),
            "fitness_max": jnp.max(jnp.where(finite, member_fitness, -jnp.inf)),
            "train_loss": _finite_mean(losses, finite),
            "train_accuracy": _finite_mean(accuracies, finite),
            "invalid_fitness": info["invalid_fitness"],
            "all_fitness_nan": info["all_fitness_nan"],
            "sigma": info["sigma"],
            "learning_rate": info["learning_rate"],
        }
        return new_state, metrics

    return step


def compile_chunk(step, state, frames, labels, length: int):
    """AOT-compile ``length`` scanned generations: ``(state, frames, labels) -> (state, metrics (length,))``."""

    def chunk(state, frames, labels):
        return jax.lax.scan(lambda carry, _: step(carry, frames, labels), state, None, length=length)

    return jax.jit(chunk).lower(state, frames, labels).compile()


def chunk_length(train: TrainSection) -> int:
    """Generations per compiled call: divides ``eval_every`` and ``checkpoint_every`` so both fall on chunk ends."""
    return math.gcd(train.generations_per_call, train.eval_every, train.checkpoint_every)


__all__ = [
    "strategy_from_config",
    "member_evaluate",
    "sharded_population",
    "minibatch",
    "make_generation_step",
    "compile_chunk",
    "chunk_length",
]
