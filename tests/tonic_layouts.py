"""Small data sets written in the on-disk layouts tonic 1.7.0 reads (never downloaded).

Each writer puts a few recordings per class under ``<root>/<Name>/`` exactly where tonic's class
looks (including the downloaded archive that tonic's own check wants present; an empty file
stands in for it) and returns the events it wrote, as tonic will return them, for reference
binnings. Every class fires in its own region of the sensor so a network can tell them apart.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

GESTURE_USERS = 10  # tonic reads DVSGesture only with at least 100 .npy files: 10 users x 11 classes
GESTURE_CLASSES = 11
POKER_CLASSES = ("cl", "he", "di", "sp")
SHD_CLASSES = ("zero", "one", "two")


def _class_events(rng, label: int, count: int, width: int, height: int, duration_us: int, classes: int):
    """``count`` events in the vertical band of the sensor that belongs to ``label``, times sorted."""
    band = max(width // classes, 1)
    x = rng.integers(label * band, min((label + 1) * band, width), count)
    y = rng.integers(0, height, count)
    t = np.sort(rng.integers(0, duration_us, count))
    p = rng.integers(0, 2, count)
    return x, y, t, p


def write_dvsgesture(root: Path, seed: int = 0, events_per_recording: int = 60) -> dict:
    """``<root>/DVSGesture/ibmGesture{Train,Test}/userNN_light/<class>.npy`` (columns x, y, p, t in ms).

    Returns ``{"train": [(events x, y, t (us), p), label], ...], "test": [...]}`` in tonic's order
    (users sorted, files in directory order: tonic does not sort them, so tests compare by file).
    """
    rng = np.random.default_rng(seed)
    written = {}
    for split, folder in (("train", "ibmGestureTrain"), ("test", "ibmGestureTest")):
        base = root / "DVSGesture"
        (base / folder).mkdir(parents=True, exist_ok=True)
        (base / f"{folder}.tar.gz").write_bytes(b"")
        written[split] = {}
        for user in range(1, GESTURE_USERS + 1):
            user_dir = base / folder / f"user{user:02d}_fluorescent"
            user_dir.mkdir(exist_ok=True)
            for label in range(GESTURE_CLASSES):
                x, y, t, p = _class_events(rng, label, events_per_recording, 128, 128, 2000, GESTURE_CLASSES)
                t_ms = t + 1000  # recordings cut out of longer streams do not start at 0
                np.save(user_dir / f"{label}.npy", np.stack([x, y, p, t_ms], axis=1).astype(np.int64))
                written[split][str(user_dir / f"{label}.npy")] = ((x, y, t_ms * 1000, p), label)
    return written


def write_pokerdvs(root: Path, seed: int = 0, per_class: int = 6, events_per_recording: int = 50) -> dict:
    """``<root>/POKERDVS/pips_{train,test}/<class>/<n>.npy`` (columns t, x, y, p), at least 20 per split."""
    rng = np.random.default_rng(seed)
    written = {}
    for split, folder in (("train", "pips_train"), ("test", "pips_test")):
        base = root / "POKERDVS"
        base.mkdir(parents=True, exist_ok=True)
        (base / f"{folder}.tar.gz").write_bytes(b"")
        written[split] = {}
        for label, name in enumerate(POKER_CLASSES):
            class_dir = base / folder / name
            class_dir.mkdir(parents=True, exist_ok=True)
            for number in range(per_class):
                x, y, t, p = _class_events(rng, label, events_per_recording, 35, 35, 20_000, len(POKER_CLASSES))
                t = t + 500
                path = class_dir / f"{number:03d}.npy"
                np.save(path, np.stack([t, x, y, p], axis=1).astype(np.int64))
                written[split][str(path)] = ((x, y, t, p), label)
    return written


def write_shd(root: Path, seed: int = 0, per_class: int = 8, events_per_recording: int = 80) -> dict:
    """``<root>/SHD/shd_{train,test}.h5`` (spikes/times in s, spikes/units, labels, extra/keys, extra/speaker).

    Returns ``{"train": [((x, t (us), p), label), ...], "test": [...]}`` in file order.
    """
    import h5py

    rng = np.random.default_rng(seed)
    written = {}
    base = root / "SHD"
    base.mkdir(parents=True, exist_ok=True)
    for split in ("train", "test"):
        (base / f"shd_{split}.h5.zip").write_bytes(b"")
        recordings = []
        for label in range(len(SHD_CLASSES)):
            for _ in range(per_class):
                units, _, t_us, _ = _class_events(rng, label, events_per_recording, 700, 1, 900_000, len(SHD_CLASSES))
                recordings.append((units, t_us, label))
        order = rng.permutation(len(recordings))
        recordings = [recordings[i] for i in order]
        with h5py.File(base / f"shd_{split}.h5", "w") as file:
            times = file.create_dataset("spikes/times", (len(recordings),), dtype=h5py.vlen_dtype(np.float64))
            units = file.create_dataset("spikes/units", (len(recordings),), dtype=h5py.vlen_dtype(np.uint16))
            for index, (unit, t_us, _) in enumerate(recordings):
                times[index] = t_us / 1e6
                units[index] = unit
            file["labels"] = np.array([label for _, _, label in recordings], np.uint8)
            file["extra/keys"] = np.array([name.encode() for name in SHD_CLASSES])
            file["extra/speaker"] = np.zeros(len(recordings), np.uint8)
        written[split] = [((unit, t_us), label) for unit, t_us, label in recordings]
    return written


WRITERS = {"DVSGesture": write_dvsgesture, "POKERDVS": write_pokerdvs, "SHD": write_shd}
"""One writer per data set of :data:`eggroll_snn.data.tonic_source.TONIC_DATASETS`."""
