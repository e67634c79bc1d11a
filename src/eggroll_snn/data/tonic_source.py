"""Any event data set that tonic reads, as frames in our frame cache.

tonic (Lenz et al., "Tonic: event-based datasets and transformations", Zenodo 2021) reads the
standard event benchmarks into numpy structured arrays (fields ``x, y, t, p``, or ``x, t, p`` for
one-row sensors such as a cochlea) with a ``sensor_size = (W, H, P)``. This module takes the events
of a tonic data set already on disk, bins them with our :func:`~eggroll_snn.data.frames.events_to_frames`
and stores each split in the frame cache of :mod:`eggroll_snn.data.cache`, so training sees
``(N, T, P, H', W')`` uint8 frames exactly as for N-MNIST. A one-row sensor (``H = 1``) gives
``(T, P, 1, C)`` frames, i.e. ``(T, P, C)``.

Supported data sets (:data:`TONIC_DATASETS`; ``<root>`` is tonic's ``save_to`` folder and every
path below is what tonic 1.7.0's own check wants before it reads instead of downloading; this
module checks them first, so a missing file is an error naming it, never a download):

==============  =========================================================  ========  =====================
name            files under ``<root>``                                     sensor    time origin
==============  =========================================================  ========  =====================
``DVSGesture``  ``DVSGesture/ibmGesture{Train,Test}.tar.gz`` and at least   128x128x2  first event
                100 ``DVSGesture/ibmGesture{Train,Test}/user*_*/<class>.npy``
``POKERDVS``    ``POKERDVS/pips_{train,test}.tar.gz`` and at least 20       35x35x2   first event
                ``POKERDVS/pips_{train,test}/**/<cl|he|di|sp>/*.npy``
``SHD``         ``SHD/shd_{train,test}.h5.zip`` and ``SHD/shd_{train,test}.h5``  700x1x1  t = 0 (sound onset)
==============  =========================================================  ========  =====================

Time origin: camera recordings cut out of longer streams (DVS Gesture, POKER-DVS) are binned from
their first event (``t - min t``), SHD's spike times from the start of the sound (``t`` as read).
Polarity: a one-polarity sensor (``P = 1``, SHD) maps tonic's constant ``p = 1`` to 0.

Splits: ``"train"`` and ``"test"`` are the data set's own. With ``test_fraction`` set, both come
from its training split instead: a class-stratified share ``test_fraction`` (seeded, the same on
every machine and for every training seed) is the test split and the rest is the training split
(:func:`stratified_holdout`), for data sets without a test split and for Python callers.

Cache key: the frame configuration, the sensor size, the data set's name, the split rule and the
listing (relative names, sizes, modification times) of every file under ``<root>/<name>/``.
"""

from __future__ import annotations

import importlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, NamedTuple

import numpy as np

from eggroll_snn.data.cache import frames_of_files
from eggroll_snn.data.events import EVENT_DTYPE, check_time_order
from eggroll_snn.data.frames import FrameConfig
from eggroll_snn.errors import ConfigError, DataFormatError

SPLITS = ("train", "test")
HOLDOUT_SEED = 0x7E57
"""Seed of the test split made from a training split (fixed: the test split never moves with ``train.seed``)."""
PREFIX = "tonic:"
INSTALL_HINT = "install it with `pip install 'eggroll-snn[tonic]'` (or `pip install tonic`)"


def _h5_labels(dataset) -> np.ndarray:
    import h5py

    with h5py.File(os.path.join(dataset.location_on_system, dataset.data_filename), "r") as file:
        return np.asarray(file["labels"][()], dtype=np.int64)


def _h5_class_names(dataset) -> tuple[str, ...]:
    return tuple(key.decode() if isinstance(key, bytes) else str(key) for key in dataset.classes)


def _attribute_labels(dataset) -> np.ndarray:
    return np.asarray(dataset.targets, dtype=np.int64)


def _attribute_class_names(dataset) -> tuple[str, ...]:
    return tuple(str(name) for name in dataset.classes)


