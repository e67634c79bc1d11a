"""The files of a run folder: what the trainer writes and every consumer reads.

Layout (``run_dir``)::

    config.toml      the resolved configuration
    metrics.jsonl    one JSON object per generation (see :data:`METRIC_FIELDS`)
    checkpoints/     gen-XXXXXXXX.npz + .json (see :mod:`eggroll_snn.checkpoint`)
    model.npz/.json  best-validation parameters + config (integer weights: on the grid, scales in .json)
    model_integer.npz/.json  integer-weight runs only: the int8 weights, int32 biases and scales
    model_fixed_point.npz/.json  fixed-point runs only: the chip's integers and their arithmetic
    summary.json     test accuracy of the selected model, timings
    budget.json      runs with train.generations unset: the seconds measured and the count fixed
    skipped_files.json  with ``data.skip_bad`` only: the recordings left out, and why

The trainer (:mod:`eggroll_snn.training`) is the only writer; ``evaluate``, ``plot``, ``export``,
``compare`` and the baselines read runs through this module and never import the trainer.
"""

from __future__ import annotations

import fcntl
import io
import json
import math
import os
import socket
import time
from pathlib import Path
from typing import Any

import jax
import numpy as np

from eggroll_snn import checkpoint, config as config_module
from eggroll_snn.atomic_files import atomic_write, atomic_write_text
from eggroll_snn.config import TrainConfig, from_dict
from eggroll_snn.data.tonic_source import SPLIT_RECORD, split_record
from eggroll_snn.errors import CheckpointError, ConfigError, TrainingError
from eggroll_snn.integer.arithmetic import integer_model
from eggroll_snn.integer.grid import WeightGrid, integer_tree, model_on_grid
from eggroll_snn.integer.spec import FixedPointSpec
from eggroll_snn.network import init_params
from eggroll_snn.strategies import GenerationMetrics

MODEL_STEM = "model"
INTEGER_MODEL_STEM = "model_integer"
#: The exported integer model of a fixed-point run.
FIXED_POINT_MODEL_STEM = "model_fixed_point"
METRICS_FILE = "metrics.jsonl"
CONFIG_FILE = "config.toml"
SUMMARY_FILE = "summary.json"
SKIPPED_FILE = "skipped_files.json"
#: The lock a training holds on its run folder (see :class:`RunLock`).
LOCK_FILE = ".lock"
#: A time-budgeted run's record of what it measured and the generation count it fixed.
BUDGET_FILE = "budget.json"
CHECKPOINT_DIR = "checkpoints"

#: The fields of a generation's :class:`~eggroll_snn.strategies.GenerationMetrics` that every metrics
#: line logs (all but ``all_fitness_nan``, which stops training instead).
LOGGED_METRICS = tuple(name for name in GenerationMetrics._fields if name != "all_fitness_nan")
#: Fields of every metrics line. ``train_loss`` is the minibatch cross-entropy averaged over the
#: population members (the loss the fitness is computed from, not the unperturbed mean's);
#: ``fitness_*`` and ``train_*`` ignore members whose fitness is not finite, counted in
#: ``invalid_fitness``. Eval lines add ``validation_accuracy`` and ``validation_loss``.
METRIC_FIELDS = ("generation", *LOGGED_METRICS, "seconds_per_generation", "wall_time_s")
#: Metrics that measure time and so differ between otherwise identical runs.
TIMING_FIELDS = ("seconds_per_generation", "wall_time_s")
#: Options that may change when a run is resumed (everything else must match the checkpoint).
RESUMABLE_CHANGES = (
    "train.generations", "train.max_seconds", "train.devices",
    "fixed_point.evaluator", "fixed_point.evaluator_timeout_s",  # the same results in process or through an evaluator
)


