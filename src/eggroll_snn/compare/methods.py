"""What a comparison runs: its methods over one base training config, its seeds and budgets, its TOML file.

The comparison config is a TOML file (see ``configs/compare-simulated.toml``)::

    [compare]
    seeds = 3                 # seeds train.seed + 0 .. train.seed + seeds - 1
    generations = 300         # the equal-generation budget (0 or absent: skip it)
    seconds = 120.0           # the equal-wall-clock budget (0 or absent: skip it)
    methods = ["eggroll-r4"]  # optional: which of [methods] to run, in this order

    [base.data]               # a training config (sections data, network, strategy, train)
    pool = 2

    [methods.eggroll-r4]      # per method: options that differ from [base]
    strategy.method = "eggroll"
    strategy.rank = 4
"""

from __future__ import annotations

import dataclasses
import math
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python 3.10 only
    import tomli as tomllib

from eggroll_snn import config as config_module
from eggroll_snn.config import TrainConfig
from eggroll_snn.errors import ConfigError

BUDGETS = ("generations", "seconds")
#: ``train.generations`` of a wall-clock run: a cap it should never reach. Decaying schedules
#: stretch over this many generations, so wall-clock comparisons want constant ones.
SECONDS_BUDGET_GENERATIONS = 10_000_000
#: The methods of the built-in comparison: label -> options over the base config. At rank 16 the
#: 10-class read-out's 10 x H weight uses its full rank 10 (each weight uses min(r, m, n)).
DEFAULT_METHODS: dict[str, dict[str, Any]] = {
    "eggroll-r1": {"strategy.method": "eggroll", "strategy.rank": 1},
    "eggroll-r4": {"strategy.method": "eggroll", "strategy.rank": 4},
    "eggroll-r16": {"strategy.method": "eggroll", "strategy.rank": 16},
    "full-rank-es": {"strategy.method": "full_rank"},
    "bptt": {"strategy.method": "bptt", "strategy.learning_rate": 0.003, "strategy.surrogate_slope": 2.0},
}


@dataclasses.dataclass(frozen=True)
class CompareConfig:
    """What to compare.

    Attributes:
      base: the training config every method starts from.
      methods: ``{label: {"section.key": value}}``, run in this order; each label's resolved
        config is ``base`` with its options (then the command line's) applied.
      seeds: runs per method and budget, with ``train.seed = base seed + 0, 1, ...``.
      generations: the equal-generation budget, or None to skip it.
      seconds: the equal-wall-clock budget in seconds, or None to skip it.
    """

    base: TrainConfig = dataclasses.field(default_factory=TrainConfig)
    methods: Mapping[str, Mapping[str, Any]] = dataclasses.field(default_factory=lambda: dict(DEFAULT_METHODS))
    seeds: int = 3
    generations: int | None = 300
    seconds: float | None = 120.0

    def __post_init__(self) -> None:
        if not self.methods:
            raise ConfigError("a comparison needs at least one method ([methods.<label>] tables or --methods)")
        for label in self.methods:
            if not label or any(c in label for c in "/\\") or label.startswith("."):
                raise ConfigError(f"method label {label!r} cannot name a folder: use letters, digits, '-' and '_'")
        if isinstance(self.seeds, bool) or not isinstance(self.seeds, int) or self.seeds < 1:
            raise ConfigError(f"option compare.seeds = {self.seeds!r} must be a positive number of seeds")
        if self.generations is not None and (
            isinstance(self.generations, bool) or not isinstance(self.generations, int) or self.generations < 1
        ):
            raise ConfigError(f"option compare.generations = {self.generations!r} must be a positive integer (or 0 to skip)")
        if self.seconds is not None and not (isinstance(self.seconds, (int, float)) and 0 < self.seconds < math.inf):
            raise ConfigError(f"option compare.seconds = {self.seconds!r} must be a positive number of seconds (or 0 to skip)")
        if self.generations is None and self.seconds is None:
            raise ConfigError("both budgets are off (compare.generations and compare.seconds): set at least one")
        for budget in self.budgets():
            for label in self.methods:
                self.run_config(budget, label, 0)  # every run's config is valid before anything runs

    def budgets(self) -> list[str]:
        """The budgets to run, of :data:`BUDGETS`."""
        return [name for name in BUDGETS if getattr(self, name) is not None]

    def seed_values(self) -> list[int]:
        return [self.base.train.seed + index for index in range(self.seeds)]

    def run_config(self, budget: str, label: str, seed_index: int) -> TrainConfig:
        """The training config of one run (ConfigError names the method for a bad option)."""
        overrides = dict(self.methods[label])
        overrides["train.seed"] = self.base.train.seed + seed_index
        if budget == "generations":
            overrides.update({"train.generations": self.generations, "train.max_seconds": None})
        else:
            overrides.update({"train.generations": SECONDS_BUDGET_GENERATIONS, "train.max_seconds": float(self.seconds)})
        try:
            return config_module.apply_overrides(self.base, overrides)
        except ConfigError as error:
            raise ConfigError(f"method {label!r}: {error}") from None

    def with_options(
        self,
        overrides: Mapping[str, Any] | None = None,
        methods: list[str] | None = None,
        seeds: int | None = None,
        generations: int | None = None,
        seconds: float | None = None,
    ) -> "CompareConfig":
        """A copy changed by command-line options.

        ``overrides`` (``{"section.key": value}``, e.g. ``data.root``) apply to every method and
        win over its own options; ``methods`` picks labels; ``generations`` / ``seconds`` of 0
        switch a budget off, None keeps the config's.
        """
        chosen = dict(self.methods)
        if methods is not None:
            unknown = [label for label in methods if label not in self.methods]
            if unknown:
                raise ConfigError(
                    f"--methods: unknown method {unknown[0]!r}; the comparison's methods are: {', '.join(self.methods)}"
                )
            chosen = {label: self.methods[label] for label in methods}
        base = self.base
        if overrides:
            base = config_module.apply_overrides(base, overrides)
            chosen = {label: {**options, **overrides} for label, options in chosen.items()}
        values = {"seeds": self.seeds, "generations": self.generations, "seconds": self.seconds}
        for name, value in (("seeds", seeds), ("generations", generations), ("seconds", seconds)):
            if value is not None:
                values[name] = None if (name != "seeds" and value == 0) else value
        return CompareConfig(base=base, methods=chosen, **values)