@dataclass(frozen=True)
class TonicSpec:
    """What this module knows about one tonic data set class.

    Attributes:
      name: the class name in ``tonic.datasets``.
      archives: our split -> the archive file tonic wants present (relative to ``<root>/<name>/``).
      folders: our split -> the folder tonic reads recordings from (``""``: ``<root>/<name>/`` itself).
      suffix, minimum: tonic wants at least ``minimum`` files ending in ``suffix`` under that folder.
      split_files: our split -> further files that must exist (relative to ``<root>/<name>/``).
      time_origin: ``"first_event"`` (bin from each recording's first event) or ``"zero"``.
      labels, class_names: read the labels ``(N,)`` and class names from an opened tonic data set.
    """

    name: str
    archives: dict
    folders: dict
    suffix: str
    minimum: int
    time_origin: str
    labels: Callable
    class_names: Callable
    split_files: dict | None = None

    def missing(self, location: Path, split: str) -> str | None:
        """What tonic would miss in ``location`` (= ``<root>/<name>``) for ``split``, or None."""
        archive = location / self.archives[split]
        if not archive.is_file():
            return (
                f"{archive} is missing (tonic wants the downloaded archive beside the unpacked files, "
                "and would try to download it otherwise)"
            )
        for extra in (self.split_files or {}).get(split, ()):
            if not (location / extra).is_file():
                return f"{location / extra} is missing"
        folder = location / self.folders[split]
        found = sum(1 for _ in folder.glob(f"**/*{self.suffix}")) if folder.is_dir() else 0
        if found < self.minimum:
            return f"{folder} holds {found} {self.suffix} files; tonic reads it only with at least {self.minimum}"
        return None


TONIC_DATASETS: dict[str, TonicSpec] = {
    "DVSGesture": TonicSpec(
        name="DVSGesture",
        archives={"train": "ibmGestureTrain.tar.gz", "test": "ibmGestureTest.tar.gz"},
        folders={"train": "ibmGestureTrain", "test": "ibmGestureTest"},
        suffix=".npy", minimum=100, time_origin="first_event",
        labels=_attribute_labels, class_names=_attribute_class_names,
    ),
    "POKERDVS": TonicSpec(
        name="POKERDVS",
        archives={"train": "pips_train.tar.gz", "test": "pips_test.tar.gz"},
        folders={"train": "pips_train", "test": "pips_test"},
        suffix=".npy", minimum=20, time_origin="first_event",
        labels=_attribute_labels, class_names=_attribute_class_names,
    ),
    "SHD": TonicSpec(
        name="SHD",
        archives={"train": "shd_train.h5.zip", "test": "shd_test.h5.zip"},
        folders={"train": "", "test": ""},
        suffix=".h5", minimum=1, time_origin="zero",
        labels=_h5_labels, class_names=_h5_class_names,
        split_files={"train": ("shd_train.h5",), "test": ("shd_test.h5",)},
    ),
}
"""The tonic data sets this module reads, by tonic class name."""


def spec(name: str) -> TonicSpec:
    """The :class:`TonicSpec` of ``name``.

    Raises:
      ConfigError: ``name`` is not a supported data set (the message lists them).
    """
    if name not in TONIC_DATASETS:
        raise ConfigError(
            f"data.tonic_dataset = {name!r} is not a supported tonic data set; use one of "
            f"{', '.join(sorted(TONIC_DATASETS))} (names as tonic spells its classes)"
        )
    return TONIC_DATASETS[name]


def parse_source(text: str) -> tuple[str, str]:
    """``"tonic:<DatasetName>:<path>"`` -> ``(name, path)``; the path may itself hold colons.

    Raises:
      ConfigError: not of that form, or an unknown name.
    """
    name, sep, root = text.removeprefix(PREFIX).partition(":")
    if not text.startswith(PREFIX) or not sep or not name or not root:
        raise ConfigError(
            f"data.root = {text!r}: a tonic data set is given as tonic:<DatasetName>:<folder>, "
            "e.g. tonic:DVSGesture:/data (the folder tonic's save_to points at)"
        )
    spec(name)
    return name, root


def _tonic():
    try:
        return importlib.import_module("tonic")
    except ImportError:
        raise ConfigError(f"data.source = 'tonic' needs the tonic package, which is not installed; {INSTALL_HINT}") from None


