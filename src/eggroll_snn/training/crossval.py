"""Choosing options honestly on a small data set: k-fold cross-validation over the training split.

With a few hundred recordings one validation recording is a whole point of accuracy, so a single
held-out part cannot rank options that differ by a point or two. :func:`cross_validate` trains a
config once per fold of a seeded, class-stratified k-fold partition of the training split (each
fold held out once, ``data.validation_folds`` / ``data.validation_fold``) and reports each fold's
best validation accuracy, their mean and spread. The test split is never read
(``train.evaluate_test = false``): it stays for the one final score of the option chosen.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from eggroll_snn import run_folder
from eggroll_snn.config import TrainConfig, apply_overrides
from eggroll_snn.training.loop import train

RESULT_FILE = "crossval.json"


def cross_validate(
    config: TrainConfig, folds: int, out_dir: str | Path, progress: bool = False, event_transform=None
) -> dict:
    """Train ``config`` on each of ``folds`` folds into ``out_dir/fold-<i>``; write and return the summary.

    ``event_transform`` is passed to every fold's :func:`~eggroll_snn.training.train` (event-level
    augmentation of its training part, :mod:`eggroll_snn.data.event_augment`).

    A fold whose run folder already holds a finished run is read, not trained again (a stopped
    cross-validation continues where it stopped).

    Returns:
      ``{"folds", "validation_accuracies", "mean", "std", "validation_recordings", "one_recording_points",
      "runs"}``: accuracies as fractions; ``one_recording_points`` is what one validation recording
      is worth, in points of accuracy.
    """
    out_dir = Path(out_dir)
    accuracies, counts, runs = [], [], []
    for fold in range(folds):
        fold_config = apply_overrides(
            config, {"data.validation_folds": folds, "data.validation_fold": fold, "train.evaluate_test": False}
        )
        run_dir = out_dir / f"fold-{fold}"
        summary_path = run_dir / run_folder.SUMMARY_FILE
        if not summary_path.is_file():
            train(fold_config, run_dir, progress=progress, event_transform=event_transform)
        summary = json.loads(summary_path.read_text())
        accuracies.append(summary["best_validation_accuracy"])
        counts.append(_validation_count(run_dir))
        runs.append(str(run_dir))
    result = {
        "folds": folds,
        "validation_accuracies": accuracies,
        "mean": float(np.mean(accuracies)),
        "std": float(np.std(accuracies, ddof=1)) if folds > 1 else 0.0,
        "validation_recordings": counts,
        "one_recording_points": 100.0 / float(np.mean(counts)),
        "runs": runs,
    }
    out_dir.mkdir(parents=True, exist_ok=True)
    run_folder.write_json(out_dir / RESULT_FILE, result)
    return result


def _validation_count(run_dir: Path) -> int:
    """Recordings of the fold a run held out (from its config: the training split's labels)."""
    from eggroll_snn.data.source import load_frames
    from eggroll_snn.data.splits import held_out

    config = run_folder.config_module.load(run_dir / run_folder.CONFIG_FILE)
    _, labels = load_frames(config.data, "train")
    return int(len(held_out(labels, config.data, config.train.seed)[1]))


__all__ = ["cross_validate", "RESULT_FILE"]