def read_metrics(path: str | Path) -> list[dict]:
    """The metrics lines of a run (a torn last line from a killed write is ignored).

    Raises:
      TrainingError: a line that is not UTF-8 JSON (other than a torn last one), or generations
        that do not run 1, 2, 3, ... in order (two trainings wrote into one folder).
    """
    path = Path(path)
    if path.is_dir():
        path = path / METRICS_FILE
    if not path.exists():
        return []
    lines = path.read_bytes().splitlines()
    records = []
    for number, line in enumerate(lines, 1):
        try:
            records.append(json.loads(line.decode("utf-8")))
        except (UnicodeDecodeError, json.JSONDecodeError) as error:
            if number == len(lines):
                break  # the process was killed while writing it; the checkpoint predates it
            what = "is not UTF-8 text" if isinstance(error, UnicodeDecodeError) else "is not valid JSON"
            raise TrainingError(f"{path}: line {number} {what}; the metrics log is corrupt") from None
    for number, (record, expected) in enumerate(zip(records, range(1, len(records) + 1)), 1):
        if not isinstance(record, dict) or record.get("generation") != expected:
            found = record.get("generation") if isinstance(record, dict) else record
            raise TrainingError(
                f"{path}: line {number} holds generation {found!r} where generation {expected} belongs; the log "
                "mixes runs (two trainings wrote into this folder at once?) or is corrupt. Start a new run in another folder"
            )
    return records


def truncate_metrics(path: Path, generation: int) -> None:
    """Keep only the lines of generations ``<= generation`` (atomically)."""
    kept = [record for record in read_metrics(path) if record.get("generation", 0) <= generation]
    atomic_write_text(path, "".join(json.dumps(record) + "\n" for record in kept))


def json_number(value: Any) -> Any:
    value = value.item() if hasattr(value, "item") else value
    if isinstance(value, float) and not math.isfinite(value):
        return None  # JSON has no NaN/inf
    return value


def metric_lines(first_generation: int, metrics: GenerationMetrics, count: int, seconds_per_generation: float) -> list[dict]:
    """The metrics lines of generations ``first_generation + 1 .. first_generation + count`` from a
    compiled chunk's metrics (each field an array with one entry per generation)."""
    return [
        {
            "generation": first_generation + offset + 1,
            **{name: json_number(getattr(metrics, name)[offset]) for name in LOGGED_METRICS},
            "seconds_per_generation": seconds_per_generation,
        }
        for offset in range(count)
    ]


