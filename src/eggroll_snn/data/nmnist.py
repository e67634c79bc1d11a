"""The N-MNIST dataset over a folder or the official zip archives, read in place.

N-MNIST (Orchard et al., "Converting Static Image Datasets to Spiking Neuromorphic Datasets Using
Saccades", Frontiers in Neuroscience 2015) holds one ``.bin`` event file per MNIST digit, recorded
by a 34 x 34 event camera during three saccades of about 100 ms each. A root holds the split as
a folder tree or an official zip (the accepted layouts and the limits on zips are
:mod:`eggroll_snn.data.layout`'s). The class label is the digit folder's name. Recordings are
listed in sorted order (digit folder, then file name), so indices are the same on every machine.

:func:`scan_split` (:mod:`eggroll_snn.data.layout`) lists a split cheaply (names and sizes, no
decoding) and catches the structural problems; :class:`NMNIST` is the indexable dataset on top of it.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from eggroll_snn.data.layout import (  # the layout's rules, re-exported as N-MNIST's facts
    MAX_RECORDING_BYTES,
    NUM_CLASSES,
    SPLIT_FOLDERS,
    Recording,
    SplitFiles,
    locate_split,
    scan_split,
)
from eggroll_snn.errors import DataFormatError

SENSOR_SIZE = (34, 34, 2)
"""Sensor size as ``(width, height, polarities)``, tonic's convention."""

FIRST_SACCADE_US = 100_000
"""Events with ``t < FIRST_SACCADE_US`` belong to the first saccade (tonic's ``first_saccade_only`` rule)."""

class NMNIST:
    """N-MNIST recordings of one split, indexable as ``(events, label)``.

    Args:
      root: folder holding the split (see the module docstring for the accepted layouts).
      split: ``"train"`` or ``"test"``.
      first_saccade_only: keep only events with ``t < 100_000`` us (the first saccade), as tonic.
      skip_bad: leave out bad recordings instead of raising, and list them in ``.skipped`` as
        ``(source, reason)``. To find every bad recording this decodes each one once here.

    Attributes:
      labels: ``(N,)`` int64 digit of each recording.
      sources: ``N`` strings naming each recording's file (``<zip>/<member>`` inside a zip).
      skipped: ``(source, reason)`` of every recording left out (empty unless ``skip_bad``).
      sensor_size: ``(34, 34, 2)`` as ``(width, height, polarities)``.

    Raises:
      DataFormatError: naming the file, for any bad input (unless ``skip_bad``).
    """

    sensor_size = SENSOR_SIZE

    def __init__(
        self,
        root: str | os.PathLike,
        split: str = "train",
        first_saccade_only: bool = False,
        skip_bad: bool = False,
    ):
        self.root = Path(root)
        self.split = split
        self.first_saccade_only = bool(first_saccade_only)
        files = scan_split(root, split, skip_bad=skip_bad)
        if skip_bad:
            files = _drop_undecodable(files)
        self.files = files
        self.labels = np.fromiter((entry.label for entry in files.entries), dtype=np.int64, count=len(files))
        self.sources = [files.source(index) for index in range(len(files))]
        self.skipped = list(files.skipped)

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, index: int) -> tuple[np.ndarray, int]:
        """Return ``(events, label)``: an ``(n,)`` structured array (fields x, y, t, p) and the digit."""
        index = range(len(self))[index]  # normalises negative indices, raises IndexError
        events = self.files.read_events(index)
        if self.first_saccade_only:
            events = events[events["t"] < FIRST_SACCADE_US]
        return events, int(self.labels[index])

    def per_class_counts(self) -> dict[int, int]:
        """Number of recordings of each digit 0..9 (digits without recordings count 0)."""
        counts = np.bincount(self.labels, minlength=NUM_CLASSES)
        return {digit: int(counts[digit]) for digit in range(NUM_CLASSES)}

    def close(self) -> None:
        """Release an open zip handle."""
        self.files.close()

    def __repr__(self) -> str:
        return f"NMNIST(root={str(self.root)!r}, split={self.split!r}, recordings={len(self)})"


def _drop_undecodable(files: SplitFiles) -> SplitFiles:
    """A copy of ``files`` without the recordings that fail to decode, each recorded in ``skipped``."""
    keep, skipped = [], list(files.skipped)
    for index, entry in enumerate(files.entries):
        try:
            files.read_events(index)
        except DataFormatError as error:
            source = files.source(index)
            skipped.append((source, str(error).removeprefix(f"{source}: ")))
        else:
            keep.append(entry)
    return files.subset(keep, skipped)


__all__ = [
    "SENSOR_SIZE",
    "FIRST_SACCADE_US",
    "SPLIT_FOLDERS",
    "NUM_CLASSES",
    "MAX_RECORDING_BYTES",
    "Recording",
    "SplitFiles",
    "locate_split",
    "scan_split",
    "NMNIST",
]
