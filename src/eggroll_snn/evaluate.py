"""Accuracy of a run folder's model on a split: overall, per class, and the confusion matrix.

:func:`evaluate_run` reloads a run folder's ``model.npz`` (the best-validation parameters) with
the network described by its ``model.json`` and scores it on a split of a data root, with the
same functions the trainer's own figures come from (:mod:`eggroll_snn.scoring`).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from eggroll_snn import run_folder
from eggroll_snn.data.source import load_frames
from eggroll_snn.scoring import accuracy_report, mean_cross_entropy, predict_logits


def evaluate_run(
    run_dir: str | Path, data_root: str | Path | None = None, split: str = "test", skip_bad: bool | None = None
) -> dict:
    """Score a run folder's saved model on ``split`` of ``data_root`` (default: the run's data).

    ``skip_bad`` (default: the run's ``data.skip_bad``) leaves bad recordings out instead of failing.

    Returns:
      :func:`accuracy_report`'s dict plus ``loss`` (mean cross-entropy), ``split``,
      ``data_root`` and ``model_generation`` (the generation the model was selected at).
    """
    params, config, metadata = run_folder.load_model(run_dir)
    if skip_bad is not None:
        config = dataclasses.replace(config, data=dataclasses.replace(config.data, skip_bad=bool(skip_bad)))
    frames, labels = load_frames(config.data, split, data_root)
    logits = predict_logits(params, frames, config.network_config(), config.train.eval_batch_size)
    report = accuracy_report(logits.argmax(axis=1), labels, config.data.num_classes)
    report["class_names"] = list(config.data.class_names)  # empty for N-MNIST (the digits)
    report["loss"] = mean_cross_entropy(logits, labels) if len(labels) else float("nan")
    report["split"] = split
    report["data_root"] = str(data_root if data_root is not None else (config.data.root or "built-in simulated N-MNIST"))
    report["model_generation"] = metadata.get("generation")
    return report


__all__ = ["evaluate_run"]