class MetricsLog:
    """``metrics.jsonl`` opened for appending: lines are written whole and flushed, each stamped with
    the run's wall time (``with MetricsLog(path) as log: log.write(lines, wall_time_s)``)."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self._file = None

    def __enter__(self) -> "MetricsLog":
        self._file = open(self.path, "a", encoding="utf-8")
        return self

    def __exit__(self, *exc_info) -> None:
        self._file.close()

    def write(self, lines: list[dict], wall_time_s: float) -> None:
        self._file.write("".join(json.dumps({**line, "wall_time_s": wall_time_s}) + "\n" for line in lines))
        self._file.flush()


class RunLock:
    """Ownership of a run folder for a training's life: ``with RunLock(run_dir): ...``.

    An exclusive ``flock`` on ``run_dir/.lock`` (created with the folder), which the operating
    system releases when the process ends, however it ends (kill -9 included); the file names the
    owner. A second training into the same folder is refused in one line naming the first.
    """

    def __init__(self, run_dir: Path):
        self.run_dir = Path(run_dir)
        self._fd: int | None = None

    def __enter__(self) -> "RunLock":
        path = self.run_dir / LOCK_FILE
        try:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as error:
            raise ConfigError(
                f"cannot write to the run folder {self.run_dir} ({error.strerror or error}); choose a writable folder "
                "(--out), or copy the run to one before resuming it"
            ) from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            owner = os.read(fd, 200).decode("utf-8", "replace").strip() or "another process"
            os.close(fd)
            raise ConfigError(
                f"run folder {self.run_dir} is in use by another training ({owner}); wait for it to end, or "
                "choose another output folder"
            ) from None
        os.ftruncate(fd, 0)
        os.write(fd, f"process {os.getpid()} on {socket.gethostname()}\n".encode())
        self._fd = fd
        return self

    def __exit__(self, *exc_info) -> None:
        if self._fd is not None:
            os.close(self._fd)  # releases the lock
            self._fd = None


def check_run_dir(config: TrainConfig, run_dir: Path, resume: bool) -> None:
    """Refuse to overwrite another run, or to resume one with another configuration."""
    if resume:
        config_path = run_dir / CONFIG_FILE
        if not config_path.is_file():
            raise CheckpointError(f"cannot resume {run_dir}: it has no config.toml, so it is not a run folder")
        saved = config_module.load(config_path)
        differences = checkpoint.config_differences(saved.to_dict(), config.to_dict(), RESUMABLE_CHANGES)
        if differences:
            raise CheckpointError(
                f"cannot resume {run_dir} with a different configuration ({'; '.join(differences[:5])}); "
                f"only {', '.join(RESUMABLE_CHANGES)} may change when resuming"
            )
    elif (run_dir / METRICS_FILE).exists() or (run_dir / CHECKPOINT_DIR).exists():
        raise ConfigError(
            f"output folder {run_dir} already holds a training run; resume it (--resume {run_dir}) or "
            "choose another output folder"
        )


def write_config(config: TrainConfig, run_dir: Path) -> None:
    run_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_text(
        run_dir / CONFIG_FILE, config_module.dumps(config, header="eggroll-snn training run: the resolved configuration.")
    )


def start_run(config: TrainConfig, run_dir: Path, skipped: list[dict], split_labels: dict) -> None:
    """The files a run writes before its first generation: ``config.toml``; with ``data.skip_bad``
    the recordings left out (``skipped_files.json``); for a tonic data set the split record.

    Called only once the data and any starting model are read, so a run that cannot read them
    leaves no folder.
    """
    write_config(config, run_dir)
    if config.data.skip_bad:
        write_json(run_dir / SKIPPED_FILE, skipped)
    if config.data.source == "tonic":  # state the splits (and where the test split came from)
        write_json(run_dir / SPLIT_RECORD, split_record(config.data, split_labels))


def write_model(config: TrainConfig, run_dir: Path, params: Any, generation: int, validation_accuracy: float) -> Any:
    """Save the selected model; returns the parameters saved (on the grid for integer weights).

    Writes ``model.npz/.json``; integer-weight runs also ``model_integer.npz/.json`` (the int8
    weights, int32 biases and scales), fixed-point runs ``model_fixed_point.npz/.json`` (the chip's
    integers and their arithmetic).
    """
    network = config.network_config()
    model_params, weight_record = model_on_grid(WeightGrid.for_network(config.network.weights, network), params)
    checkpoint.save_tree(
        run_dir / MODEL_STEM,
        model_params,
        {"config": config.to_dict(), "generation": generation, "validation_accuracy": validation_accuracy, **weight_record},
    )
    if weight_record:
        checkpoint.save_tree(run_dir / INTEGER_MODEL_STEM, integer_tree(model_params, weight_record["weights"]), weight_record)
    if network.fixed_point is not None:
        export_integer(model_params, network.fixed_point, run_dir / FIXED_POINT_MODEL_STEM, {"generation": generation})
    return model_params


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
        # Overrides complete the file before it is checked (a tonic config file names its data set, --data its folder).
        config = config_module.load(config_file, overrides) if config_file is not None else TrainConfig()
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
    if not (run_dir / CONFIG_FILE).is_file():
        raise CheckpointError(f"cannot resume {run_dir}: it has no config.toml, so it is not a run folder")
    saved = config_module.load(run_dir / CONFIG_FILE)
    config = config_module.apply_overrides(saved, overrides)
    changed = checkpoint.config_differences(saved.to_dict(), config.to_dict(), RESUMABLE_CHANGES)
    if changed:
        raise ConfigError(
            f"cannot change options when resuming {run_dir} ({'; '.join(changed[:5])}); only "
            f"{', '.join(RESUMABLE_CHANGES)} may change"
        )
    return config, run_dir, True


def parameter_shapes(config: TrainConfig) -> Any:
    """The parameter pytree of ``config``'s network as ``jax.ShapeDtypeStruct`` leaves (no compute)."""
    return jax.eval_shape(lambda key: init_params(key, config.network_config()), jax.random.key(0))


