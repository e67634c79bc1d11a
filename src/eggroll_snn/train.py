"""The training loop: EGGROLL (or any registered strategy) on N-MNIST frames, into a run folder.

One generation, compiled once and scanned over several generations per call::

    key_g    = fold_in(data_key, g)                  minibatch of B recordings, drawn inside jit
    x        = frames[idx] as float32, (B, T, P*H*W)
    E        = strategy.ask(state)                   N perturbations (low rank for EGGROLL)
    logits   = population_logits(params, E, x)       (N, B, C)
    fitness  = -mean_b CE(logits_i, y)               (N,), maximised (or minibatch accuracy)
    state    = strategy.tell(state, fitness)

Data use: the training split is loaded once; a seeded, class-stratified validation part is held
out from it to select the model (the parameters with the best validation accuracy are kept); the
test split is read only once, at the end, to report on the selected model.

Run folder (``run_dir``)::

    config.toml      the resolved configuration
    metrics.jsonl    one JSON object per generation (see :data:`METRIC_FIELDS`)
    checkpoints/     gen-XXXXXXXX.npz + .json (see :mod:`eggroll_snn.checkpoint`)
    model.npz/.json  best-validation parameters + config (integer weights: on the grid, scales in .json)
    model_integer.npz/.json  integer-weight runs only: the int8 weights, int32 biases and scales
    summary.json     test accuracy of the selected model, timings

Exact resume: every random draw derives from ``train.seed`` and the generation number, and a
checkpoint holds the whole state (strategy state, best parameters so far), so a run resumed from
its newest checkpoint writes the same metrics (apart from the timing fields) and the same
parameters as an uninterrupted one.
"""

from __future__ import annotations

import dataclasses
import json
import math
import sys
import time
from pathlib import Path
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from eggroll_snn import bptt, checkpoint, config as config_module, distributed, snn
from eggroll_snn.population import member_losses, population_logits
from eggroll_snn.config import TrainConfig
from eggroll_snn.errors import CheckpointError, ConfigError, TrainingError
from eggroll_snn.export.fixed_point import FIXED_POINT_MODEL_STEM, export_integer  # fixed-point hook (issue 14)
from eggroll_snn.hil.client import external_population  # fixed-point hook (issue 14)
from eggroll_snn.quantize import INTEGER_MODEL_STEM, WeightGrid, integer_tree, model_on_grid
from eggroll_snn.evaluate import (
    MODEL_STEM,
    accuracy_report,
    load_frames,
    mean_cross_entropy,
    network_config,
    predict_logits,
)

#: Fields of every metrics line. ``train_loss`` is the minibatch cross-entropy averaged over the
#: population members (the loss the fitness is computed from, not the unperturbed mean's);
#: ``fitness_*`` and ``train_*`` ignore members whose fitness is not finite, counted in
#: ``invalid_fitness``. Eval lines add ``validation_accuracy`` and ``validation_loss``.
METRIC_FIELDS = (
    "generation",
    "fitness_mean",
    "fitness_max",
    "train_loss",
    "train_accuracy",
    "invalid_fitness",
    "sigma",
    "learning_rate",
    "seconds_per_generation",
    "wall_time_s",
)
#: Metrics that measure time and so differ between otherwise identical runs.
TIMING_FIELDS = ("seconds_per_generation", "wall_time_s")
#: Options that may change when a run is resumed (everything else must match the checkpoint).
RESUMABLE_CHANGES = (
    "train.generations", "train.max_seconds", "train.devices",
    "fixed_point.evaluator", "fixed_point.evaluator_timeout_s",  # fixed-point hook (issue 14): same results either way
)


class TrainingState(NamedTuple):
    """Everything a checkpoint holds (a pytree).

    Attributes:
      strategy: the strategy's state (mean params, optimiser state, key, generation).
      best_params: the parameters with the best validation accuracy so far.
      best_accuracy: float32 scalar, their validation accuracy (-1 before the first evaluation).
      best_generation: int32 scalar, the generation they were evaluated at.
    """

    strategy: Any
    best_params: Any
    best_accuracy: jax.Array
    best_generation: jax.Array


