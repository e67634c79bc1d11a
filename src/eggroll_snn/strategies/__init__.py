"""Training methods that maximise fitness, in one registry selected by name.

``METHODS`` maps ``strategy.method`` to its class:

* ``"eggroll"``: low-rank evolution strategies (:mod:`.eggroll`);
* ``"full_rank"``: OpenAI-ES with dense noise, the EGGROLL baseline (:mod:`.full_rank`);
* ``"eggroll_integer"``: EGGROLL with integer noise, whose members are integer networks
  (:mod:`.integer_eggroll`; the method of ``network.neuron = "fixed_point"``);
* ``"bptt"``: surrogate-gradient backpropagation through time, the gradient reference (:mod:`.bptt`).

Each is a frozen dataclass of static options with pure ``init(key, params)`` and
``generation(state, inputs, labels, objective) -> (state, GenerationMetrics)``; the evolution
strategies also have ``ask(state)`` and ``tell(state, fitness)`` (see :mod:`.base`). Build one
with :func:`make_strategy`.
"""

from __future__ import annotations

import dataclasses

from eggroll_snn.errors import ConfigError
from eggroll_snn.strategies.integer_eggroll import IntegerEggrollStrategy
from eggroll_snn.strategies.base import (
    EvolutionStrategy,
    GenerationMetrics,
    Objective,
    OptimizerConfig,
    StrategyConfig,
    StrategyState,
    all_fitness_nan_error,
    raise_if_all_fitness_nan,
)
from eggroll_snn.strategies.bptt import GradientState, SurrogateGradient
from eggroll_snn.strategies.eggroll import EggrollStrategy, check_rank, max_rank
from eggroll_snn.strategies.full_rank import FullRankStrategy

METHODS: dict[str, type] = {
    method.name: method for method in (EggrollStrategy, FullRankStrategy, IntegerEggrollStrategy, SurrogateGradient)
}
#: The methods that evaluate a population (evolution strategies).
STRATEGIES: dict[str, type[EvolutionStrategy]] = {
    name: method for name, method in METHODS.items() if issubclass(method, EvolutionStrategy)
}


def make_strategy(name: str, **config):
    """The method registered as ``name`` with options ``config``.

    Raises:
      ConfigError: unknown ``name`` (the ``method`` option), an option the method does not have
        (e.g. ``rank`` for ``full_rank``), or an invalid option value.
    """
    if name not in METHODS:
        raise ConfigError(f"method={name!r} is not a known method; choose one of: {', '.join(METHODS)}")
    method_class = METHODS[name]
    known = {field.name for field in dataclasses.fields(method_class)}
    unknown = sorted(set(config) - known)
    if unknown:
        raise ConfigError(
            f"option {unknown[0]!r} does not apply to method={name!r}; its options are: {', '.join(sorted(known))}"
        )
    return method_class(**config)


__all__ = [
    "METHODS",
    "STRATEGIES",
    "make_strategy",
    "EvolutionStrategy",
    "OptimizerConfig",
    "StrategyConfig",
    "StrategyState",
    "Objective",
    "GenerationMetrics",
    "EggrollStrategy",
    "FullRankStrategy",
    "IntegerEggrollStrategy",
    "SurrogateGradient",
    "GradientState",
    "check_rank",
    "max_rank",
    "all_fitness_nan_error",
    "raise_if_all_fitness_nan",
]
