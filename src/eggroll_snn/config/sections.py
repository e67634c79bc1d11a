"""The five sections of a training configuration and their checks (one frozen dataclass each).

Every option is checked when its section is built, so an invalid configuration cannot exist: a
bad value raises :class:`~eggroll_snn.errors.ConfigError` naming the option (``section.key``),
the value and the allowed range. Each option is declared once: ``[network]`` *is* the network's
options class and ``[fixed_point]`` the integer arithmetic's; the ``[data]`` and ``[strategy]``
sections take their defaults from the library classes they configure (:func:`_default`), except
the few a training run sets itself, each marked where it is set.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, Literal, Optional

from eggroll_snn.config.rules import MAX_DENSE_INPUTS, check_dense_inputs, resolve_tonic
from eggroll_snn.data.augment import Augmentation
from eggroll_snn.data.events import SENSOR_HEIGHT, SENSOR_WIDTH
from eggroll_snn.data.frames import FrameConfig
from eggroll_snn.data.nmnist import NUM_CLASSES
from eggroll_snn.integer.spec import FixedPointSection, check_fixed_point, make_spec
from eggroll_snn.network import NetworkConfig, NetworkOptions
from eggroll_snn.options import check as _check, default_of as _default, is_integer
from eggroll_snn.perturbation import check_population_size
from eggroll_snn.strategies import METHODS, EggrollStrategy, StrategyConfig, SurrogateGradient, check_rank

NUM_POLARITIES = 2


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
      validation_folds, validation_fold: with ``validation_folds = k >= 2``, the held-out part is
        fold ``validation_fold`` of a seeded, class-stratified k-fold partition of the training
        split instead (``eggroll-snn crossval`` trains every fold); 0 = off.
      cache_dir: folder for the frame cache and the simulated data (unset = ``EGGROLL_SNN_CACHE``
        or ``~/.cache/eggroll-snn``).
      skip_bad: leave out bad recordings (listed in the run's ``skipped_files.json``) instead of
        stopping at the first one.
      source: ``"nmnist"`` (the N-MNIST reader) or ``"tonic"``: a data set tonic reads, named by
        ``tonic_dataset``, under ``root`` (tonic's ``save_to``). ``root = "tonic:<Name>:<folder>"``
        (``--data tonic:<Name>:<folder>``) sets all three. See :mod:`eggroll_snn.data.tonic_source`.
      tonic_dataset: tonic's class name (``"DVSGesture"``, ``"SHD"``, ``"POKERDVS"``).
      test_fraction: tonic only: unset = the data set's own test split; a fraction = a stratified
        test split of that share of its training split.
      sensor_size, class_names: tonic only, read from the data set when left empty (and then
        recorded in the run's config.toml): ``(W, H, P)`` and the class names.
    """

    root: Optional[str] = None
    # Two defaults set here, where the trainer differs from the frame transform (which keeps tonic's
    # full resolution and 10 bins): 2 x 2 pooling and few bins make a member's work small, so a
    # larger population fits the default run's budget (the measurements: docs/results.md).
    num_time_bins: int = 4
    window_us: Optional[int] = _default(FrameConfig, "window_us")
    duration_us: int = _default(FrameConfig, "duration_us")
    include_incomplete: bool = _default(FrameConfig, "include_incomplete")
    pool: int = 2
    binarize: bool = _default(FrameConfig, "binarize")
    first_saccade_only: bool = _default(FrameConfig, "first_saccade_only")
    validation_fraction: float = 0.1
    validation_folds: int = 0
    validation_fold: int = 0
    cache_dir: Optional[str] = None
    skip_bad: bool = False
    # --- tonic data sets (see eggroll_snn.data.tonic_source) ---
    source: Literal["nmnist", "tonic"] = "nmnist"
    tonic_dataset: Optional[str] = None
    test_fraction: Optional[float] = None
    sensor_size: tuple[int, ...] = ()
    class_names: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        resolve_tonic(self)  # fills source/sensor_size/class_names; no-op for N-MNIST
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
        if self.source == "tonic":
            width, height, _ = self.sensor_size
            _check(
                self.pool >= 1 and width % self.pool == 0 and (height == 1 or height % self.pool == 0), "data.pool",
                self.pool, f"a divisor of the {width} x {height} sensor of {self.tonic_dataset}",
            )
        else:
            _check(
                self.pool >= 1 and SENSOR_WIDTH % self.pool == 0 and SENSOR_HEIGHT % self.pool == 0, "data.pool",
                self.pool, "a divisor of the 34-pixel sensor side: 1, 2, 17 or 34",
            )
        _check(
            0.0 < self.validation_fraction < 1.0,
            "data.validation_fraction", self.validation_fraction, "a fraction strictly between 0 and 1",
        )
        _check(
            self.validation_folds == 0 or 2 <= self.validation_folds <= 100, "data.validation_folds",
            self.validation_folds, "0 (off) or a number of folds 2..100",
        )
        _check(
            0 <= self.validation_fold < max(self.validation_folds, 1), "data.validation_fold", self.validation_fold,
            f"a fold 0..{max(self.validation_folds, 1) - 1} of data.validation_folds = {self.validation_folds}",
        )

    @property
    def input_size(self) -> int:
        """Inputs per time step: ``P * (H // pool) * (W // pool)`` (N-MNIST: ``2 * (34 // pool)**2``)."""
        return math.prod(self.input_shape)

    @property
    def input_shape(self) -> tuple[int, int, int]:
        """``(P, H // pool, W // pool)`` of one time bin of the frames (a one-row sensor keeps ``H = 1``)."""
        return self.frame_config().frame_shape(self.sensor)[1:]  # the frames module's pooling rule

    @property
    def sensor(self) -> tuple[int, int, int]:
        """``(W, H, P)`` of the recordings: N-MNIST's 34 x 34 x 2, or a tonic data set's ``sensor_size``."""
        return tuple(self.sensor_size) if self.source == "tonic" else (SENSOR_WIDTH, SENSOR_HEIGHT, NUM_POLARITIES)

    @property
    def num_classes(self) -> int:
        """Classes of the data: 10 digits for N-MNIST, ``len(class_names)`` for a tonic data set."""
        return len(self.class_names) if self.source == "tonic" else NUM_CLASSES

    def frame_config(self) -> FrameConfig:
        """The equivalent :class:`eggroll_snn.data.frames.FrameConfig`."""
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
class StrategySection:
    """The evolution strategy. Fitness is **maximised**.

    Attributes:
      method: a name in :data:`eggroll_snn.strategies.METHODS`: ``"eggroll"``, ``"full_rank"``,
        ``"eggroll_integer"`` (a fixed-point network's members; ``"eggroll"`` means it there too) or
        ``"bptt"`` (surrogate-gradient BPTT, which uses only the learning-rate, optimiser,
        weight-decay and surrogate options).
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
        replaces the spike's (see :mod:`eggroll_snn.strategies.bptt`).
      surrogate_slope: BPTT only: its slope k > 0 (derivative k/2 at the threshold).
    """

    method: str = "eggroll"
    population_size: int = _default(StrategyConfig, "population_size")
    sigma: float = _default(StrategyConfig, "sigma")
    rank: int = _default(EggrollStrategy, "rank")
    learning_rate: float = _default(StrategyConfig, "learning_rate")
    optimizer: Literal["adam", "sgd"] = _default(StrategyConfig, "optimizer")
    weight_decay: float = _default(StrategyConfig, "weight_decay")
    antithetic: bool = _default(StrategyConfig, "antithetic")
    fitness_shaping: Literal["centered_rank", "zscore"] = _default(StrategyConfig, "fitness_shaping")
    sigma_schedule: Literal["constant", "linear", "cosine"] = _default(StrategyConfig, "sigma_schedule")
    sigma_final_fraction: float = _default(StrategyConfig, "sigma_final_fraction")
    # The one default set here: a training run knows its length (train.generations), so the
    # learning rate decays by cosine over it; the library, which does not, keeps it constant.
    learning_rate_schedule: Literal["constant", "linear", "cosine"] = "cosine"
    learning_rate_final_fraction: float = _default(StrategyConfig, "learning_rate_final_fraction")
    surrogate: Literal["fast_sigmoid", "arctan"] = _default(SurrogateGradient, "surrogate")
    surrogate_slope: float = _default(SurrogateGradient, "surrogate_slope")

    def __post_init__(self) -> None:
        _check(self.method in METHODS, "strategy.method", self.method, f"one of {', '.join(sorted(METHODS))}")
        check_population_size(self.population_size, self.antithetic)
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
      generations: number of generations (one ask/tell, or one BPTT step, each); unset = as many
        as ``time_budget_s`` affords on this machine, measured when the run starts and then
        recorded in the run's config.toml (see :mod:`eggroll_snn.training.budget`).
      time_budget_s: with ``generations`` unset, the seconds the whole run may take, from the call
        of ``train`` (data preparation included) to its test score.
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
      augment_drop_event, augment_flip_polarity, augment_noise_events, augment_drop_bins: the
        augmentation of each training recording in every minibatch (tonic's DropEvent,
        RandomFlipPolarity, UniformNoise and a time-bin drop; all off by default; see
        :mod:`eggroll_snn.data.augment`). Every method sees the same augmented minibatch.
      augment_event_copies: transformed copies of each training recording added to the training
        part, made once per run by the Python event transform passed to
        :func:`eggroll_snn.training.train` (``event_transform=``, e.g. a tonic transform; see
        :mod:`eggroll_snn.data.event_augment`); 0 = none. Needs that transform (Python only).
      augment_event_transform: the description of that transform, recorded by ``train`` (a
        resume must pass a transform with the same description).
      eval_batch_size: recordings per compiled batch when evaluating accuracy (at most what the
        memory budget holds).
      memory_budget_mb: memory the population's evaluation may use, in MiB: members are evaluated
        in chunks that fit it (see :mod:`eggroll_snn.population.chunks`); unset = half of an
        accelerator's free memory, a quarter of the machine's memory on CPU.
      population_forward: ``"fast"`` (the fast population forward, :mod:`eggroll_snn.population.fast`)
        or ``"reference"`` (the readable path it is checked against; the same values up to float
        rounding, slower).
      devices: devices the population is split over (see :mod:`eggroll_snn.distributed`): 1 (one
        device), D (each evaluates population_size / D members), or 0 for every visible device of
        every process (``--devices all``).
      max_seconds: wall-clock budget: training stops at the end of the first compiled call that
        ends after this many seconds of training (summed over resumed sessions), validates,
        checkpoints and finishes as if ``generations`` were reached; unset = no limit.
      evaluate_test: read the test split once at the end to score the selected model; false for
        runs that only select options (``eggroll-snn crossval``), so the test split stays unread.
      init_from: a finished run folder whose selected model (``model.npz``) is the starting point
        instead of a random initialisation, e.g. to fine-tune a network trained on the simulated
        N-MNIST on real recordings; its parameters must have this network's shapes. Unset = random.
    """

    generations: Optional[int] = None
    time_budget_s: Optional[float] = 570.0
    batch_size: int = 128
    eval_every: int = 100
    checkpoint_every: int = 100
    keep_checkpoints: int = 3
    generations_per_call: int = 10
    seed: int = 0
    fitness: Literal["cross_entropy", "accuracy"] = "cross_entropy"
    augment_shift: int = 0
    augment_drop_event: float = _default(Augmentation, "drop_event")
    augment_flip_polarity: float = _default(Augmentation, "flip_polarity")
    augment_noise_events: int = _default(Augmentation, "noise_events")
    augment_drop_bins: float = _default(Augmentation, "drop_bins")
    augment_event_copies: int = 0
    augment_event_transform: Optional[str] = None
    eval_batch_size: int = 500
    memory_budget_mb: Optional[float] = None
    population_forward: Literal["fast", "reference"] = "fast"
    devices: int = 1
    max_seconds: Optional[float] = None
    evaluate_test: bool = True
    init_from: Optional[str] = None

    def __post_init__(self) -> None:
        if self.generations is not None:
            _check(1 <= self.generations <= 10_000_000, "train.generations", self.generations, "an integer 1..10000000, or unset")
        if self.time_budget_s is not None:
            _check(
                math.isfinite(self.time_budget_s) and self.time_budget_s > 0, "train.time_budget_s", self.time_budget_s,
                "a positive finite number of seconds, or unset",
            )
        _check(
            self.generations is not None or self.time_budget_s is not None, "train.generations", None,
            "an integer 1..10000000, or unset with train.time_budget_s set (the budget then fixes it)",
        )
        _check(1 <= self.batch_size <= 1_000_000, "train.batch_size", self.batch_size, "an integer 1..1000000")
        for name in ("eval_every", "checkpoint_every", "keep_checkpoints", "generations_per_call", "eval_batch_size"):
            value = getattr(self, name)
            _check(value >= 1, f"train.{name}", value, "a positive integer")
        _check(0 <= self.seed < 2**32, "train.seed", self.seed, "an integer 0..4294967295")
        _check(0 <= self.augment_shift <= 8, "train.augment_shift", self.augment_shift, "an integer 0..8 (pixels)")
        self.augmentation  # checks the augmentation options
        _check(
            is_integer(self.augment_event_copies) and 0 <= self.augment_event_copies <= 64, "train.augment_event_copies", self.augment_event_copies,
            "an integer 0..64 (copies of each training recording)",
        )
        if self.augment_event_transform is not None:
            _check(
                isinstance(self.augment_event_transform, str) and self.augment_event_transform.strip() != "",
                "train.augment_event_transform", self.augment_event_transform,
                "the description of an event transform (recorded by train), or unset",
            )
        _check(0 <= self.devices <= 1_000_000, "train.devices", self.devices, "a device count >= 1, or 0 for all devices")
        if self.memory_budget_mb is not None:
            _check(
                math.isfinite(self.memory_budget_mb) and self.memory_budget_mb > 0, "train.memory_budget_mb",
                self.memory_budget_mb, "a positive number of MiB, or unset",
            )
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

    @property
    def augmentation(self) -> Augmentation:
        """The :class:`~eggroll_snn.data.augment.Augmentation` these options ask for."""
        return Augmentation(
            drop_event=self.augment_drop_event, flip_polarity=self.augment_flip_polarity,
            noise_events=self.augment_noise_events, drop_bins=self.augment_drop_bins,
        )


#: The ``[network]`` section is the network's own options class: each option declared once.
NetworkSection = NetworkOptions

SECTIONS: dict[str, type] = {
    "data": DataSection,
    "network": NetworkSection,
    "strategy": StrategySection,
    "train": TrainSection,
    "fixed_point": FixedPointSection,  # the options of network.neuron = "fixed_point"
}


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """The whole configuration of a training run (see the section classes for each option)."""

    data: DataSection = dataclasses.field(default_factory=DataSection)
    network: NetworkSection = dataclasses.field(default_factory=NetworkSection)
    strategy: StrategySection = dataclasses.field(default_factory=StrategySection)
    train: TrainSection = dataclasses.field(default_factory=TrainSection)
    fixed_point: FixedPointSection = dataclasses.field(default_factory=FixedPointSection)

    def __post_init__(self) -> None:
        check_fixed_point(self)
        if self.data.binarize:  # thinning and flipping counts are exact only for counts of events
            for option in ("augment_drop_event", "augment_flip_polarity"):
                _check(
                    getattr(self.train, option) == 0, f"train.{option}", getattr(self.train, option),
                    "0 with data.binarize = true (the transform acts on event counts, which binary frames do not hold)",
                )
        network = self.network_config()  # raises on impossible conv blocks
        check_dense_inputs(self.data, network)
        if "rank" in METHODS[self.method].__dataclass_fields__:  # a low-rank method's rank fits the weights
            check_rank(self.strategy.rank, network.weight_shapes)

    @property
    def method(self) -> str:
        """The registered method that trains this config: ``strategy.method``, except that EGGROLL on a
        fixed-point network is its integer form (``"eggroll_integer"``)."""
        if self.network.neuron == "fixed_point" and self.strategy.method == "eggroll":
            return "eggroll_integer"
        return self.strategy.method

    def to_dict(self) -> dict[str, dict[str, Any]]:
        """Plain nested dict (tuples as lists), the form written to TOML and JSON."""
        return {
            name: {
                field.name: _plain(getattr(getattr(self, name), field.name))
                for field in dataclasses.fields(SECTIONS[name])
            }
            for name in SECTIONS
        }

    def network_config(self) -> NetworkConfig:
        """The :class:`eggroll_snn.network.NetworkConfig` this config describes (input size from its frame options)."""
        fixed_point = make_spec(self.fixed_point, self.network) if self.network.neuron == "fixed_point" else None
        return self.network.network_config(self.data.input_shape, self.data.num_classes, fixed_point)


def _plain(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value


__all__ = [
    "DataSection", "NetworkSection", "StrategySection", "TrainSection", "TrainConfig", "SECTIONS",
    "MAX_DENSE_INPUTS",
]
