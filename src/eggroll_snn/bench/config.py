"""What a benchmark runs: :class:`BenchConfig` (network, N, B, T, data, repeats) and the method names.

Every other module of :mod:`eggroll_snn.bench` takes a :class:`BenchConfig`; this one checks its
values once, so a bad option fails here with a message that names it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from eggroll_snn.config import TrainConfig
from eggroll_snn.errors import ConfigError
from eggroll_snn.perturbation import check_population_size

OTHER_METHODS = ("full_rank", "evosax_open_es", "inference", "population_sigma0", "bptt", "matmul")
#: Side of the square float32 matrices of the ``matmul`` ceiling (2 * 1024**3 = 2.1 GFLOP a call).
MATMUL_SIZE = 1024
#: The reference every ratio is taken against.
REFERENCE_METHOD = "eggroll_r1"
#: Methods that the sweeps time at every point by default.
SWEEP_METHODS = ("eggroll_r1", "full_rank", "inference")
#: Sweep grids of the issue (population, hidden width, input shape).
SWEEP_POPULATIONS = (64, 256, 1024, 4096)
SWEEP_HIDDEN_SIZES = (128, 512, 2048)
SWEEP_INPUT_SHAPES = ((2, 34, 34), (2, 17, 17))
#: Largest population the dense-noise methods and the inference ceiling get by default on CPU: their
#: dense noise grows as N m n (see benchmarks/README.md for the cost at N = 4096).
CPU_MAX_POPULATION = 1024
#: Dense-noise methods (per-member memory O(m n)) and the ceiling (N*B*T*input_size bytes of data).
CAPPED_METHODS = ("full_rank", "evosax_open_es", "inference")


_TRAIN_DEFAULTS = TrainConfig()


@dataclass(frozen=True)
class BenchConfig:
    """One benchmark configuration; by default the network, N, B and T the trainer uses by default
    (``eggroll-snn train`` with no options), taken from the training config's defaults.

    Attributes:
      population_size: members N per generation (even: the strategies are antithetic).
      batch_size: recordings B in the minibatch every member is evaluated on.
      time_bins: time bins T per recording.
      input_shape: ``(P, H, W)`` of one frame; the network's input size is ``P*H*W``.
      hidden_sizes: LIF layer widths.
      num_classes: read-out units.
      ranks: EGGROLL ranks to time (``eggroll_r{r}`` with the fast population forward,
        ``reference_r{r}`` with the readable reference forward); must include 1, the reference.
      repeats: timed calls per method (the median is reported).
      warmup: untimed calls per method after compiling.
      seed: seed of the data, the initial parameters and the noise.
      event_rate: mean events per pixel, polarity and bin of the random frames.
    """

    population_size: int = _TRAIN_DEFAULTS.strategy.population_size
    batch_size: int = _TRAIN_DEFAULTS.train.batch_size
    time_bins: int = _TRAIN_DEFAULTS.data.num_time_bins
    input_shape: tuple[int, int, int] = _TRAIN_DEFAULTS.data.input_shape
    hidden_sizes: tuple[int, ...] = _TRAIN_DEFAULTS.network.hidden_sizes
    num_classes: int = _TRAIN_DEFAULTS.data.num_classes
    ranks: tuple[int, ...] = (1, 2, 4, 8, 16)
    repeats: int = 5
    warmup: int = 1
    seed: int = 0
    event_rate: float = 0.2

    def __post_init__(self):
        for name in ("input_shape", "hidden_sizes", "ranks"):
            object.__setattr__(self, name, tuple(getattr(self, name)))
        for name in ("population_size", "batch_size", "time_bins", "num_classes", "repeats"):
            _require_int(name, getattr(self, name), 1)
        _require_int("warmup", self.warmup, 0)
        check_population_size(self.population_size, antithetic=True, option="bench --population-size")
        if len(self.input_shape) != 3:
            raise ConfigError(f"bench input shape {self.input_shape} must be three numbers P H W (e.g. 2 34 34)")
        for name, values in (("input_shape", self.input_shape), ("hidden_sizes", self.hidden_sizes), ("ranks", self.ranks)):
            if not values:
                raise ConfigError(f"bench option {name} is empty; give at least one value")
            for value in values:
                _require_int(name, value, 1)
        if 1 not in self.ranks:
            raise ConfigError(f"bench ranks {self.ranks} must include 1: every ratio is taken against EGGROLL r=1")
        if not (isinstance(self.event_rate, (int, float)) and self.event_rate > 0):
            raise ConfigError(f"bench event_rate={self.event_rate!r} must be a number > 0")

    @property
    def input_size(self) -> int:
        """``P*H*W``: inputs per time bin."""
        return int(np.prod(self.input_shape))

    @property
    def layer_sizes(self) -> tuple[int, ...]:
        """``(input_size, *hidden_sizes, num_classes)``."""
        return (self.input_size, *self.hidden_sizes, self.num_classes)

    @property
    def member_evaluations(self) -> int:
        """``N*B``: sample evaluations per generation."""
        return self.population_size * self.batch_size

    def network(self):
        """The :class:`~eggroll_snn.network.NetworkConfig` of this benchmark."""
        from eggroll_snn.network import NetworkConfig

        return NetworkConfig(input_size=self.input_size, hidden_sizes=self.hidden_sizes, num_classes=self.num_classes)

    def method_names(self) -> tuple[str, ...]:
        """Every method this configuration times, reference first."""
        ranks = sorted(self.ranks)
        return tuple(f"eggroll_r{rank}" for rank in ranks) + tuple(f"reference_r{rank}" for rank in ranks) + OTHER_METHODS

    def forward_flops(self, rank: int | None = None) -> int:
        """Floating-point operations of one generation's population forward as the reference computes
        it (dense networks): the first product ``x W^T`` once for all members; every member's later
        products and, at rank ``r``, its ``2 r (m + n)`` per input of each weight; 6 per neuron
        update. ``rank=None``: the unperturbed members (no rank term)."""
        sizes = self.layer_sizes
        rows = self.batch_size * self.time_bins  # inputs per member and weight
        members = self.population_size
        flops = 2 * rows * sizes[0] * sizes[1]  # the shared first product
        flops += 2 * members * rows * sum(n * m for n, m in zip(sizes[1:-1], sizes[2:]))
        if rank is not None:
            flops += 2 * members * rows * sum(min(rank, n, m) * (n + m) for n, m in zip(sizes[:-1], sizes[1:]))
        flops += 6 * members * rows * sum(sizes[1:-1])
        return flops


def method_rank(method: str) -> int:
    """r of the method name ``eggroll_r{r}`` or ``reference_r{r}``."""
    return int(method.rsplit("_r", 1)[1])


def _require_int(name: str, value, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ConfigError(f"bench option {name} has the value {value!r}; it must be an integer >= {minimum}")
