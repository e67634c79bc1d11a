"""Evolution strategies that maximise fitness: a registry selected by name.

``STRATEGIES = {"eggroll": EggrollStrategy, "full_rank": FullRankStrategy}``; build one with
:func:`make_strategy`. Each strategy is a frozen dataclass of static options with pure
``init(key, params)``, ``ask(state)`` and ``tell(state, fitness)`` (see :mod:`.base`).
"""

from __future__ import annotations

import dataclasses

from eggroll_snn.errors import ConfigError
from eggroll_snn.strategies.base import (
    EvolutionStrategy,
    OptimizerConfig,
    StrategyConfig,
    StrategyState,
    all_fitness_nan_error,
    raise_if_all_fitness_nan,
)
from eggroll_snn.strategies.eggroll import EggrollStrategy, max_rank
from eggroll_snn.strategies.full_rank import FullRankStrategy

STRATEGIES: dict[str, type[EvolutionStrategy]] = {
    "eggroll": EggrollStrategy,
    "full_rank": FullRankStrategy,
}


def make_strategy(name: str, **config) -> EvolutionStrategy:
    """The strategy registered as ``name`` with options ``config``.

    Raises:
      ConfigError: unknown ``name`` (the ``method`` option), an option the strategy does not have
        (e.g. ``rank`` for ``full_rank``), or an invalid option value.
    """
    if name not in STRATEGIES:
        raise ConfigError(f"method={name!r} is not a known strategy; choose one of: {', '.join(STRATEGIES)}")
    strategy_class = STRATEGIES[name]
    known = {field.name for field in dataclasses.fields(strategy_class)}
    unknown = sorted(set(config) - known)
    if unknown:
        raise ConfigError(
            f"option {unknown[0]!r} does not apply to method={name!r}; its options are: {', '.join(sorted(known))}"
        )
    return strategy_class(**config)


__all__ = [
    "STRATEGIES",
    "make_strategy",
    "EvolutionStrategy",
    "OptimizerConfig",
    "StrategyConfig",
    "StrategyState",
    "EggrollStrategy",
    "FullRankStrategy",
    "max_rank",
    "all_fitness_nan_error",
    "raise_if_all_fitness_nan",
]