def open_dataset(name: str, root: str | os.PathLike, split: str):
    """The tonic data set object of ``split`` under ``root``, after checking its files are there.

    Raises:
      ConfigError: unknown name or split, tonic not installed.
      DataFormatError: a file tonic needs is missing (naming it), or tonic cannot read the folder.
    """
    data_spec = spec(name)
    if split not in SPLITS:
        raise ConfigError(f"split: expected one of {', '.join(SPLITS)}, got {split!r}")
    root = Path(root).expanduser()
    location = root / name
    if not location.is_dir():
        raise DataFormatError(
            f"{root}: no {name}/ folder, so this is not a tonic {name} root; point data.root at the folder "
            f"that holds {name}/ (tonic's save_to), or fetch it once with tonic.datasets.{name}(save_to=...)"
        )
    problem = data_spec.missing(location, split)
    if problem:
        raise DataFormatError(f"{problem}; the {split} split of {name} under {root} is incomplete, unpack or fetch it again")
    tonic = _tonic()
    try:
        return getattr(tonic.datasets, name)(str(root), train=(split == "train"))
    except (OSError, KeyError, ValueError, IndexError) as error:
        raise DataFormatError(f"{location}: tonic cannot read the {split} split of {name} ({type(error).__name__}: {error})") from None


def describe(name: str, root: str | os.PathLike) -> tuple[tuple[int, int, int], tuple[str, ...]]:
    """``(sensor_size (W, H, P), class_names)`` of the data set, read from its training split."""
    dataset = open_dataset(name, root, "train")
    names = spec(name).class_names(dataset)
    if not names:
        raise DataFormatError(f"{dataset.location_on_system}: {name} lists no classes; the files are incomplete")
    return tuple(int(size) for size in dataset.sensor_size), names


def stratified_holdout(labels: np.ndarray, fraction: float, seed: int = HOLDOUT_SEED) -> tuple[np.ndarray, np.ndarray]:
    """Split ``range(len(labels))`` into sorted ``(kept, held_out)`` indices, class by class.

    A class of ``c >= 2`` recordings gives ``round(fraction * c)`` of them (at least 1, at most
    ``c - 1``) to the held-out part, drawn by a permutation seeded with ``seed``; a class with
    one recording stays whole in the kept part.
    """
    labels = np.asarray(labels)
    rng = np.random.default_rng(np.random.SeedSequence([seed, 0x70]))
    held = [np.empty(0, np.int64)]
    for label in np.unique(labels):
        members = np.flatnonzero(labels == label)
        if len(members) >= 2:
            take = min(max(int(round(fraction * len(members))), 1), len(members) - 1)
            held.append(rng.permutation(members)[:take])
    held_out = np.sort(np.concatenate(held)).astype(np.int64)
    return np.setdiff1d(np.arange(len(labels)), held_out), held_out


class Entry(NamedTuple):
    """One recording of a :class:`TonicSplit`: its index in the tonic data set and its label."""

    index: int
    label: int


