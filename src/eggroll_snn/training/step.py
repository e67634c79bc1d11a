"""One generation as a pure, compiled function, and the method it runs.

One generation, compiled once and scanned over several generations per call::

    key_g    = fold_in(data_key, g)                  minibatch of B recordings, drawn inside jit
    x        = frames[idx] as float32, (B, T, P*H*W)
    state, metrics = method.generation(state, x, y, objective)

For an evolution strategy a generation is ``ask`` -> every member's loss on the minibatch
(``objective.evaluate``) -> fitness -> ``tell``; for the gradient method one optimiser step on
the same minibatch (see :mod:`eggroll_snn.strategies`). The trainer, the bench and the scale-out
study all time this same step.
"""

from __future__ import annotations

import dataclasses
import math

import jax
import jax.numpy as jnp

from eggroll_snn.config import StrategySection, TrainConfig, TrainSection
from eggroll_snn.data.augment import augment_batch
from eggroll_snn.errors import ConfigError
from eggroll_snn.strategies import METHODS, Objective
from eggroll_snn.training.data import shift_frames


def strategy_from_config(config: TrainConfig):
    """The method :attr:`TrainConfig.method` names, with the ``[strategy]`` section's options (see
    :func:`method_from_section`).

    Raises:
      ConfigError: ``train.generations`` is unset (a time-budgeted run fixes it when it starts).
    """
    if config.train.generations is None:
        raise ConfigError(
            "option train.generations is unset: a run fixes it from train.time_budget_s when it starts "
            "(eggroll_snn.training.train); set it to build the method directly"
        )
    return method_from_section(config.method, config.strategy, config.train.generations, config.fixed_point.fraction_bits)


def method_from_section(name: str, section: StrategySection, generations: int, fraction_bits: int | None = None):
    """The registered method ``name`` built from a ``[strategy]`` section.

    Every option of the section that the method's class has is passed on (the section takes its
    defaults from those classes), plus ``total_generations = generations`` for the schedules and,
    for integer EGGROLL, ``fraction_bits`` (the ``[fixed_point]`` section's).
    """
    method_class = METHODS[name]
    options = {
        field.name: getattr(section, field.name)
        for field in dataclasses.fields(method_class)
        if field.name in section.__dataclass_fields__ and field.name != "method"
    }
    if "fraction_bits" in method_class.__dataclass_fields__:
        options["fraction_bits"] = fraction_bits
    return method_class(**options, total_generations=generations)


def minibatch(frames: jax.Array, labels: jax.Array, generation: jax.Array, data_key: jax.Array, train: TrainSection):
    """``(inputs (B, T, P*H*W) float32, labels (B,))`` of generation ``generation``, drawn inside jit.

    ``B = train.batch_size`` recordings without replacement when ``B <= N_train``, from
    ``fold_in(data_key, generation)``, each augmented as ``train.augment_*`` ask
    (:mod:`eggroll_snn.data.augment`, then the shift of ``train.augment_shift``).
    """
    batch_size, count = train.batch_size, frames.shape[0]
    batch_key = jax.random.fold_in(data_key, generation)
    indices = jax.random.choice(batch_key, count, (batch_size,), replace=batch_size > count)
    batch_frames = augment_batch(frames[indices], indices, jax.random.fold_in(batch_key, 2), train.augmentation)
    if train.augment_shift > 0:
        batch_frames = shift_frames(batch_frames, jax.random.fold_in(batch_key, 1), train.augment_shift)
    return batch_frames.astype(jnp.float32).reshape(batch_size, frames.shape[1], -1), labels[indices]


def make_generation_step(method, objective: Objective, train: TrainSection, data_key: jax.Array):
    """``step(state, frames, labels) -> (state, GenerationMetrics)`` for one generation (pure, jit-able).

    ``frames`` is the whole training part, ``(N_train, T, P, H, W)`` uint8 on the device;
    ``labels`` ``(N_train,)`` int32. The minibatch (:func:`minibatch`) is drawn inside the step,
    so the step needs no host input and the same generation always sees the same inputs.
    ``objective`` holds the network, the population evaluation (see
    :class:`eggroll_snn.training.evaluators.PopulationEvaluation`) and the fitness.
    """

    def step(state, frames, labels):
        inputs, batch_labels = minibatch(frames, labels, state.generation, data_key, train)
        return method.generation(state, inputs, batch_labels, objective)

    return step


def compile_chunk(step, state, frames, labels, length: int, options: dict | None = None):
    """AOT-compile ``length`` scanned generations: ``(state, frames, labels) -> (state, metrics (length,))``,
    with the XLA ``options`` given (:func:`eggroll_snn.compilation.compiler_options`; ``None``: none)."""

    def chunk(state, frames, labels):
        return jax.lax.scan(lambda carry, _: step(carry, frames, labels), state, None, length=length)

    return jax.jit(chunk, compiler_options=options or {}).lower(state, frames, labels).compile()


def chunk_length(train: TrainSection) -> int:
    """Generations per compiled call: divides ``eval_every`` and ``checkpoint_every`` so both fall on chunk ends."""
    return math.gcd(train.generations_per_call, train.eval_every, train.checkpoint_every)


__all__ = ["strategy_from_config", "method_from_section", "minibatch", "make_generation_step", "compile_chunk", "chunk_length"]
