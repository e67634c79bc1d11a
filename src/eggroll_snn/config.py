"""Training configuration: nested frozen dataclasses, TOML load/dump, command-line overrides.

A :class:`TrainConfig` has four sections, each a frozen dataclass:

* ``data``: where the recordings are and how they become frames (mirrors
  :class:`eggroll_snn.data.frames.FrameConfig`), plus the validation fraction;
* ``network``: the LIF network (mirrors :class:`eggroll_snn.snn.NetworkConfig` without the sizes
  that the data fixes: ``input_size = 2 * (34 // pool)**2`` and ``num_classes = 10``);
* ``strategy``: the evolution strategy (method, population, sigma, rank, optimiser, schedules);
* ``train``: the generation loop (generations, minibatch, evaluation/checkpoint cadence, seed).

Every option is checked when the dataclass is built, so an invalid configuration cannot exist:
a bad value raises :class:`~eggroll_snn.errors.ConfigError` naming the option (``section.key``),
the value and the allowed range. Unknown keys in a TOML file or a ``--set`` override are refused
with their name. :func:`dumps` writes a TOML file that :func:`loads` reads back to an equal config.
"""

from __future__ import annotations

import dataclasses
import json
import math
import sys
import types
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal, Optional

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python 3.10 only
    import tomli as tomllib

from eggroll_snn.data.events import SENSOR_HEIGHT, SENSOR_WIDTH
from eggroll_snn.errors import ConfigError
from eggroll_snn.fixed_point import FixedPointSection, check_fixed_point  # fixed-point hook (issue 14)

NUM_CLASSES = 10
NUM_POLARITIES = 2


_ALLOWED: dict[str, str] = {}
"""``option -> allowed range`` as each section's checks state it; filled as sections are built, so a
wrong-type error can state the range too (the checks stay the one home of each rule)."""


def _check(condition: bool, option: str, value: Any, allowed: str) -> None:
    """Raise a :class:`ConfigError` naming ``option`` unless ``condition`` holds."""
    _ALLOWED.setdefault(option, allowed)
    if not condition:
        raise ConfigError(f"option {option} = {value!r} is out of range: {allowed}")


