"""Where a generation's population is evaluated: one factory for every place it can run.

:class:`PopulationEvaluation` gives the trainer the ``evaluate(params, perturbations, inputs,
labels) -> (loss (N,), accuracy (N,))`` of its :class:`~eggroll_snn.strategies.Objective` and the
compiler of its generation chunks, for whichever of these the config asks for:

* **in this process** (:func:`local_evaluator`): :func:`eggroll_snn.population.population_logits`,
  antithetic pairs sharing their first-layer product where the strategy allows it;
* **split over devices** (``train.devices`` != 1, :mod:`eggroll_snn.distributed`): each device
  evaluates its share and the fitness is all-gathered;
* **by an external process** (``fixed_point.evaluator``, :mod:`eggroll_snn.integer.hil`): hardware
  in the loop, the process lives for the ``with`` block.

With integer weights (``network.weights = int8/int4``) members are evaluated around the
parameters' grid projection ``Q(params)`` (:mod:`eggroll_snn.integer.grid`) while the strategy
updates the float masters.
"""

from __future__ import annotations

import contextlib
import functools
from typing import Callable

from eggroll_snn import distributed
from eggroll_snn.compilation import compiler_options
from eggroll_snn.config import TrainConfig
from eggroll_snn.errors import ConfigError
from eggroll_snn.integer.grid import WeightGrid
from eggroll_snn.integer.hil.client import external_population
from eggroll_snn.network import NetworkConfig
from eggroll_snn.population import population_losses
from eggroll_snn.strategies import Objective
from eggroll_snn.training import step as step_module


def local_evaluator(
    network: NetworkConfig, antithetic_pairs: bool = False, fast: bool = True, memory_budget_mb: float | None = None
) -> Callable:
    """``evaluate(params, perturbations, inputs, labels) -> (loss (n,), accuracy (n,))`` of the members given.

    ``antithetic_pairs``: the members come in (+E, -E) pairs whose shared product is computed
    once; ``fast``: the fast population forward, else the readable reference; members are
    evaluated in chunks that fit ``memory_budget_mb`` (see :func:`eggroll_snn.population.population_logits`).
    """

    def evaluate(params, perturbations, inputs, labels):
        return population_losses(
            params, perturbations, inputs, labels, network, antithetic_pairs=antithetic_pairs, fast=fast,
            memory_budget_mb=memory_budget_mb,
        )

    return evaluate


def local_objective(
    network: NetworkConfig, method, fitness: str = "cross_entropy", fast: bool = True, memory_budget_mb: float | None = None
) -> Objective:
    """The :class:`~eggroll_snn.strategies.Objective` of ``method`` with its population evaluated in
    this process (what the trainer uses on one device without integer weights or an evaluator)."""
    evaluate = local_evaluator(network, method.shares_pairs, fast, memory_budget_mb) if method.has_population else None
    return Objective(network, evaluate, fitness)


def fast_population_forward(config: TrainConfig, network: NetworkConfig) -> bool:
    """Whether the population takes the fast forward (``train.population_forward = "fast"`` and float
    arithmetic: a fixed-point network always takes the reference path)."""
    return config.train.population_forward == "fast" and network.fixed_point is None


def sharded_population(config: TrainConfig, network: NetworkConfig, strategy) -> distributed.ShardedPopulation | None:
    """The population split over the ``train.devices`` that ``config`` asks for, or None for one device.

    Raises:
      ConfigError: too many devices, a population size that does not split over them, or a
        method without a population.
    """
    devices = distributed.select_devices(config.train.devices)
    if len(devices) == 1:
        return None
    if not strategy.has_population:
        raise ConfigError(
            f"option train.devices = {config.train.devices} splits the population of an evolution strategy over "
            f"{len(devices)} devices, but strategy.method = {config.strategy.method!r} has no population: "
            "use train.devices = 1"
        )
    local = distributed.members_per_device(config.strategy.population_size, len(devices))
    # A device shares pair products only when it holds whole pairs.
    evaluate = local_evaluator(
        network, strategy.shares_pairs and local % 2 == 0, config.train.population_forward == "fast",
        config.train.memory_budget_mb,
    )
    return distributed.ShardedPopulation(
        distributed.population_mesh(devices), config.strategy.population_size, evaluate,
        compiler_options(fast_population_forward(config, network)),
    )


def _on_grid(evaluate: Callable, grid: WeightGrid) -> Callable:
    if grid.is_float:
        return evaluate
    return lambda params, perturbations, inputs, labels: evaluate(grid.apply(params), perturbations, inputs, labels)


class PopulationEvaluation:
    """The population evaluation a training config asks for (see the module docstring).

    Building it checks the device options (so a bad one fails before any file is written); the
    ``with`` block starts an external evaluator when one is configured and stops it at the end,
    replacing an exception raised while it failed by its own error.

    Attributes (inside the ``with`` block):
      evaluate: the population hook of the method's objective (``None`` for a gradient method).
      compile_chunk: ``(step, state, frames, labels, length) -> compiled chunk`` (a device mesh's
        when the population is sharded).
      check: call after each compiled call: raises an external evaluator's failure, or
        ``KeyboardInterrupt`` for a Ctrl-C during one of its requests (that call's results are void).
    """

    def __init__(self, config: TrainConfig, network: NetworkConfig, strategy):
        self.config, self.network, self.strategy = config, network, strategy
        self.sharded = sharded_population(config, network, strategy)
        if self.sharded is None:
            options = compiler_options(strategy.has_population and fast_population_forward(config, network))
            self.compile_chunk = functools.partial(step_module.compile_chunk, options=options)
        else:
            self.compile_chunk = self.sharded.compile_chunk
        self.evaluate = None
        self.check = lambda: None
        self._exit = contextlib.ExitStack()

    def __enter__(self) -> "PopulationEvaluation":
        external = self._exit.enter_context(external_population(self.config, self.network))
        self.check = getattr(external, "check", lambda: None)
        if external is not None:
            evaluate = external
        elif self.sharded is not None:
            evaluate = self.sharded.evaluate
        else:
            train = self.config.train
            fast = train.population_forward == "fast"
            evaluate = local_objective(self.network, self.strategy, train.fitness, fast, train.memory_budget_mb).evaluate
        if evaluate is not None:
            evaluate = _on_grid(evaluate, WeightGrid.for_network(self.config.network.weights, self.network))
        self.evaluate = evaluate
        return self

    def __exit__(self, *exc_info) -> bool:
        return self._exit.__exit__(*exc_info)


__all__ = ["local_evaluator", "local_objective", "sharded_population", "PopulationEvaluation"]
