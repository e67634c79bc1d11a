"""Summary statistics of an N-MNIST root: recordings per split and class, events per recording.

This is what ``eggroll-snn data info`` prints. Every recording is decoded once, so the summary
also checks the whole data set (a bad file raises :class:`~eggroll_snn.errors.DataFormatError`
naming it, unless ``skip_bad``).
"""

from __future__ import annotations

import os

import numpy as np

from eggroll_snn.data.nmnist import NMNIST, SPLIT_FOLDERS


def split_statistics(dataset: NMNIST) -> dict:
    """Statistics of one split.

    Returns:
      ``{"count": N, "per_class": {"0": n0, ..., "9": n9}, "events": {"total", "mean", "min", "max"},
      "on_fraction": ON events / all events, "duration_us": {"mean", "min", "max"}, "skipped": [...]}``;
      a recording's duration is the time of its last event (recordings start at t = 0), and
      ``skipped`` lists ``{"source", "reason"}`` of bad recordings left out with ``skip_bad``.
    """
    num_events = np.empty(len(dataset), dtype=np.int64)
    last_times = np.empty(len(dataset), dtype=np.int64)
    num_on = 0
    for index in range(len(dataset)):
        events, _ = dataset[index]
        num_events[index] = len(events)
        last_times[index] = events["t"][-1]
        num_on += int(events["p"].sum())
    total = int(num_events.sum())
    return {
        "count": len(dataset),
        "per_class": {str(digit): count for digit, count in dataset.per_class_counts().items()},
        "events": {
            "total": total,
            "mean": float(num_events.mean()),
            "min": int(num_events.min()),
            "max": int(num_events.max()),
        },
        "on_fraction": num_on / total,
        "duration_us": {
            "mean": float(last_times.mean()),
            "min": int(last_times.min()),
            "max": int(last_times.max()),
        },
        "skipped": [{"source": source, "reason": reason} for source, reason in dataset.skipped],
    }


def data_statistics(root: str | os.PathLike, splits=tuple(SPLIT_FOLDERS), skip_bad: bool = False) -> dict:
    """``{"root": str, "splits": {split: split_statistics(...)}}`` for each of ``splits`` under ``root``.

    Raises:
      DataFormatError: a split is missing or a recording is bad (unless ``skip_bad``), naming the file.
    """
    summary = {"root": str(root), "splits": {}}
    for split in splits:
        dataset = NMNIST(root, split, skip_bad=skip_bad)
        try:
            summary["splits"][split] = split_statistics(dataset)
        finally:
            dataset.close()
    return summary