def load_model(run_dir: str | Path) -> tuple[Any, TrainConfig, dict]:
    """The saved best-validation model of a run folder.

    Returns:
      ``(params, config, metadata)`` from ``model.npz`` / ``model.json``.

    Raises:
      CheckpointError: missing, corrupt, or not matching the config it records.
    """
    json_path = Path(run_dir) / f"{MODEL_STEM}.json"
    if not json_path.is_file():
        raise CheckpointError(f"{json_path} not found: {run_dir} holds no finished training run")
    metadata = checkpoint.verify(json_path)
    try:
        config = from_dict(metadata.get("config"))
    except ConfigError as error:
        raise CheckpointError(f"{json_path}: its recorded config is invalid: {error}") from None
    params = checkpoint.load_tree(json_path, parameter_shapes(config), metadata)
    return params, config, metadata


def export_integer(params: dict, spec: FixedPointSpec, stem: str | Path, metadata: dict | None = None) -> Path:
    """Write ``<stem>.npz`` and ``<stem>.json`` (atomically) for ``params`` under ``spec``; returns the .npz path."""
    stem = Path(stem)
    arrays, record = integer_model(params, spec)
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    atomic_write(stem.with_suffix(".npz"), lambda handle: handle.write(buffer.getvalue()))
    atomic_write_text(stem.with_suffix(".json"), json.dumps({**record, **(metadata or {})}, indent=1) + "\n")
    return stem.with_suffix(".npz")


def load_integer(stem: str | Path) -> tuple[dict, dict]:
    """``(arrays, record)`` of an exported integer model.

    Raises:
      CheckpointError: a file is missing or unreadable, or the arrays do not match the record.
    """
    stem = Path(stem)
    try:
        record = json.loads(stem.with_suffix(".json").read_text(encoding="utf-8"))
        with np.load(stem.with_suffix(".npz"), allow_pickle=False) as archive:
            arrays = {name: archive[name] for name in archive.files}
    except (OSError, ValueError) as error:
        raise CheckpointError(
            f"cannot read the integer model {stem}.npz + {stem.name}.json ({error}); runs trained before the "
            "fixed-point export have none: retrain, or write it with eggroll_snn.run_folder.export_integer"
        ) from None
    shapes = [list(arrays.get(f"layer{i}_weight", np.zeros(0)).shape) for i in range(int(record.get("layers", 0)))]
    if shapes != record.get("layer_shapes"):
        raise CheckpointError(f"{stem}.npz: weight shapes {shapes} do not match {record.get('layer_shapes')} in {stem}.json")
    return arrays, record


def write_json(path: Path, record: Any) -> None:
    """``record`` as indented JSON at ``path`` (atomically)."""
    atomic_write_text(path, json.dumps(record, indent=1) + "\n")


__all__ = [
    "MODEL_STEM",
    "INTEGER_MODEL_STEM",
    "METRICS_FILE",
    "CONFIG_FILE",
    "SUMMARY_FILE",
    "SKIPPED_FILE",
    "BUDGET_FILE",
    "CHECKPOINT_DIR",
    "METRIC_FIELDS",
    "LOGGED_METRICS",
    "TIMING_FIELDS",
    "metric_lines",
    "MetricsLog",
    "start_run",
    "write_model",
    "RESUMABLE_CHANGES",
    "read_metrics",
    "truncate_metrics",
    "json_number",
    "check_run_dir",
    "RunLock",
    "LOCK_FILE",
    "write_config",
    "resolve_run",
    "parameter_shapes",
    "load_model",
    "write_json",
    "FIXED_POINT_MODEL_STEM",
    "export_integer",
    "load_integer",
]
