"""The training loop: a strategy (or BPTT) on a config's data, into a run folder.

Data use: the training split is loaded once; a seeded, class-stratified validation part is held
out from it to select the model (the parameters with the best validation accuracy are kept); the
test split is read only once, at the end, to report on the selected model. The run folder's
files are described in :mod:`eggroll_snn.run_folder`.

Exact resume: every random draw derives from ``train.seed`` and the generation number, and a
checkpoint holds the whole state (strategy state, best parameters so far), so a run resumed from
its newest checkpoint writes the same metrics (apart from the timing fields) and the same
parameters as an uninterrupted one.
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from eggroll_snn import checkpoint, distributed, run_folder
from eggroll_snn.config import TrainConfig, apply_overrides, options_missing_at_default
from eggroll_snn.data import event_augment
from eggroll_snn.data.source import load_frames
from eggroll_snn.errors import CheckpointError, ConfigError, TrainingError
from eggroll_snn.integer.grid import WeightGrid
from eggroll_snn.network import NetworkConfig, init_params
from eggroll_snn.scoring import accuracy_report, mean_cross_entropy, predict_logits
from eggroll_snn.strategies import Objective, all_fitness_nan_error
from eggroll_snn.training import budget
from eggroll_snn.training import step as step_module
from eggroll_snn.training.data import TrainingData, prepare_data
from eggroll_snn.training.evaluators import PopulationEvaluation
from eggroll_snn.training.progress import Progress


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


def initial_params_from_run(run_dir: str, like: Any) -> Any:
    """The selected model of the finished run ``run_dir``, checked against the shapes of ``like``.

    Raises:
      ConfigError: ``run_dir`` holds no readable model, or one of another network's shapes.
    """
    try:
        params, _, _ = run_folder.load_model(Path(run_dir).expanduser())
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


def initial_state(
    config: TrainConfig, strategy, network: NetworkConfig, use_init_from: bool = True
) -> tuple[TrainingState, jax.Array]:
    """Generation-0 state and the minibatch key, all derived from ``train.seed``.

    The mean parameters are random, or ``train.init_from``'s model when set and ``use_init_from``.
    """
    root = jax.random.key(config.train.seed)
    init_key, noise_key, data_key = (jax.random.fold_in(root, purpose) for purpose in range(3))
    params = init_params(init_key, network)
    if use_init_from and config.train.init_from is not None:
        params = initial_params_from_run(config.train.init_from, params)
    state = TrainingState(
        strategy=strategy.init(noise_key, params),
        best_params=params,
        best_accuracy=jnp.asarray(-1.0, jnp.float32),
        best_generation=jnp.asarray(0, jnp.int32),
    )
    return state, data_key


def train(
    config: TrainConfig, run_dir: str | Path, resume: bool = False, progress: bool = True, event_transform=None
) -> TrainResult:
    """Train the network of ``config`` with its method; write everything to ``run_dir``.

    Args:
      config: the resolved configuration.
      run_dir: the run folder (created; must not hold another run unless ``resume``).
      resume: continue from the newest valid checkpoint in ``run_dir/checkpoints`` (corrupt ones
        are skipped with a warning); ``metrics.jsonl`` is cut back to that generation. Only
        ``train.generations``, ``train.max_seconds`` and ``train.devices`` may differ from the run's
        ``config.toml``. A decaying sigma or learning-rate schedule spans ``train.generations``, so
        a resume that changes it reshapes the schedule from the resumed generation on.
      progress: show a progress bar.
      event_transform: a callable from events to events (e.g. a tonic transform) that makes
        ``train.augment_event_copies`` extra copies of each training recording
        (:mod:`eggroll_snn.data.event_augment`; 1 copy when that option is 0). Its description
        is recorded in ``train.augment_event_transform``; a resume needs the same transform again.

    Returns:
      :class:`TrainResult` (the selected model and its test accuracy).

    Raises:
      TrainingError: every member's fitness was NaN in some generation (training stops; the
        last good checkpoint stays, nothing after it is written).
      CheckpointError: ``resume`` with a different or incompatible configuration.
      ConfigError: ``train.init_from`` holds no finished run, or one of another network's shapes.
      KeyboardInterrupt: after writing a checkpoint of the generations completed so far.
    """
    started = time.perf_counter()
    config = with_event_transform(config, event_transform)
    run_dir = distributed.process_run_dir(run_dir)  # the run folder itself on one process
    run_folder.check_run_dir(config, run_dir, resume)
    network = config.network_config()
    budgeted = config.train.generations is None  # fixed from train.time_budget_s below
    method = step_module.strategy_from_config(budget.provisional(config) if budgeted else config)
    population = PopulationEvaluation(config, network, method)  # device options checked before any file
    # A resumed run's state comes from its checkpoint; train.init_from only seeds a new run.
    state, data_key = initial_state(config, method, network, use_init_from=not resume)
    data, skipped = prepare_data(config, progress=progress, event_transform=event_transform)
    split_labels = {"train": np.asarray(data.train_labels), "validation": data.validation_labels, "test": data.test_labels}
    with population:
        objective = Objective(network, population.evaluate, config.train.fitness)
        if budgeted:  # measured before the folder exists: a budget that fits nothing leaves none
            config, measured = fit_to_budget(config, method, objective, network, data, population, state, data_key, started)
            method = step_module.strategy_from_config(config)
            state, data_key = initial_state(config, method, network)
        return _train_locked(
            config, run_dir, resume, progress, network, method, objective, population, state, data_key, data, skipped,
            split_labels, measured if budgeted else None,
        )


def with_event_transform(config: TrainConfig, event_transform) -> TrainConfig:
    """``config`` with the description of ``event_transform`` recorded (and 1 copy where none was set).

    Raises:
      ConfigError: copies without a transform (a CLI run, or a resume without it), a transform that
        is not callable, or one other than the run recorded.
    """
    copies, recorded = config.train.augment_event_copies, config.train.augment_event_transform
    if event_transform is None:
        if copies:
            used = f" (this run used {recorded})" if recorded else ""
            raise ConfigError(
                f"train.augment_event_copies = {copies} needs an event transform{used}: pass it from Python as "
                "eggroll_snn.training.train(config, run_dir, event_transform=...), or set the option to 0"
            )
        return config
    if not callable(event_transform):
        raise ConfigError(f"event_transform: expected a callable from events to events, got {type(event_transform).__name__}")
    description = event_augment.describe(event_transform)
    if recorded is not None and recorded != description:
        raise ConfigError(
            f"event_transform: {description}, but train.augment_event_transform records {recorded}; "
            "pass the transform the run was trained with"
        )
    return apply_overrides(config, {"train.augment_event_copies": copies or 1, "train.augment_event_transform": description})


def _train_locked(
    config, run_dir, resume, progress, network, method, objective, population, state, data_key, data, skipped, split_labels,
    measured,
) -> TrainResult:
    """The part of :func:`train` that writes into the run folder, which it holds the lock of."""
    with run_folder.RunLock(run_dir):
        # Under the lock: no other training can have started in this folder since the first check.
        run_folder.check_run_dir(config, run_dir, resume)
        run_folder.start_run(config, run_dir, skipped, split_labels)
        if measured is not None:
            run_folder.write_json(run_dir / run_folder.BUDGET_FILE, measured)
        wall_offset = 0.0
        if resume:
            state, wall_offset = resumed_state(config, run_dir, state)
        state = strongly_typed(state)
        step = step_module.make_generation_step(method, objective, config.train, data_key)
        loop = Loop(config, network, data, run_dir, wall_offset, population.compile_chunk, population.check)
        bar = Progress(progress, config.train.generations, int(state.strategy.generation))
        try:
            state = loop.run(step, state, bar)
        except KeyboardInterrupt:
            # The state whose metrics are all on disk: resuming from it leaves no gap in the log.
            loop.save(loop.committed)
            raise
        finally:
            bar.close()
        return finish(config, run_dir, state, network, loop.wall_time())


def fit_to_budget(config, method, objective, network, data, population, state, data_key, started):
    """``config`` with ``train.generations`` fixed from ``train.time_budget_s`` (see
    :mod:`eggroll_snn.training.budget`), and the record of what was measured."""
    length = step_module.chunk_length(config.train)
    step = step_module.make_generation_step(method, objective, config.train, data_key)
    grid = WeightGrid.for_network(config.network.weights, network)

    def validate():
        predict_logits(grid.apply(state.strategy.params), data.validation_frames, network, config.train.eval_batch_size)

    measured = budget.measure(
        population.compile_chunk, step, strongly_typed(state.strategy), data, validate, length, population.check
    )
    elapsed = time.perf_counter() - started
    generations = budget.generations_for(config.train.time_budget_s, elapsed, measured, config.train.eval_every, length)
    print(
        f"time budget {config.train.time_budget_s:g} s: {measured['seconds_per_generation']:.4f} s per generation on "
        f"{budget.cpu_model() if jax.default_backend() == 'cpu' else jax.local_devices()[0].device_kind} -> "
        f"{generations} generations (train.generations in config.toml)",
        flush=True,
    )
    fixed = apply_overrides(config, {"train.generations": generations})
    return fixed, budget.record(config, measured, elapsed, generations)


def resumed_state(config: TrainConfig, run_dir: Path, state: TrainingState) -> tuple[TrainingState, float]:
    """The state of the newest valid checkpoint (``state`` when there is none) and the training
    seconds before it; ``metrics.jsonl`` is cut back to its generation."""
    checkpoint_dir = run_dir / run_folder.CHECKPOINT_DIR
    found = checkpoint.latest_valid_checkpoint(checkpoint_dir)
    wall_offset = 0.0
    if found is not None:
        like = jax.eval_shape(lambda: state)
        # Options added since the checkpoint was written (e.g. data.source) count only when set.
        added = options_missing_at_default(found.metadata.get("config") or {}, config)
        state = checkpoint.load_checkpoint(found, like, config=config.to_dict(), ignore=run_folder.RESUMABLE_CHANGES + added)
        wall_offset = float(found.metadata.get("wall_time_s", 0.0))
    else:
        print(f"no valid checkpoint in {checkpoint_dir}: starting from generation 0", flush=True)
    run_folder.truncate_metrics(run_dir / run_folder.METRICS_FILE, found.generation if found is not None else 0)
    return state, wall_offset


def strongly_typed(tree: Any) -> Any:
    """Drop weak types so a freshly initialised and a loaded state match one compiled signature."""
    return jax.tree_util.tree_map(
        lambda leaf: leaf if checkpoint.is_prng_key(leaf) else jnp.asarray(leaf, dtype=leaf.dtype), tree
    )


class Loop:
    """The generation loop of one training session (chunks of scanned generations)."""

    def __init__(self, config, network, data: TrainingData, run_dir: Path, wall_offset: float, compile_chunk, check=None):
        self.config, self.network, self.data = config, network, data
        self.check = check or (lambda: None)  # raises what an external evaluator met during a call
        # (step, state, frames, labels, length) -> compiled chunk; distributed.py's spans a mesh.
        self.compile_chunk = compile_chunk
        self.checkpoint_dir, self.metrics_path = run_dir / run_folder.CHECKPOINT_DIR, run_dir / run_folder.METRICS_FILE
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
        accuracy = accuracy_report(logits.argmax(axis=1), self.data.validation_labels, self.network.num_classes)["accuracy"]
        line["validation_accuracy"] = accuracy
        line["validation_loss"] = mean_cross_entropy(logits, self.data.validation_labels)
        if accuracy > float(state.best_accuracy):
            state = state._replace(
                best_params=params,
                best_accuracy=jnp.asarray(accuracy, jnp.float32),
                best_generation=jnp.asarray(generation, jnp.int32),
            )
        return state

    def run(self, step, state: TrainingState, bar: Progress) -> TrainingState:
        train = self.config.train
        per_call, total = step_module.chunk_length(train), train.generations
        compiled = {}
        generation = int(state.strategy.generation)
        self.committed = state
        with run_folder.MetricsLog(self.metrics_path) as log:
            while generation < total:
                # Chunks end on multiples of per_call, so a resumed run cuts the same chunks.
                length = min(per_call - generation % per_call, total - generation)
                if length not in compiled:
                    compiled[length] = self.compile_chunk(
                        step, state.strategy, self.data.train_frames, self.data.train_labels, length
                    )
                chunk_start = time.perf_counter()
                strategy_state, metrics = compiled[length](state.strategy, self.data.train_frames, self.data.train_labels)
                metrics = jax.device_get(metrics)
                self.check()  # before anything of this call is kept
                seconds = (time.perf_counter() - chunk_start) / length
                failed = np.flatnonzero(metrics.all_fitness_nan)
                completed = length if len(failed) == 0 else int(failed[0])
                lines = run_folder.metric_lines(generation, metrics, completed, seconds)
                if len(failed):
                    log.write(lines, self.wall_time())
                    raise self._all_nan_error(generation + completed + 1)
                generation += length
                state = state._replace(strategy=strategy_state)
                # The wall-clock budget ends the run like its last generation would.
                last = generation == total or (train.max_seconds is not None and self.wall_time() >= train.max_seconds)
                if generation % train.eval_every == 0 or last:
                    state = self._validate(state, generation, lines[-1])
                log.write(lines, self.wall_time())
                self.committed = state
                if generation % train.checkpoint_every == 0 or last:
                    self.save(state)
                bar.update(generation, lines[-1]["fitness_mean"], lines[-1].get("validation_accuracy"), seconds)
                if last:
                    break
        return state

    def _all_nan_error(self, generation: int) -> TrainingError:
        found = checkpoint.latest_valid_checkpoint(self.checkpoint_dir)
        kept = f"the last good checkpoint, {found.json_path}, is kept" if found else "no checkpoint had been written"
        return all_fitness_nan_error(generation, kept, options="strategy.sigma or strategy.learning_rate")


def finish(config: TrainConfig, run_dir: Path, state: TrainingState, network, wall_time: float) -> TrainResult:
    """Save the selected model, evaluate it once on the test split (unless ``train.evaluate_test`` is
    false: its accuracy is then ``None``), write ``summary.json``."""
    best_generation = int(state.best_generation)
    best_accuracy = float(state.best_accuracy)
    model_params = run_folder.write_model(config, run_dir, state.best_params, best_generation, best_accuracy)
    report = {"accuracy": None, "count": 0, "per_class": None}
    if config.train.evaluate_test:
        test_frames, test_labels = load_frames(config.data, "test")
        logits = predict_logits(model_params, test_frames, network, config.train.eval_batch_size)
        report = accuracy_report(logits.argmax(axis=1), test_labels, network.num_classes)
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
    run_folder.write_json(run_dir / run_folder.SUMMARY_FILE, summary)
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


__all__ = ["TrainingState", "TrainResult", "initial_state", "train", "resumed_state", "Loop", "finish"]