def _flatten(table: Mapping, prefix: str = "") -> dict[str, Any]:
    """``{"strategy": {"rank": 4}}`` -> ``{"strategy.rank": 4}``."""
    flat = {}
    for key, value in table.items():
        if isinstance(value, Mapping):
            flat.update(_flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def loads_compare(text: str, source: str = "<string>") -> CompareConfig:
    """Parse a comparison config (TOML; see the module docstring)."""
    try:
        tables = tomllib.loads(text)
    except (tomllib.TOMLDecodeError, ValueError, RecursionError) as error:  # incl. huge integers, deep nesting
        raise ConfigError(f"{source}: not valid TOML: {error}") from None
    try:
        unknown = sorted(set(tables) - {"compare", "base", "methods"})
        if unknown:
            raise ConfigError(f"unknown table [{unknown[0]}]; a comparison config has [compare], [base.*] and [methods.*]")
        settings = dict(tables.get("compare", {}))
        unknown = sorted(set(settings) - {"seeds", "generations", "seconds", "methods"})
        if unknown:
            raise ConfigError(f"unknown option compare.{unknown[0]}; the options are seeds, generations, seconds, methods")
        base = config_module.from_dict(tables.get("base", {}))
        methods = {label: _flatten(options) for label, options in tables.get("methods", {}).items()}
        order = settings.pop("methods", None)
        for name in ("generations", "seconds"):
            if settings.get(name) == 0:
                settings[name] = None
        config = CompareConfig(base=base, methods=methods or dict(DEFAULT_METHODS), **settings)
        return config.with_options(methods=order) if order is not None else config
    except ConfigError as error:
        raise ConfigError(f"{source}: {error}") from None
    except TypeError as error:  # a non-table where a table belongs
        raise ConfigError(f"{source}: malformed comparison config: {error}") from None


def load_compare(path: str | Path) -> CompareConfig:
    """Read a comparison config file (e.g. ``configs/compare-simulated.toml``)."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise ConfigError(f"cannot read comparison config {path}: {error}") from None
    return loads_compare(text, source=str(path))