class TonicSplit:
    """The recordings of one split of a tonic data set, with the listing interface of
    :class:`~eggroll_snn.data.nmnist.SplitFiles` that :func:`~eggroll_snn.data.cache.frames_of_files` reads.

    ``read_events(i)`` returns events of :data:`~eggroll_snn.data.events.EVENT_DTYPE` (time origin
    and polarity as the module docstring says), checked against ``sensor_size``.
    """

    def __init__(self, name: str, split: str, dataset, entries, split_rule: str, skipped=()):
        self.name, self.split, self.dataset = name, split, dataset
        self.location = Path(dataset.location_on_system)
        self.entries = tuple(entries)
        self.split_rule = split_rule
        self.skipped = list(skipped)
        self.sensor_size = tuple(int(size) for size in dataset.sensor_size)
        self.time_origin = spec(name).time_origin

    def __len__(self) -> int:
        return len(self.entries)

    def subset(self, entries, skipped) -> TonicSplit:
        return TonicSplit(self.name, self.split, self.dataset, entries, self.split_rule, skipped)

    def source(self, index: int) -> str:
        """The recording's file when tonic keeps one per recording, else ``<location> #<index>``."""
        position = self.entries[index].index
        data = getattr(self.dataset, "data", None)
        if isinstance(data, list) and position < len(data) and isinstance(data[position], str):
            return data[position]
        return f"{self.location} {self.split} recording #{position}"

    def read_events(self, index: int) -> np.ndarray:
        """Events of recording ``index`` as :data:`EVENT_DTYPE`.

        Raises:
          DataFormatError: naming the recording, when tonic cannot read it or an event lies
            outside the sensor.
        """
        source = self.source(index)
        try:
            raw, _ = self.dataset[self.entries[index].index]
        except (OSError, KeyError, ValueError, IndexError) as error:
            raise DataFormatError(f"{source}: tonic cannot read this recording ({type(error).__name__}: {error})") from None
        return tonic_to_events(raw, self.sensor_size, self.time_origin, source)

    def fingerprint(self) -> str:
        """SHA-256 of the data set's name, split rule and the listing of every file under its folder."""
        import hashlib

        digest = hashlib.sha256(f"{self.name}\0{self.split}\0{self.split_rule}\0{self.location.resolve()}\0".encode())
        for path in sorted(self.location.rglob("*")):
            if path.is_file():
                stat = path.stat()
                digest.update(f"{path.relative_to(self.location)}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
        return digest.hexdigest()


def tonic_to_events(raw: np.ndarray, sensor_size, time_origin: str, source: str) -> np.ndarray:
    """tonic's structured events (any field order; ``y``/``p`` may be absent) -> :data:`EVENT_DTYPE`.

    Raises:
      DataFormatError: no ``x``/``t`` field, a coordinate or polarity outside ``sensor_size`` (W, H, P),
        or timestamps that are not finite, negative, or not in time order (the rules N-MNIST's
        reader applies: a bad recording, skipped with ``--skip-bad``).
    """
    names = raw.dtype.names or ()
    if "x" not in names or "t" not in names:
        raise DataFormatError(f"{source}: events without x and t fields (fields: {names}); not a tonic event array")
    width, height, polarities = sensor_size
    x = np.asarray(raw["x"], np.int64)
    y = np.asarray(raw["y"], np.int64) if "y" in names else np.zeros_like(x)
    p = np.asarray(raw["p"], np.int64) if "p" in names and polarities > 1 else np.zeros_like(x)
    t = _timestamps(np.asarray(raw["t"]), source)
    for field, values, limit in (("x", x, width), ("y", y, height), ("p", p, polarities)):
        if values.size and (values.min() < 0 or values.max() >= limit):
            bad = int(np.flatnonzero((values < 0) | (values >= limit))[0])
            raise DataFormatError(
                f"{source}: event {bad} has {field} = {int(values[bad])}, outside the {width}x{height}x{polarities} "
                f"sensor (0 <= {field} < {limit}); the recording is corrupt or belongs to another data set"
            )
    if time_origin == "first_event" and t.size:
        t = t - t.min()
    events = np.empty(len(x), EVENT_DTYPE)
    events["x"], events["y"], events["t"], events["p"] = x, y, t, p
    return events


def _timestamps(raw_t: np.ndarray, source: str) -> np.ndarray:
    """``raw_t`` as int64, refusing times that are not finite, negative or out of order."""
    advice = "recording is corrupt; remove it, or pass --skip-bad (data.skip_bad) to leave it out"
    if np.issubdtype(raw_t.dtype, np.floating) and not np.all(np.isfinite(raw_t)):
        bad = int(np.flatnonzero(~np.isfinite(raw_t))[0])
        raise DataFormatError(f"{source}: event {bad} has t = {raw_t[bad]}, not a finite time; the {advice}")
    t = raw_t.astype(np.int64)
    if t.size and t.min() < 0:
        bad = int(np.flatnonzero(t < 0)[0])
        raise DataFormatError(f"{source}: event {bad} has the negative time t = {int(t[bad])}; the {advice}")
    check_time_order(t, source, "", f"The {advice}")
    return t


def list_split(name: str, root: str | os.PathLike, split: str, test_fraction: float | None = None) -> TonicSplit:
    """The recordings of ``split``: the data set's own split, or (``test_fraction`` set) a
    stratified part of its training split (see :func:`stratified_holdout`)."""
    if split not in SPLITS:
        raise ConfigError(f"split: expected one of {', '.join(SPLITS)}, got {split!r}")
    dataset = open_dataset(name, root, split if test_fraction is None else "train")
    labels = spec(name).labels(dataset)
    # tonic lists some folders in the file system's order; file names, where tonic keeps them, fix
    # one order (and so one holdout) on every machine.
    paths = getattr(dataset, "data", None)
    named = isinstance(paths, list) and len(paths) == len(labels) and all(isinstance(path, str) for path in paths)
    order = sorted(range(len(labels)), key=lambda i: paths[i]) if named else range(len(labels))
    entries = [Entry(int(i), int(labels[i])) for i in order]
    if test_fraction is None:
        return TonicSplit(name, split, dataset, entries, "official")
    kept, held_out = stratified_holdout([entry.label for entry in entries], test_fraction)
    chosen = held_out if split == "test" else kept
    rule = f"holdout {test_fraction!r} seed {HOLDOUT_SEED}"
    return TonicSplit(name, split, dataset, [entries[i] for i in chosen], rule)


def load_tonic_split(
    name: str,
    root: str | os.PathLike,
    split: str,
    frame_config: FrameConfig,
    num_classes: int,
    test_fraction: float | None = None,
    cache_dir: str | os.PathLike | None = None,
    progress: bool = False,
    skip_bad: bool = False,
    skipped: list | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Frames and labels of one split of a tonic data set, from the frame cache or built into it.

    Returns:
      ``(frames, labels)``: a read-only memory map ``(N, T, P, H', W')`` uint8 and ``(N,)`` int64.

    Raises:
      DataFormatError: missing files (naming them), a bad recording (unless ``skip_bad``), or a
        label outside ``0..num_classes-1``.
    """
    files = list_split(name, root, split, test_fraction)
    labels = np.array([entry.label for entry in files.entries], np.int64)
    if len(labels) and (labels.min() < 0 or labels.max() >= num_classes):
        raise DataFormatError(
            f"{files.location}: the {split} split has label {int(labels.max())}, outside the {num_classes} classes "
            "recorded for this run; the data set changed since the run was configured, configure it again"
        )
    return frames_of_files(files, frame_config, num_classes, cache_dir, progress, skip_bad, 1, skipped)


def split_description(test_fraction: float | None) -> str:
    """One sentence saying where the test split comes from (written into the run folder)."""
    if test_fraction is None:
        return "the data set's own test split"
    return (
        f"a class-stratified {test_fraction:g} of the data set's training split (seed {HOLDOUT_SEED}, the same for "
        "every run); the rest is the training split"
    )


SPLIT_RECORD = "data_splits.json"
"""The run-folder file that states a tonic run's splits (written by the trainer from :func:`split_record`)."""


def split_record(data, split_labels: dict) -> dict:
    """What ``data_splits.json`` holds: the data set, where each split came from, counts per class.

    Args:
      data: the run's data options (``tonic_dataset``, ``root``, ``test_fraction``, ``class_names``).
      split_labels: ``{"train": labels, "validation": labels, "test": labels}``, ``(N,)`` integer arrays.
    """
    names = list(data.class_names)
    return {
        "data_set": f"tonic:{data.tonic_dataset}:{data.root}",
        "test_split": split_description(data.test_fraction),
        "validation_split": "a class-stratified data.validation_fraction of the training split, seeded by train.seed",
        "class_names": names,
        "counts": {split: int(len(labels)) for split, labels in split_labels.items()},
        "per_class": {
            split: {names[c]: int(n) for c, n in enumerate(np.bincount(np.asarray(labels, np.int64), minlength=len(names)))}
            for split, labels in split_labels.items()
        },
    }


__all__ = [
    "SPLIT_RECORD",
    "split_record",
    "TONIC_DATASETS",
    "TonicSpec",
    "TonicSplit",
    "spec",
    "parse_source",
    "open_dataset",
    "describe",
    "stratified_holdout",
    "tonic_to_events",
    "list_split",
    "load_tonic_split",
    "split_description",
]