@dataclasses.dataclass(frozen=True)
class DataSection:
    """Where the recordings are and how they become frames ``(T, P, H', W')``.

    The frame options are those of :class:`eggroll_snn.data.frames.FrameConfig` that give every
    recording the same number of frames T (the event-count mode does not, so it is not offered).

    Attributes:
      root: folder in the N-MNIST layout (``NMNIST/Train/<digit>/*.bin``) or holding the official
        zips; ``None`` uses the built-in simulated N-MNIST.
      num_time_bins: T, equal bins over ``[0, duration_us)`` (unused when ``window_us`` is set).
      window_us: bin width in microseconds (``T = duration_us // window_us``), or unset.
      duration_us: the fixed window ``[0, duration_us)`` cut into bins; later events are dropped.
      include_incomplete: with ``window_us``, keep a last partial bin.
      pool: spatial sum-pooling factor dividing 34: 1, 2 (17 x 17 pixels), 17 or 34.
      binarize: clip every frame count to 0/1.
      first_saccade_only: keep only the first saccade (events before 100 ms).
      validation_fraction: share of each class of the training split held out to select the model.
      cache_dir: folder for the frame cache and the simulated data (unset = ``EGGROLL_SNN_CACHE``
        or ``~/.cache/eggroll-snn``).
      skip_bad: leave out bad recordings (listed in the run's ``skipped_files.json``) instead of
        stopping at the first one.
    """

    root: Optional[str] = None
    num_time_bins: int = 8
    window_us: Optional[int] = None
    duration_us: int = 315_000
    include_incomplete: bool = False
    pool: int = 2
    binarize: bool = False
    first_saccade_only: bool = False
    validation_fraction: float = 0.1
    cache_dir: Optional[str] = None
    skip_bad: bool = False

    def __post_init__(self) -> None:
        _check(1 <= self.num_time_bins <= 10_000, "data.num_time_bins", self.num_time_bins, "an integer 1..10000")
        _check(
            1 <= self.duration_us <= 100_000_000, "data.duration_us", self.duration_us,
            "a positive number of microseconds up to 100000000",
        )
        if self.window_us is not None:
            longest = self.duration_us - 1 if self.include_incomplete else self.duration_us
            _check(
                1 <= self.window_us <= max(longest, 1) and self.duration_us // self.window_us <= 10_000,
                "data.window_us", self.window_us,
                f"a positive number of microseconds, at most data.duration_us ({self.duration_us}) and giving "
                "at most 10000 bins, or unset",
            )
        _check(
            self.pool >= 1 and SENSOR_WIDTH % self.pool == 0 and SENSOR_HEIGHT % self.pool == 0, "data.pool", self.pool,
            "a divisor of the 34-pixel sensor side: 1, 2, 17 or 34",
        )
        _check(
            0.0 < self.validation_fraction < 1.0,
            "data.validation_fraction", self.validation_fraction, "a fraction strictly between 0 and 1",
        )

    @property
    def input_size(self) -> int:
        """Inputs per time step: ``P * (34 // pool) * (34 // pool)``."""
        return NUM_POLARITIES * (SENSOR_HEIGHT // self.pool) * (SENSOR_WIDTH // self.pool)

    @property
    def input_shape(self) -> tuple[int, int, int]:
        """``(P, H, W)`` of one time bin of the frames."""
        return (NUM_POLARITIES, SENSOR_HEIGHT // self.pool, SENSOR_WIDTH // self.pool)

    def frame_config(self):
        """The equivalent :class:`eggroll_snn.data.frames.FrameConfig`."""
        from eggroll_snn.data.frames import FrameConfig

        return FrameConfig(
            num_time_bins=self.num_time_bins,
            window_us=self.window_us,
            duration_us=self.duration_us,
            include_incomplete=self.include_incomplete,
            pool=self.pool,
            binarize=self.binarize,
            first_saccade_only=self.first_saccade_only,
        )


@dataclasses.dataclass(frozen=True)
class NetworkSection:
    """The LIF network; see :class:`eggroll_snn.snn.NetworkConfig` for the equations.

    Attributes:
      hidden_sizes: neurons per hidden LIF layer (one entry per layer; may be empty).
      beta: membrane decay per time step of the hidden layers, ``v <- beta v + W s + b``.
      threshold: spike threshold theta of the hidden layers.
      reset: ``"subtract"`` (v <- v - theta after a spike) or ``"zero"`` (v <- 0).
      readout: logits = ``"mean"`` or ``"max"`` of the read-out membrane over time, or
        ``"spike_count"``: spike counts of a LIF output layer.
      readout_beta: membrane decay of the non-spiking read-out layer.
      learn_beta, learn_threshold: evolve per-neuron beta / theta instead of fixing them.
      init_gain: initial weights are ``N(0, (init_gain / sqrt(fan_in))^2)``.
      compute_dtype: ``"float32"`` or ``"bfloat16"`` for the matmuls (membranes stay float32).
      weights: ``"float32"``, or ``"int8"`` / ``"int4"``: the network runs on its weights and biases
        projected onto a per-layer integer grid (integers times a scale; see
        :mod:`eggroll_snn.quantize`) and the saved model is on that grid.
      conv_channels: output channels of each convolutional LIF block before the dense layers
        (empty: a dense network); conv_kernel, conv_stride, conv_pool: their kernel side, stride
        and sum-pooling window.
      neuron: ``"float"`` (float32 membranes) or ``"fixed_point"``: the integer network of a digital
        chip (int8 weights, saturating integer states, shift or 12-bit multiplier leak; options in
        the ``[fixed_point]`` section, equations in :mod:`eggroll_snn.fixed_point`).
    """

    hidden_sizes: tuple[int, ...] = (128,)
    beta: float = 0.9
    threshold: float = 1.0
    reset: Literal["subtract", "zero"] = "subtract"
    readout: Literal["mean", "max", "spike_count"] = "mean"
    readout_beta: float = 0.9
    learn_beta: bool = False
    learn_threshold: bool = False
    init_gain: float = 1.0
    compute_dtype: Literal["float32", "bfloat16"] = "float32"
    weights: Literal["float32", "int8", "int4"] = "float32"
    conv_channels: tuple[int, ...] = ()
    conv_kernel: int = 3
    conv_stride: int = 1
    conv_pool: int = 2
    neuron: Literal["float", "fixed_point"] = "float"  # fixed-point hook (issue 14)

    def __post_init__(self) -> None:
        from eggroll_snn.quantize import check_weight_format

        check_weight_format(self.weights, "network.weights")
        for index, size in enumerate(self.hidden_sizes):
            _check(1 <= size <= 1_000_000, f"network.hidden_sizes[{index}]", size, "an integer 1..1000000")
        _check(0.0 <= self.beta <= 1.0, "network.beta", self.beta, "a decay factor in [0, 1]")
        _check(
            math.isfinite(self.threshold) and self.threshold > 0, "network.threshold", self.threshold,
            "a positive finite number",
        )
        _check(0.0 <= self.readout_beta <= 1.0, "network.readout_beta", self.readout_beta, "a decay factor in [0, 1]")
        _check(
            math.isfinite(self.init_gain) and self.init_gain > 0, "network.init_gain", self.init_gain,
            "a positive finite number",
        )
        for index, channels in enumerate(self.conv_channels):
            _check(1 <= channels <= 4096, f"network.conv_channels[{index}]", channels, "an integer 1..4096")
        _check(1 <= self.conv_kernel <= 34, "network.conv_kernel", self.conv_kernel, "an integer 1..34")
        _check(1 <= self.conv_stride <= 34, "network.conv_stride", self.conv_stride, "an integer 1..34")
        _check(1 <= self.conv_pool <= 34, "network.conv_pool", self.conv_pool, "an integer 1..34")

    def network_config(self, input_shape: tuple[int, int, int]):
        """The :class:`eggroll_snn.snn.NetworkConfig` for frames of ``input_shape`` (P, H, W) per time step."""
        from eggroll_snn.snn import NetworkConfig

        return NetworkConfig(
            input_size=math.prod(input_shape),
            input_shape=tuple(input_shape),
            conv_channels=tuple(self.conv_channels),
            conv_kernel=self.conv_kernel,
            conv_stride=self.conv_stride,
            conv_pool=self.conv_pool,
            hidden_sizes=tuple(self.hidden_sizes),
            num_classes=NUM_CLASSES,
            beta=self.beta,
            threshold=self.threshold,
            reset=self.reset,
            readout=self.readout,
            readout_beta=self.readout_beta,
            learn_beta=self.learn_beta,
            learn_threshold=self.learn_threshold,
            init_gain=self.init_gain,
            compute_dtype=self.compute_dtype,
        )


@dataclasses.dataclass(frozen=True)
class StrategySection:
    """The evolution strategy. Fitness is **maximised**.

    Attributes:
      method: a name in :data:`eggroll_snn.strategies.STRATEGIES` (``"eggroll"``, ``"full_rank"``) or
        in :data:`eggroll_snn.bptt.GRADIENT_METHODS` (``"bptt"``: surrogate-gradient BPTT, which
        uses only the learning-rate, optimiser, weight-decay and surrogate options).
      population_size: N members per generation (even when ``antithetic``).
      sigma: noise standard deviation; member i evaluates ``params + sigma * E_i``.
      rank: r of the low-rank EGGROLL perturbations ``A B^T / sqrt(r)``; a weight with min(m, n) < r
        uses its full rank min(m, n) (ignored by full-rank ES).
      learning_rate: optimiser step size.
      optimizer: ``"adam"`` or ``"sgd"``.
      weight_decay: decoupled weight decay per step (0 disables it).
      antithetic: evaluate each noise draw with both signs (members 2k, 2k+1); needs an even N.
      fitness_shaping: ``"centered_rank"`` (ranks mapped to [-0.5, 0.5]) or ``"zscore"``.
      sigma_schedule, learning_rate_schedule: ``"constant"``, ``"linear"`` or ``"cosine"`` decay from
        the initial value to ``initial * *_final_fraction`` over ``train.generations``.
      sigma_final_fraction, learning_rate_final_fraction: the end value as a fraction of the start,
        in [0, 1].
      surrogate: BPTT only: ``"fast_sigmoid"`` or ``"arctan"``, the smooth step whose derivative
        replaces the spike's (see :mod:`eggroll_snn.bptt`).
      surrogate_slope: BPTT only: its slope k > 0 (derivative k/2 at the threshold).
    """

    method: str = "eggroll"
    population_size: int = 512
    sigma: float = 0.05
    rank: int = 4
    learning_rate: float = 0.01
    optimizer: Literal["adam", "sgd"] = "adam"
    weight_decay: float = 0.0
    antithetic: bool = True
    fitness_shaping: Literal["centered_rank", "zscore"] = "centered_rank"
    sigma_schedule: Literal["constant", "linear", "cosine"] = "constant"
    sigma_final_fraction: float = 1.0
    learning_rate_schedule: Literal["constant", "linear", "cosine"] = "cosine"
    learning_rate_final_fraction: float = 0.05
    surrogate: Literal["fast_sigmoid", "arctan"] = "fast_sigmoid"
    surrogate_slope: float = 10.0

    def __post_init__(self) -> None:
        methods = _registered_methods()
        _check(self.method in methods, "strategy.method", self.method, f"one of {', '.join(sorted(methods))}")
        _check(2 <= self.population_size <= 1_000_000, "strategy.population_size", self.population_size, "an integer 2..1000000")
        _check(
            not self.antithetic or self.population_size % 2 == 0, "strategy.population_size", self.population_size,
            "an even number while strategy.antithetic = true (members 2k, 2k+1 are +sigma/-sigma pairs)",
        )
        _check(math.isfinite(self.sigma) and self.sigma > 0, "strategy.sigma", self.sigma, "a positive finite number")
        _check(self.rank >= 1, "strategy.rank", self.rank, "a positive integer")
        _check(
            math.isfinite(self.learning_rate) and self.learning_rate > 0,
            "strategy.learning_rate", self.learning_rate, "a positive finite number",
        )
        _check(
            math.isfinite(self.weight_decay) and self.weight_decay >= 0,
            "strategy.weight_decay", self.weight_decay, "a finite number >= 0",
        )
        for name in ("sigma_final_fraction", "learning_rate_final_fraction"):
            value = getattr(self, name)
            _check(0.0 <= value <= 1.0, f"strategy.{name}", value, "a fraction in [0, 1]")
        _check(
            math.isfinite(self.surrogate_slope) and self.surrogate_slope > 0,
            "strategy.surrogate_slope", self.surrogate_slope, "a positive finite number",
        )


@dataclasses.dataclass(frozen=True)
class TrainSection:
    """The generation loop.

    Attributes:
      generations: number of ES generations (one ask/tell each).
      batch_size: recordings in the minibatch that all members of a generation share.
      eval_every: generations between validation-accuracy evaluations (and model selection).
      checkpoint_every: generations between checkpoints.
      keep_checkpoints: how many of the newest checkpoints to keep.
      generations_per_call: generations run inside one compiled call (a ``lax.scan``); the
        effective value is ``gcd(generations_per_call, eval_every, checkpoint_every)``.
      seed: the one seed every key of the run (init, noise, minibatches, split) derives from.
      fitness: ``"cross_entropy"`` (negative mean cross-entropy) or ``"accuracy"`` on the minibatch.
      augment_shift: translate each training recording by a random whole number of (pooled)
        pixels in ``[-augment_shift, augment_shift]`` per axis (0 = no augmentation).
      eval_batch_size: recordings per compiled batch when evaluating accuracy.
      devices: devices the population is split over (see :mod:`eggroll_snn.distributed`): 1 (one
        device), D (each evaluates population_size / D members), or 0 for every visible device of
        every process (``--devices all``).
      max_seconds: wall-clock budget: training stops at the end of the first compiled call that
        ends after this many seconds of training (summed over resumed sessions), validates,
        checkpoints and finishes as if ``generations`` were reached; unset = no limit.
      init_from: a finished run folder whose selected model (``model.npz``) is the starting point
        instead of a random initialisation, e.g. to fine-tune a network trained on the simulated
        N-MNIST on real recordings; its parameters must have this network's shapes. Unset = random.
    """

    generations: int = 2000
    batch_size: int = 128
    eval_every: int = 100
    checkpoint_every: int = 100
    keep_checkpoints: int = 3
    generations_per_call: int = 10
    seed: int = 0
    fitness: Literal["cross_entropy", "accuracy"] = "cross_entropy"
    augment_shift: int = 0
    eval_batch_size: int = 500
    devices: int = 1
    max_seconds: Optional[float] = None
    init_from: Optional[str] = None

    def __post_init__(self) -> None:
        _check(1 <= self.generations <= 10_000_000, "train.generations", self.generations, "an integer 1..10000000")
        _check(1 <= self.batch_size <= 1_000_000, "train.batch_size", self.batch_size, "an integer 1..1000000")
        for name in ("eval_every", "checkpoint_every", "keep_checkpoints", "generations_per_call", "eval_batch_size"):
            value = getattr(self, name)
            _check(value >= 1, f"train.{name}", value, "a positive integer")
        _check(0 <= self.seed < 2**32, "train.seed", self.seed, "an integer 0..4294967295")
        _check(0 <= self.augment_shift <= 8, "train.augment_shift", self.augment_shift, "an integer 0..8 (pixels)")
        _check(0 <= self.devices <= 1_000_000, "train.devices", self.devices, "a device count >= 1, or 0 for all devices")
        if self.max_seconds is not None:
            _check(
                math.isfinite(self.max_seconds) and self.max_seconds > 0, "train.max_seconds", self.max_seconds,
                "a positive finite number of seconds, or unset",
            )
        if self.init_from is not None:
            _check(
                isinstance(self.init_from, str) and self.init_from.strip() != "", "train.init_from", self.init_from,
                "a run folder path, or unset",
            )


SECTIONS: dict[str, type] = {
    "data": DataSection,
    "network": NetworkSection,
    "strategy": StrategySection,
    "train": TrainSection,
    "fixed_point": FixedPointSection,  # fixed-point hook (issue 14): options of network.neuron = "fixed_point"
}


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """The whole configuration of a training run (see the section classes for each option)."""

    data: DataSection = dataclasses.field(default_factory=DataSection)
    network: NetworkSection = dataclasses.field(default_factory=NetworkSection)
    strategy: StrategySection = dataclasses.field(default_factory=StrategySection)
    train: TrainSection = dataclasses.field(default_factory=TrainSection)
    fixed_point: FixedPointSection = dataclasses.field(default_factory=FixedPointSection)  # fixed-point hook (issue 14)

    def __post_init__(self) -> None:
        check_fixed_point(self)  # fixed-point hook (issue 14)
        # EGGROLL's factors are A (m, r), B (n, r): each weight uses min(r, m, n), so a rank above
        # the largest min(m, n) would clip every weight and name a rank that no layer uses.
        network = self.network.network_config(self.data.input_shape)  # raises on impossible conv blocks
        if self.strategy.method == "eggroll":
            shapes = network.weight_shapes
            widest = max(min(m, n) for m, n in shapes)
            _check(
                self.strategy.rank <= widest, "strategy.rank", self.strategy.rank,
                f"at most {widest}, the largest min(m, n) of the network's weight matrices "
                f"({', '.join(f'{m}x{n}' for m, n in shapes)}; narrower weights use their full rank)",
            )

    def to_dict(self) -> dict[str, dict[str, Any]]:
        """Plain nested dict (tuples as lists), the form written to TOML and JSON."""
        return {
            name: {
                field.name: _plain(getattr(getattr(self, name), field.name))
                for field in dataclasses.fields(SECTIONS[name])
            }
            for name in SECTIONS
        }

    def replace(self, overrides: Mapping[str, Any]) -> "TrainConfig":
        """A copy with ``{"section.key": value}`` overrides applied and validated."""
        return apply_overrides(self, overrides)


def _plain(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value


def _registered_methods() -> tuple[str, ...]:
    from eggroll_snn.bptt import GRADIENT_METHODS
    from eggroll_snn.strategies import STRATEGIES

    return tuple(STRATEGIES) + tuple(GRADIENT_METHODS)


# --------------------------------------------------------------------------------------------
# Building from plain data (TOML tables, overrides): type checks with the option's name


def _type_name(hint: Any) -> str:
    origin = typing.get_origin(hint)
    if origin is Literal:
        return "one of " + ", ".join(repr(choice) for choice in typing.get_args(hint))
    if origin in (typing.Union, types.UnionType):
        inner = [arg for arg in typing.get_args(hint) if arg is not type(None)]
        return _type_name(inner[0]) + " (or unset)"
    if origin is tuple:
        return f"a list of {_type_name(typing.get_args(hint)[0])}s"
    return {int: "an integer", float: "a number", bool: "true or false", str: "a string"}.get(hint, str(hint))


def _range_of(option: str) -> str:
    """``", allowed: <range>"`` for ``option`` (or its list), or "" when it has no range check."""
    if not _ALLOWED:
        for cls in SECTIONS.values():
            cls()  # the defaults pass every check, recording each option's range on the way
    allowed = _ALLOWED.get(option.split("[")[0])
    return f" ({allowed})" if allowed else ""


def _coerce(value: Any, hint: Any, option: str) -> Any:
    """Check ``value`` against the type ``hint`` of ``option``; ints widen to floats, lists to tuples."""
    origin = typing.get_origin(hint)
    wrong = ConfigError(f"option {option} = {value!r} has the wrong type: expected {_type_name(hint)}{_range_of(option)}")
    if origin in (typing.Union, types.UnionType):
        if value is None:
            return None
        inner = [arg for arg in typing.get_args(hint) if arg is not type(None)]
        return _coerce(value, inner[0], option)
    if origin is Literal:
        if value not in typing.get_args(hint) or not isinstance(value, str):
            raise ConfigError(f"option {option} = {value!r} is not allowed: expected {_type_name(hint)}")
        return value
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            raise wrong
        item_hint = typing.get_args(hint)[0]
        return tuple(_coerce(item, item_hint, f"{option}[{index}]") for index, item in enumerate(value))
    if hint is bool:
        if not isinstance(value, bool):
            raise wrong
        return value
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise wrong
        return value
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise wrong
        try:
            return float(value)
        except OverflowError:  # an integer beyond the float range (TOML integers are unbounded here)
            raise ConfigError(
                f"option {option} = <an integer of {value.bit_length()} bits> is out of range: a number within +-1.8e308"
            ) from None
    if hint is str:
        if not isinstance(value, str):
            raise wrong
        try:  # a path from the command line with non-UTF-8 bytes holds lone surrogates
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise ConfigError(
                f"option {option} = {value!r} is not allowed: expected text that UTF-8 can encode (the run's "
                "config.toml must store it); rename the file or folder"
            ) from None
        return value
    raise TypeError(f"unsupported option type {hint!r} for {option}")  # a bug in this module


def section_from_dict(name: str, table: Any) -> Any:
    """Build section ``name`` from a mapping of its options; unknown keys raise :class:`ConfigError`."""
    cls = SECTIONS[name]
    if not isinstance(table, Mapping):
        raise ConfigError(f"section [{name}] must be a table of options, got {table!r}")
    hints = typing.get_type_hints(cls)
    known = {field.name for field in dataclasses.fields(cls)}
    unknown = sorted(set(table) - known)
    if unknown:
        raise ConfigError(
            f"unknown option {name}.{unknown[0]}; the options of [{name}] are: {', '.join(sorted(known))}"
        )
    values = {key: _coerce(value, hints[key], f"{name}.{key}") for key, value in table.items()}
    return cls(**values)


def from_dict(tables: Any) -> TrainConfig:
    """Build a :class:`TrainConfig` from ``{"section": {"key": value}}``; missing keys take defaults."""
    if not isinstance(tables, Mapping):
        raise ConfigError(f"a configuration must be a table of sections, got {tables!r}")
    unknown = sorted(set(tables) - set(SECTIONS))
    if unknown:
        raise ConfigError(f"unknown section [{unknown[0]}]; the sections are: {', '.join(SECTIONS)}")
    return TrainConfig(**{name: section_from_dict(name, tables.get(name, {})) for name in SECTIONS})


def loads(text: str, source: str = "<string>") -> TrainConfig:
    """Parse TOML text into a validated :class:`TrainConfig`; ``source`` names it in errors."""
    try:
        tables = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"{source}: not valid TOML: {error}") from None
    except (ValueError, RecursionError) as error:  # an integer of over 4300 digits; nesting too deep
        raise ConfigError(f"{source}: not valid TOML: {type(error).__name__}: {error}") from None
    try:
        return from_dict(tables)
    except ConfigError as error:
        raise ConfigError(f"{source}: {error}") from None


def load(path: str | Path) -> TrainConfig:
    """Read a TOML config file (see ``configs/default.toml``)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise ConfigError(f"cannot read config file {path}: {error}") from None
    return loads(text, source=str(path))


# --------------------------------------------------------------------------------------------
# Overrides (`--set section.key=value` and the common command-line flags)


def parse_assignment(text: str) -> tuple[str, Any]:
    """Split ``"section.key=value"``; the value is read as a TOML value, else taken as a string.

    ``"strategy.sigma=0.1"`` -> ``("strategy.sigma", 0.1)``; ``"network.hidden_sizes=[64, 64]"``
    -> a list; ``"data.root=/data/nmnist"`` -> the string.
    """
    key, sep, raw = text.partition("=")
    key, raw = key.strip(), raw.strip()
    if not sep or "." not in key:
        raise ConfigError(f"override {text!r} must look like section.key=value (e.g. strategy.sigma=0.05)")
    try:
        value = tomllib.loads(f"value = {raw}")["value"]
    except tomllib.TOMLDecodeError:
        value = raw
    except (ValueError, RecursionError) as error:  # an integer of over 4300 digits; nesting too deep
        raise ConfigError(f"override {key}: its value cannot be read ({type(error).__name__}: {error})") from None
    return key, value


def apply_overrides(config: TrainConfig, overrides: Mapping[str, Any]) -> TrainConfig:
    """``config`` with ``{"section.key": value}`` replaced; the result is validated as a whole."""
    tables = config.to_dict()
    for key, value in overrides.items():
        section, _, option = key.partition(".")
        if section not in SECTIONS:
            raise ConfigError(f"unknown option {key}: [{section}] is not a section ({', '.join(SECTIONS)})")
        if option not in tables[section]:
            raise ConfigError(
                f"unknown option {key}; the options of [{section}] are: {', '.join(sorted(tables[section]))}"
            )
        tables[section][option] = value
    return from_dict(tables)


# --------------------------------------------------------------------------------------------
# TOML writer (the subset a TrainConfig needs: strings, numbers, booleans, flat lists)


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        text = repr(value)
        # TOML needs a fraction or exponent to read a float back as a float.
        return text if any(c in text for c in ".en") else text + ".0"
    if isinstance(value, str):
        # JSON's escaped string is a valid TOML basic string once DEL, which TOML also forbids
        # raw and JSON leaves alone, is escaped too.
        return json.dumps(value, ensure_ascii=False).replace("\x7f", "\\u007f")
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml_value(item) for item in value) + "]"
    raise TypeError(f"cannot write {value!r} as TOML")


def dumps(config: TrainConfig, header: str = "") -> str:
    """The resolved config as TOML; unset (None) options appear as comments.

    ``loads(dumps(config)) == config`` for every valid config.
    """
    lines = [f"# {line}" if line else "#" for line in header.splitlines()]
    for name, table in config.to_dict().items():
        if lines:
            lines.append("")
        lines.append(f"[{name}]")
        for key, value in table.items():
            if value is None:
                lines.append(f"# {key} is unset")
            else:
                lines.append(f"{key} = {_toml_value(value)}")
    return "\n".join(lines) + "\n"


def dump(config: TrainConfig, path: str | Path, header: str = "") -> None:
    """Write :func:`dumps` of ``config`` to ``path``."""
    Path(path).write_text(dumps(config, header), encoding="utf-8")


__all__ = [
    "ConfigError",
    "DataSection",
    "NetworkSection",
    "StrategySection",
    "TrainSection",
    "TrainConfig",
    "SECTIONS",
    "from_dict",
    "section_from_dict",
    "loads",
    "load",
    "dumps",
    "dump",
    "parse_assignment",
    "apply_overrides",
]
