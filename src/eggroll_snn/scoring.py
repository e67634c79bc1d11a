"""Scores of a network on a set of recordings: logits in batches, accuracy, cross-entropy.

The trainer's validation and test figures and ``eggroll-snn evaluate`` both come from these
functions, so they report the same numbers.
"""

from __future__ import annotations

import functools
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from eggroll_snn.network import NetworkConfig, forward
from eggroll_snn.data.nmnist import NUM_CLASSES
from eggroll_snn.population import member_losses


@functools.partial(jax.jit, static_argnames="config")
def _batch_logits(params: Any, frames: jax.Array, config: NetworkConfig) -> jax.Array:
    """Logits ``(B, C)`` of unperturbed ``params`` on frames ``(B, T, P, H, W)`` (any dtype)."""
    inputs = frames.astype(jnp.float32).reshape(frames.shape[0], frames.shape[1], -1)
    return forward(params, inputs, config)


def predict_logits(params: Any, frames: Any, config: NetworkConfig, batch_size: int = 500) -> np.ndarray:
    """Logits of every recording, evaluated in fixed-size batches (one compilation).

    Args:
      params: network parameters (see :func:`eggroll_snn.network.init_params`).
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
    """Mean of ``-log softmax(logits)[label]`` over the rows of ``logits`` (N, C).

    The same loss the population's fitness is computed from (:func:`eggroll_snn.population.member_losses`).
    """
    losses, _ = member_losses(jnp.asarray(logits, jnp.float32)[None], jnp.asarray(labels, jnp.int32))
    return float(losses[0])


__all__ = ["predict_logits", "accuracy_report", "mean_cross_entropy"]
