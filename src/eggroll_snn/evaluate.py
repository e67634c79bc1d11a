"""Accuracy of a trained network: overall, per class, and the confusion matrix.

:func:`evaluate_run` reloads a run folder's ``model.npz`` (the best-validation parameters) with
the network described by its ``model.json`` and scores it on a split of a data root. The
building blocks (:func:`predict_logits`, :func:`accuracy_report`, :func:`load_model`) are also
what the trainer uses for its validation and test figures, so both report the same numbers.
"""

from __future__ import annotations

import dataclasses
import functools
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from eggroll_snn import checkpoint, snn
from eggroll_snn.config import NUM_CLASSES, TrainConfig, from_dict
from eggroll_snn.errors import CheckpointError, ConfigError
from eggroll_snn.fixed_point import make_spec  # fixed-point hook (issue 14)

MODEL_STEM = "model"


@functools.partial(jax.jit, static_argnames="config")
def _batch_logits(params: Any, frames: jax.Array, config: snn.NetworkConfig) -> jax.Array:
    """Logits ``(B, C)`` of unperturbed ``params`` on frames ``(B, T, P, H, W)`` (any dtype)."""
    inputs = frames.astype(jnp.float32).reshape(frames.shape[0], frames.shape[1], -1)
    return snn.forward(params, inputs, config)


def predict_logits(params: Any, frames: Any, config: snn.NetworkConfig, batch_size: int = 500) -> np.ndarray:
    """Logits of every recording, evaluated in fixed-size batches (one compilation).

    Args:
      params: network parameters (see :func:`eggroll_snn.snn.init_params`).
      frames: ``(N, T, P, H, W)`` frames, numpy (memory maps welcome) or JAX, any numeric dtype.
      config: the network description.
      batch_size: recordings per compiled call; the last batch is zero-padded to this size.

    Returns:
      ``(N, num_classes)`` float32 logits.
    """
    count = int(frames.shape[0])
    batch_size = max(1, min(batch_size, count))
    outputs = []
    for start in range(0, count, batch_size):
        batch = frames[start : start + batch_size]
        size = batch.shape[0]
        if size < batch_size:  # pad so every call has the compiled shape
            padding = jnp.zeros((batch_size - size, *batch.shape[1:]), batch.dtype)
            batch = jnp.concatenate([jnp.asarray(batch), padding])
        outputs.append(np.asarray(_batch_logits(params, jnp.asarray(batch), config))[:size])
    if not outputs:
        return np.zeros((0, config.num_classes), np.float32)
    return np.concatenate(outputs)


def accuracy_report(predictions: np.ndarray, labels: np.ndarray, num_classes: int = NUM_CLASSES) -> dict:
    """Accuracy figures of predicted against true class indices.

    Args:
      predictions, labels: ``(N,)`` integer classes in ``0..num_classes-1``.

    Returns:
      dict with ``accuracy`` (fraction correct), ``count`` (N), ``correct``, ``per_class``
      (``{"0": accuracy of the recordings whose label is 0, ...}``, None for an absent class),
      ``per_class_count`` and ``confusion`` (``confusion[true][predicted]`` counts, a list of lists).
    """
    predictions = np.asarray(predictions, np.int64)
    labels = np.asarray(labels, np.int64)
    confusion = np.zeros((num_classes, num_classes), np.int64)
    np.add.at(confusion, (labels, predictions), 1)
    per_class_count = confusion.sum(axis=1)
    correct = int(np.trace(confusion))
    return {
        "accuracy": correct / len(labels) if len(labels) else float("nan"),
        "count": int(len(labels)),
        "correct": correct,
        "per_class": {
            str(c): (float(confusion[c, c] / per_class_count[c]) if per_class_count[c] else None)
            for c in range(num_classes)
        },
        "per_class_count": {str(c): int(per_class_count[c]) for c in range(num_classes)},
        "confusion": confusion.tolist(),
    }


def mean_cross_entropy(logits: np.ndarray, labels: np.ndarray) -> float:
    """Mean of ``-log softmax(logits)[label]`` over the rows of ``logits`` (N, C)."""
    logits = np.asarray(logits, np.float64)
    shifted = logits - logits.max(axis=1, keepdims=True)
    log_probs = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    return float(-log_probs[np.arange(len(labels)), labels].mean())


def network_config(config: TrainConfig) -> snn.NetworkConfig:
    """The network a training config describes (input size from its frame options)."""
    network = config.network.network_config(config.data.input_shape)
    if config.network.neuron == "fixed_point":  # fixed-point hook (issue 14): the integer arithmetic
        network = dataclasses.replace(network, fixed_point=make_spec(config.fixed_point, config.network))
    return network


def parameter_shapes(config: TrainConfig) -> Any:
    """The parameter pytree of ``config``'s network as ``jax.ShapeDtypeStruct`` leaves (no compute)."""
    return jax.eval_shape(lambda key: snn.init_params(key, network_config(config)), jax.random.key(0))


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


def load_frames(
    config: TrainConfig, split: str, data_root: str | Path | None = None, progress: bool = False,
    skipped: list | None = None,
):
    """Frames and labels of ``split`` as ``config.data`` describes them.

    ``data_root`` overrides ``config.data.root``; when both are unset the built-in simulated
    N-MNIST is used (built on first use). With ``config.data.skip_bad`` bad recordings are left
    out; each one is appended to ``skipped`` (when given) as ``{"split", "source", "reason"}``.

    Returns:
      ``(frames (N, T, P, H', W') uint8 memory map, labels (N,) int64)``.
    """
    from eggroll_snn.data.cache import load_split_frames

    root = data_root if data_root is not None else config.data.root
    if root is None:
        from eggroll_snn.data.simulate import default_data_root

        root = default_data_root(cache_dir=config.data.cache_dir)
    return load_split_frames(
        root, split, config.data.frame_config(), cache_dir=config.data.cache_dir, progress=progress,
        skip_bad=config.data.skip_bad, skipped=skipped,
    )


def evaluate_run(
    run_dir: str | Path, data_root: str | Path | None = None, split: str = "test", skip_bad: bool | None = None
) -> dict:
    """Score a run folder's saved model on ``split`` of ``data_root`` (default: the run's data).

    ``skip_bad`` (default: the run's ``data.skip_bad``) leaves bad recordings out instead of failing.

    Returns:
      :func:`accuracy_report`'s dict plus ``loss`` (mean cross-entropy), ``split``,
      ``data_root`` and ``model_generation`` (the generation the model was selected at).
    """
    params, config, metadata = load_model(run_dir)
    if skip_bad is not None:
        config = dataclasses.replace(config, data=dataclasses.replace(config.data, skip_bad=bool(skip_bad)))
    frames, labels = load_frames(config, split, data_root)
    logits = predict_logits(params, frames, network_config(config), config.train.eval_batch_size)
    report = accuracy_report(logits.argmax(axis=1), labels)
    report["loss"] = mean_cross_entropy(logits, labels) if len(labels) else float("nan")
    report["split"] = split
    report["data_root"] = str(data_root if data_root is not None else (config.data.root or "built-in simulated N-MNIST"))
    report["model_generation"] = metadata.get("generation")
    return report


__all__ = [
    "MODEL_STEM",
    "predict_logits",
    "accuracy_report",
    "mean_cross_entropy",
    "network_config",
    "parameter_shapes",
    "load_model",
    "load_frames",
    "evaluate_run",
]