@dataclasses.dataclass(frozen=True)
class TrainResult:
    """What :func:`train` returns.

    Attributes:
      run_dir: the run folder.
      generations: generations completed.
      best_generation, best_validation_accuracy: the selected model.
      test_accuracy: the selected model's accuracy on the test split.
      test_count: recordings in the test split.
      wall_time_s: training time over all sessions of the run (excluding the data preparation).
      params: the selected (best-validation) parameters.
    """

    run_dir: Path
    generations: int
    best_generation: int
    best_validation_accuracy: float
    test_accuracy: float
    test_count: int
    wall_time_s: float
    params: Any


# --------------------------------------------------------------------------------------------
# Data


def stratified_split(labels: np.ndarray, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Seeded, class-stratified split of ``range(len(labels))`` into (train, validation) indices.

    Each class with ``c >= 2`` recordings gives ``round(fraction * c)`` of them (at least 1, at
    most ``c - 1``) to validation, chosen by a permutation seeded with ``seed``. Both index arrays
    are sorted.

    Raises:
      ConfigError: the validation part would be empty.
    """
    labels = np.asarray(labels)
    rng = np.random.default_rng(np.random.SeedSequence([seed, 0x5EED]))
    validation = []
    for label in np.unique(labels):
        members = np.flatnonzero(labels == label)
        if len(members) < 2:
            continue
        count = min(max(int(round(fraction * len(members))), 1), len(members) - 1)
        validation.append(rng.permutation(members)[:count])
    if not validation:
        raise ConfigError(
            f"option data.validation_fraction = {fraction}: no class of the {len(labels)} training "
            "recordings has 2 or more recordings, so no validation split can be held out"
        )
    validation = np.sort(np.concatenate(validation))
    train = np.setdiff1d(np.arange(len(labels)), validation)
    return train, validation


# --------------------------------------------------------------------------------------------
# The compiled generation step


def make_strategy(config: TrainConfig):
    """The strategy named by ``config.strategy.method`` with the config's options.

    A gradient method (:data:`eggroll_snn.bptt.GRADIENT_METHODS`) comes back in the strategies'
    place; :func:`make_generation_step` gives it the minibatch instead of asking and telling.
    """
    from eggroll_snn.bptt import GRADIENT_METHODS
    from eggroll_snn.strategies import STRATEGIES, make_strategy as build

    section = config.strategy
    if section.method in GRADIENT_METHODS:
        return GRADIENT_METHODS[section.method](
            learning_rate=section.learning_rate,
            optimizer=section.optimizer,
            weight_decay=section.weight_decay,
            learning_rate_schedule=section.learning_rate_schedule,
            learning_rate_final_fraction=section.learning_rate_final_fraction,
            total_generations=config.train.generations,
            surrogate=section.surrogate,
            surrogate_slope=section.surrogate_slope,
        )
    options = {
        "population_size": section.population_size,
        "sigma": section.sigma,
        "learning_rate": section.learning_rate,
        "optimizer": section.optimizer,
        "weight_decay": section.weight_decay,
        "fitness_shaping": section.fitness_shaping,
        "antithetic": section.antithetic,
        "sigma_schedule": section.sigma_schedule,
        "sigma_final_fraction": section.sigma_final_fraction,
        "learning_rate_schedule": section.learning_rate_schedule,
        "learning_rate_final_fraction": section.learning_rate_final_fraction,
        "total_generations": config.train.generations,
    }
    if "rank" in {field.name for field in dataclasses.fields(STRATEGIES[section.method])}:
        options["rank"] = section.rank
    if config.network.neuron == "fixed_point":  # fixed-point hook (issue 14): integer members
        from eggroll_snn.strategies.integer_eggroll import IntegerEggrollStrategy

        return IntegerEggrollStrategy(**options, fraction_bits=config.fixed_point.fraction_bits)
    return build(section.method, **options)


def _finite_mean(values: jax.Array, finite: jax.Array) -> jax.Array:
    return jnp.sum(jnp.where(finite, values, 0.0)) / jnp.maximum(jnp.sum(finite), 1)


def shift_frames(frames: jax.Array, key: jax.Array, max_shift: int) -> jax.Array:
    """Translate each recording by its own random ``(dy, dx)`` in ``[-max_shift, max_shift]`` pixels.

    Args:
      frames: ``(B, T, P, H, W)``.
      key: PRNG key of the draw.
      max_shift: largest shift in (pooled) pixels; pixels shifted in are zero (no events).

    Returns:
      ``(B, T, P, H, W)``: ``out[b, ..., y, x] = frames[b, ..., y - dy_b, x - dx_b]``.
    """
    batch, _, _, height, width = frames.shape
    padded = jnp.pad(frames, ((0, 0), (0, 0), (0, 0), (max_shift, max_shift), (max_shift, max_shift)))
    starts = jax.random.randint(key, (batch, 2), 0, 2 * max_shift + 1)

    def crop(recording, start):
        return jax.lax.dynamic_slice(recording, (0, 0, start[0], start[1]), (*recording.shape[:2], height, width))

    return jax.vmap(crop)(padded, starts)


def make_generation_step(
    strategy, network: snn.NetworkConfig, train: config_module.TrainSection, data_key: jax.Array, evaluate=None,
    weight_grid: WeightGrid | None = None,
):
    """``step(state, frames, labels) -> (state, metrics)`` for one generation (pure, jit-able).

    ``frames`` is the whole training part, ``(N_train, T, P, H, W)`` uint8 on the device;
    ``labels`` ``(N_train,)`` int32. The minibatch of ``train.batch_size`` recordings (and its
    random shifts when ``train.augment_shift > 0``) is drawn inside the step from
    ``fold_in(data_key, generation)`` (without replacement when ``batch_size <= N_train``), so the
    step needs no host input and the same generation always sees the same inputs.

    ``evaluate(params, perturbations, inputs, labels) -> (loss (N,), accuracy (N,))`` scores the
    population; the default runs it all here, :meth:`eggroll_snn.distributed.ShardedPopulation.evaluate`
    splits it over devices.

    ``weight_grid``: the population is evaluated around ``weight_grid.apply(params)`` (integer
    weights, see :mod:`eggroll_snn.quantize`) while the strategy updates the float ``params``.
    """
    batch_size, fitness = train.batch_size, train.fitness
    if evaluate is None:
        evaluate = lambda params, perturbations, inputs, labels: member_losses(  # noqa: E731
            population_logits(params, perturbations, inputs, network, antithetic_pairs=strategy.shares_pairs), labels
        )

    def step(state, frames, labels):
        count = frames.shape[0]
        batch_key = jax.random.fold_in(data_key, state.generation)
        indices = jax.random.choice(batch_key, count, (batch_size,), replace=batch_size > count)
        batch_frames = frames[indices]
        if train.augment_shift > 0:
            batch_frames = shift_frames(batch_frames, jax.random.fold_in(batch_key, 1), train.augment_shift)
        inputs = batch_frames.astype(jnp.float32).reshape(batch_size, frames.shape[1], -1)
        batch_labels = labels[indices]
        if isinstance(strategy, bptt.SurrogateGradient):  # a gradient step, same minibatch
            return strategy.step(state, inputs, batch_labels, network)
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


def _compile_chunk(step, state, frames, labels, length: int):
    """AOT-compile ``length`` scanned generations: ``(state, frames, labels) -> (state, metrics (length,))``."""

    def chunk(state, frames, labels):
        return jax.lax.scan(lambda carry, _: step(carry, frames, labels), state, None, length=length)

    return jax.jit(chunk).lower(state, frames, labels).compile()


def chunk_length(train: config_module.TrainSection) -> int:
    """Generations per compiled call: divides ``eval_every`` and ``checkpoint_every`` so both fall on chunk ends."""
    return math.gcd(train.generations_per_call, train.eval_every, train.checkpoint_every)


# --------------------------------------------------------------------------------------------
# Run folder


def read_metrics(path: str | Path) -> list[dict]:
    """The metrics lines of a run (a torn last line from a killed write is ignored)."""
    path = Path(path)
    if path.is_dir():
        path = path / "metrics.jsonl"
    if not path.exists():
        return []
    lines = path.read_text(encoding="utf-8").splitlines()
    records = []
    for number, line in enumerate(lines, 1):
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            if number == len(lines):
                break  # the process was killed while writing it; the checkpoint predates it
            raise TrainingError(f"{path}: line {number} is not valid JSON; the metrics log is corrupt") from None
    return records


def _truncate_metrics(path: Path, generation: int) -> None:
    """Keep only the lines of generations ``<= generation`` (atomically)."""
    kept = [record for record in read_metrics(path) if record.get("generation", 0) <= generation]
    checkpoint.atomic_write_text(path, "".join(json.dumps(record) + "\n" for record in kept))


def _json_number(value: Any) -> Any:
    value = value.item() if hasattr(value, "item") else value
    if isinstance(value, float) and not math.isfinite(value):
        return None  # JSON has no NaN/inf
    return value


def _check_run_dir(config: TrainConfig, run_dir: Path, resume: bool) -> None:
    """Refuse to overwrite another run, or to resume one with another configuration."""
    if resume:
        config_path = run_dir / "config.toml"
        if not config_path.is_file():
            raise CheckpointError(f"cannot resume {run_dir}: it has no config.toml, so it is not a run folder")
        saved = config_module.load(config_path)
        differences = checkpoint.config_differences(saved.to_dict(), config.to_dict(), RESUMABLE_CHANGES)
        if differences:
            raise CheckpointError(
                f"cannot resume {run_dir} with a different configuration ({'; '.join(differences[:5])}); "
                f"only {', '.join(RESUMABLE_CHANGES)} may change when resuming"
            )
    elif (run_dir / "metrics.jsonl").exists() or (run_dir / "checkpoints").exists():
        raise ConfigError(
            f"output folder {run_dir} already holds a training run; resume it (--resume {run_dir}) or "
            "choose another output folder"
        )


def _write_config(config: TrainConfig, run_dir: Path) -> None:
    run_dir.mkdir(parents=True, exist_ok=True)
    checkpoint.atomic_write_text(
        run_dir / "config.toml", config_module.dumps(config, header="eggroll-snn training run: the resolved configuration.")
    )


def resolve_run(
    config_file: str | Path | None, overrides: dict, out: str | Path | None, resume_dir: str | Path | None
) -> tuple[TrainConfig, Path, bool]:
    """The config, run folder and resume flag that the ``train`` command's options ask for.

    A new run starts from ``config_file`` (or the defaults) with ``overrides`` applied and goes to
    ``out`` (default ``runs/<YYYYmmdd-HHMMSS>-<method>``). A resumed run reads its own
    ``config.toml``; of the overrides only :data:`RESUMABLE_CHANGES` may change a value.

    Raises:
      ConfigError: bad option, or an option that a resume cannot change.
      CheckpointError: ``resume_dir`` is not a run folder.
    """
    if resume_dir is None:
        config = config_module.load(config_file) if config_file is not None else TrainConfig()
        config = config_module.apply_overrides(config, overrides)
        if out is None:
            stem = Path("runs") / f"{time.strftime('%Y%m%d-%H%M%S')}-{config.strategy.method}"
            out, number = stem, 1
            while out.exists():
                number += 1
                out = stem.with_name(f"{stem.name}-{number}")
        return config, Path(out), False
    run_dir = Path(resume_dir)
    if config_file is not None or (out is not None and Path(out).resolve() != run_dir.resolve()):
        raise ConfigError("--config and --out cannot be combined with --resume: a resumed run keeps its folder and config.toml")
    if not (run_dir / "config.toml").is_file():
        raise CheckpointError(f"cannot resume {run_dir}: it has no config.toml, so it is not a run folder")
    saved = config_module.load(run_dir / "config.toml")
    config = config_module.apply_overrides(saved, overrides)
    changed = checkpoint.config_differences(saved.to_dict(), config.to_dict(), RESUMABLE_CHANGES)
    if changed:
        raise ConfigError(
            f"cannot change options when resuming {run_dir} ({'; '.join(changed[:5])}); only "
            f"{', '.join(RESUMABLE_CHANGES)} may change"
        )
    return config, run_dir, True


# --------------------------------------------------------------------------------------------
# Progress display


class _Progress:
    """A rich progress bar (generation, fitness, validation accuracy, s/generation, ETA), or nothing."""

    PLAIN_INTERVAL_S = 30.0
    """Without a terminal (a log file, a batch job): one plain line per tenth of the run or this often."""

    def __init__(self, enabled: bool, total: int, completed: int):
        self._bar = None
        self._plain = False
        if not enabled:
            return
        if not sys.stdout.isatty():  # a bar redrawn in place would print nothing readable
            self._plain, self._total = True, total
            self._every = max(1, total // 10)
            self._last_line_generation, self._last_line_time = completed, time.perf_counter()
            return
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        self._bar = Progress(
            TextColumn("generation"),
            MofNCompleteColumn(),
            BarColumn(),
            TextColumn("fitness {task.fields[fitness]}"),
            TextColumn("val acc {task.fields[accuracy]}"),
            TextColumn("{task.fields[speed]} s/gen"),
            TextColumn("ETA"),
            TimeRemainingColumn(),
        )
        self._task = self._bar.add_task("train", total=total, completed=completed, fitness="-", accuracy="-", speed="-")
        self._bar.start()

    def update(self, generation: int, fitness: float | None, accuracy: float | None, seconds: float) -> None:
        if self._plain:
            self._plain_line(generation, fitness, accuracy, seconds)
        if self._bar is None:
            return
        fields = {"completed": generation, "speed": f"{seconds:.3f}"}
        if fitness is not None:
            fields["fitness"] = f"{fitness:.4f}"
        if accuracy is not None:
            fields["accuracy"] = f"{accuracy:.3f}"
        self._bar.update(self._task, **fields)

    def _plain_line(self, generation, fitness, accuracy, seconds) -> None:
        now = time.perf_counter()
        due = (
            generation - self._last_line_generation >= self._every
            or now - self._last_line_time >= self.PLAIN_INTERVAL_S
            or generation >= self._total
        )
        if not due:
            return
        self._last_line_generation, self._last_line_time = generation, now
        shown_fitness = "-" if fitness is None else f"{fitness:.4f}"
        shown_accuracy = "-" if accuracy is None else f"{accuracy:.3f}"
        eta = seconds * max(self._total - generation, 0)
        print(
            f"generation {generation}/{self._total}  fitness {shown_fitness}  val acc {shown_accuracy}  "
            f"{seconds:.3f} s/gen  ETA {eta:.0f} s",
            flush=True,
        )

    def close(self) -> None:
        if self._bar is not None:
            self._bar.stop()
            self._bar = None


# --------------------------------------------------------------------------------------------
# Training


def _initial_params_from_run(run_dir: str, like: Any) -> Any:
    """The selected model of the finished run ``run_dir``, checked against the shapes of ``like``.

    Raises:
      ConfigError: ``run_dir`` holds no readable model, or one of another network's shapes.
    """
    from eggroll_snn.evaluate import load_model

    try:
        params, _, _ = load_model(Path(run_dir).expanduser())
    except CheckpointError as error:
        raise ConfigError(f"train.init_from = {run_dir!r}: {error}") from None

    def shapes(tree):
        return {jax.tree_util.keystr(path): tuple(leaf.shape) for path, leaf in jax.tree_util.tree_flatten_with_path(tree)[0]}

    if shapes(params) != shapes(like):
        raise ConfigError(
            f"train.init_from = {run_dir!r}: its model's parameters {shapes(params)} do not fit this "
            f"network's {shapes(like)}; use the same data.pool, network.hidden_sizes and learned options"
        )
    return jax.tree_util.tree_map(lambda leaf, template: jnp.asarray(leaf, template.dtype), params, like)


def _initial_state(
    config: TrainConfig, strategy, network: snn.NetworkConfig, use_init_from: bool = True
) -> tuple[TrainingState, jax.Array]:
    """Generation-0 state and the minibatch key, all derived from ``train.seed``.

    The mean parameters are random, or ``train.init_from``'s model when set and ``use_init_from``.
    """
    root = jax.random.key(config.train.seed)
    init_key, noise_key, data_key = (jax.random.fold_in(root, purpose) for purpose in range(3))
    params = snn.init_params(init_key, network)
    if use_init_from and config.train.init_from is not None:
        params = _initial_params_from_run(config.train.init_from, params)
    state = TrainingState(
        strategy=strategy.init(noise_key, params),
        best_params=params,
        best_accuracy=jnp.asarray(-1.0, jnp.float32),
        best_generation=jnp.asarray(0, jnp.int32),
    )
    return state, data_key


def train(config: TrainConfig, run_dir: str | Path, resume: bool = False, progress: bool = True) -> TrainResult:
    """Train the network of ``config`` with its strategy; write everything to ``run_dir``.

    Args:
      config: the resolved configuration.
      run_dir: the run folder (created; must not hold another run unless ``resume``).
      resume: continue from the newest valid checkpoint in ``run_dir/checkpoints`` (corrupt ones
        are skipped with a warning); ``metrics.jsonl`` is cut back to that generation. Only
        ``train.generations``, ``train.max_seconds`` and ``train.devices`` may differ from the run's
        ``config.toml``. A decaying sigma or learning-rate schedule spans ``train.generations``, so
        a resume that changes it reshapes the schedule from the resumed generation on.
      progress: show a progress bar.

    Returns:
      :class:`TrainResult` (the selected model and its test accuracy).

    Raises:
      TrainingError: every member's fitness was NaN in some generation (training stops; the
        last good checkpoint stays, nothing after it is written).
      CheckpointError: ``resume`` with a different or incompatible configuration.
      ConfigError: ``train.init_from`` holds no finished run, or one of another network's shapes.
      KeyboardInterrupt: after writing a checkpoint of the generations completed so far.
    """
    run_dir = distributed.process_run_dir(run_dir)  # the run folder itself on one process
    _check_run_dir(config, run_dir, resume)
    network = network_config(config)
    strategy = make_strategy(config)
    population = distributed.sharded_population(config, network, getattr(strategy, "shares_pairs", False))  # None: one device (a gradient method has no population)
    metrics_path, checkpoint_dir = run_dir / "metrics.jsonl", run_dir / "checkpoints"
    # A resumed run's state comes from its checkpoint; train.init_from only seeds a new run.
    state, data_key = _initial_state(config, strategy, network, use_init_from=not resume)
    skipped = []  # bad recordings left out under data.skip_bad
    frames, labels = load_frames(config, "train", progress=progress, skipped=skipped)
    # The test split is read only after training: build (or check) its cache now, so a bad
    # recording or a full cache disk is found before the first generation, not after the last.
    load_frames(config, "test", progress=progress, skipped=skipped)
    _write_config(config, run_dir)
    if config.data.skip_bad:
        checkpoint.atomic_write_text(run_dir / "skipped_files.json", json.dumps(skipped, indent=1) + "\n")  # only now: a run that cannot read its data or model leaves no folder
    train_index, validation_index = stratified_split(labels, config.data.validation_fraction, config.train.seed)
    data = _Data(
        train_frames=jnp.asarray(frames[train_index]),  # uint8, moved to the device once
        train_labels=jnp.asarray(labels[train_index], jnp.int32),
        validation_frames=jnp.asarray(frames[validation_index]),
        validation_labels=labels[validation_index],
    )
    wall_offset = 0.0
    if resume:
        found = checkpoint.latest_valid_checkpoint(checkpoint_dir)
        if found is not None:
            like = jax.eval_shape(lambda: state)
            state = checkpoint.load_checkpoint(found, like, config=config.to_dict(), ignore=RESUMABLE_CHANGES)
            wall_offset = float(found.metadata.get("wall_time_s", 0.0))
        else:
            print(f"no valid checkpoint in {checkpoint_dir}: starting from generation 0", flush=True)
        _truncate_metrics(metrics_path, found.generation if found is not None else 0)
    state = _strongly_typed(state)

    sharded = population is not None
    loop = _Loop(
        config, network, data, checkpoint_dir, metrics_path, wall_offset, population.compile_chunk if sharded else None
    )
    # fixed-point hook (issue 14): fixed_point.evaluator computes the population in an external process.
    with external_population(config, network) as external:
        step = make_generation_step(
            strategy, network, config.train, data_key, external or (population.evaluate if sharded else None),
            weight_grid=WeightGrid.for_network(config.network.weights, network),
        )
        bar = _Progress(progress, config.train.generations, int(state.strategy.generation))
        try:
            state = loop.run(step, state, bar)
        except KeyboardInterrupt:
            # The state whose metrics are all on disk: resuming from it leaves no gap in the log.
            loop.save(loop.committed)
            raise
        finally:
            bar.close()
    return _finish(config, run_dir, state, network, loop.wall_time())


class _Data(NamedTuple):
    train_frames: jax.Array  # (N_train, T, P, H, W) uint8
    train_labels: jax.Array  # (N_train,) int32
    validation_frames: jax.Array  # (N_val, T, P, H, W) uint8
    validation_labels: np.ndarray  # (N_val,) int64


def _strongly_typed(tree: Any) -> Any:
    """Drop weak types so a freshly initialised and a loaded state match one compiled signature."""
    return jax.tree_util.tree_map(
        lambda leaf: leaf if checkpoint.is_prng_key(leaf) else jnp.asarray(leaf, dtype=leaf.dtype), tree
    )


class _Loop:
    """The generation loop of one training session (chunks of scanned generations)."""

    def __init__(
        self, config, network, data: _Data, checkpoint_dir: Path, metrics_path: Path, wall_offset: float,
        compile_chunk=None,
    ):
        self.config, self.network, self.data = config, network, data
        # (step, state, frames, labels, length) -> compiled chunk; distributed.py's spans a mesh.
        self.compile_chunk = _compile_chunk if compile_chunk is None else compile_chunk
        self.checkpoint_dir, self.metrics_path = checkpoint_dir, metrics_path
        self.wall_offset = wall_offset
        self.session_start = time.perf_counter()
        self.committed = None  # the newest state whose metrics lines are all written
        self.weight_grid = WeightGrid.for_network(config.network.weights, network)

    def wall_time(self) -> float:
        """Training seconds over all sessions of the run."""
        return self.wall_offset + time.perf_counter() - self.session_start

    def save(self, state: TrainingState) -> None:
        checkpoint.save_checkpoint(
            self.checkpoint_dir, int(state.strategy.generation), state, self.config.to_dict(),
            keep=self.config.train.keep_checkpoints, extra={"wall_time_s": self.wall_time()},
        )

    def _validate(self, state: TrainingState, generation: int, line: dict) -> TrainingState:
        """Validation accuracy of the mean parameters into ``line``; keep them if they are the best.

        Integer-weight runs evaluate the parameters on their grid and keep the float masters.
        """
        params = state.strategy.params
        logits = predict_logits(
            self.weight_grid.apply(params), self.data.validation_frames, self.network, self.config.train.eval_batch_size
        )
        accuracy = accuracy_report(logits.argmax(axis=1), self.data.validation_labels)["accuracy"]
        line["validation_accuracy"] = accuracy
        line["validation_loss"] = mean_cross_entropy(logits, self.data.validation_labels)
        if accuracy > float(state.best_accuracy):
            state = state._replace(
                best_params=params,
                best_accuracy=jnp.asarray(accuracy, jnp.float32),
                best_generation=jnp.asarray(generation, jnp.int32),
            )
        return state

    def run(self, step, state: TrainingState, bar: _Progress) -> TrainingState:
        train = self.config.train
        per_call, total = chunk_length(train), train.generations
        compiled = {}
        generation = int(state.strategy.generation)
        self.committed = state
        with open(self.metrics_path, "a", encoding="utf-8") as metrics_file:
            while generation < total:
                # Chunks end on multiples of per_call, so a resumed run cuts the same chunks.
                length = min(per_call - generation % per_call, total - generation)
                if length not in compiled:
                    compiled[length] = self.compile_chunk(
                        step, state.strategy, self.data.train_frames, self.data.train_labels, length
                    )
                chunk_start = time.perf_counter()
                strategy_state, metrics = compiled[length](
                    state.strategy, self.data.train_frames, self.data.train_labels
                )
                metrics = jax.device_get(metrics)
                seconds = (time.perf_counter() - chunk_start) / length
                failed = np.flatnonzero(metrics["all_fitness_nan"])
                completed = length if len(failed) == 0 else int(failed[0])
                lines = [
                    {
                        "generation": generation + offset + 1,
                        **{name: _json_number(metrics[name][offset]) for name in METRIC_FIELDS[1:8]},
                        "seconds_per_generation": seconds,
                    }
                    for offset in range(completed)
                ]
                if len(failed):
                    self._write(metrics_file, lines)
                    raise self._all_nan_error(generation + completed + 1)
                generation += length
                state = state._replace(strategy=strategy_state)
                # The wall-clock budget ends the run like its last generation would.
                last = generation == total or (train.max_seconds is not None and self.wall_time() >= train.max_seconds)
                if generation % train.eval_every == 0 or last:
                    state = self._validate(state, generation, lines[-1])
                self._write(metrics_file, lines)
                self.committed = state
                if generation % train.checkpoint_every == 0 or last:
                    self.save(state)
                bar.update(generation, lines[-1]["fitness_mean"], lines[-1].get("validation_accuracy"), seconds)
                if last:
                    break
        return state

    def _write(self, metrics_file, lines: list[dict]) -> None:
        wall_time = self.wall_time()
        metrics_file.write("".join(json.dumps({**line, "wall_time_s": wall_time}) + "\n" for line in lines))
        metrics_file.flush()

    def _all_nan_error(self, generation: int) -> TrainingError:
        found = checkpoint.latest_valid_checkpoint(self.checkpoint_dir)
        kept = f"the last good checkpoint, {found.json_path}, is kept" if found else "no checkpoint had been written"
        return TrainingError(
            f"every one of the {self.config.strategy.population_size} members had a NaN or infinite fitness "
            f"in generation {generation}; training stopped and {kept}. The network diverged: try a smaller "
            "strategy.sigma or strategy.learning_rate"
        )


def _finish(config: TrainConfig, run_dir: Path, state: TrainingState, network, wall_time: float) -> TrainResult:
    """Save the selected model, evaluate it once on the test split, write ``summary.json``."""
    best_generation = int(state.best_generation)
    best_accuracy = float(state.best_accuracy)
    # Integer-weight runs save Q(W) (exactly on the grid) and record the scales under "weights".
    model_params, weight_record = model_on_grid(WeightGrid.for_network(config.network.weights, network), state.best_params)
    checkpoint.save_tree(
        run_dir / MODEL_STEM,
        model_params,
        {"config": config.to_dict(), "generation": best_generation, "validation_accuracy": best_accuracy, **weight_record},
    )
    if weight_record:  # the integer arrays themselves, for integer hardware
        checkpoint.save_tree(run_dir / INTEGER_MODEL_STEM, integer_tree(model_params, weight_record["weights"]), weight_record)
    if network.fixed_point is not None:  # fixed-point hook (issue 14): the chip's integers, plain .npz + .json
        export_integer(model_params, network.fixed_point, run_dir / FIXED_POINT_MODEL_STEM, {"generation": best_generation})
    test_frames, test_labels = load_frames(config, "test")
    logits = predict_logits(model_params, test_frames, network, config.train.eval_batch_size)
    report = accuracy_report(logits.argmax(axis=1), test_labels)
    generations = int(state.strategy.generation)
    summary = {
        "test_accuracy": report["accuracy"],
        "test_count": report["count"],
        "test_per_class": report["per_class"],
        "best_generation": best_generation,
        "best_validation_accuracy": best_accuracy,
        "generations": generations,
        "wall_time_s": wall_time,
        "seconds_per_generation": wall_time / max(generations, 1),
        "method": config.strategy.method,
        "population_size": config.strategy.population_size,
    }
    checkpoint.atomic_write_text(run_dir / "summary.json", json.dumps(summary, indent=1) + "\n")
    return TrainResult(
        run_dir=run_dir,
        generations=generations,
        best_generation=best_generation,
        best_validation_accuracy=best_accuracy,
        test_accuracy=report["accuracy"],
        test_count=report["count"],
        wall_time_s=wall_time,
        params=model_params,
    )


__all__ = [
    "METRIC_FIELDS",
    "TIMING_FIELDS",
    "RESUMABLE_CHANGES",
    "TrainingState",
    "TrainResult",
    "stratified_split",
    "make_strategy",
    "member_losses",
    "shift_frames",
    "make_generation_step",
    "chunk_length",
    "read_metrics",
    "resolve_run",
    "train",
]
