"""The simplest honest baseline: multinomial logistic regression on spike-count features.

Every accuracy the spiking network reaches is worth only what it adds over this read-out. The
features of a recording are its frames ``(T, P, H, W)`` summed into ``time_groups`` consecutive
groups of bins and compressed as ``log(1 + count)``: ``time_groups * P * H * W`` numbers, the
same pixels, polarities and window the network sees. The model is

    p(class | x) = softmax(x W^T + b),    minimise  mean cross-entropy + l2 * ||W||^2 / 2

fitted by full-batch L-BFGS (optax) from zero. The L2 strength is chosen on the validation split
(the same stratified split the trainer holds out), then the test split is read once.
"""

from __future__ import annotations

from typing import Sequence

import jax
import jax.numpy as jnp
import numpy as np
import optax

from eggroll_snn.data.source import load_frames
from eggroll_snn.data.splits import held_out
from eggroll_snn.errors import ConfigError

#: L2 strengths tried on the validation split, strongest first.
DEFAULT_L2_GRID = (1e-1, 3e-2, 1e-2, 3e-3, 1e-3, 3e-4, 1e-4)


def count_features(frames: np.ndarray, time_groups: int = 3) -> np.ndarray:
    """``log(1 + counts)`` of ``frames`` (N, T, P, H, W) summed over ``time_groups`` groups of bins.

    The T bins are split into ``time_groups`` consecutive groups as evenly as possible
    (``numpy.array_split``), so T = 8 and 3 groups sums bins 0-2, 3-5 and 6-7.

    Returns:
      ``(N, time_groups * P * H * W)`` float32.
    """
    frames = np.asarray(frames)
    if frames.ndim != 5:
        raise ConfigError(f"frames have shape {frames.shape}; expected (recordings, T, P, H, W)")
    if not 1 <= time_groups <= frames.shape[1]:
        raise ConfigError(f"time_groups={time_groups!r} must lie in 1..{frames.shape[1]} (the frames' time bins)")
    groups = np.array_split(np.arange(frames.shape[1]), time_groups)
    summed = np.stack([frames[:, group].astype(np.float32).sum(axis=1) for group in groups], axis=1)
    return np.log1p(summed).reshape(len(frames), -1)


def fit_logistic(
    features: np.ndarray, labels: np.ndarray, num_classes: int, l2: float, iterations: int = 300
) -> tuple[np.ndarray, np.ndarray]:
    """Weights ``(C, F)`` and biases ``(C,)`` minimising cross-entropy + ``l2 * ||W||^2 / 2``."""
    x = jnp.asarray(features, jnp.float32)
    y = jnp.asarray(labels, jnp.int32)

    def loss(params):
        logits = x @ params["weight"].T + params["bias"]
        cross_entropy = optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()
        return cross_entropy + 0.5 * l2 * jnp.sum(params["weight"] ** 2)

    params = {"weight": jnp.zeros((num_classes, x.shape[1]), jnp.float32), "bias": jnp.zeros((num_classes,), jnp.float32)}
    solver = optax.lbfgs()
    value_and_grad = optax.value_and_grad_from_state(loss)

    @jax.jit
    def run(params):
        def step(carry, _):
            params, state = carry
            value, grad = value_and_grad(params, state=state)
            updates, state = solver.update(grad, state, params, value=value, grad=grad, value_fn=loss)
            return (optax.apply_updates(params, updates), state), None

        (params, _), _ = jax.lax.scan(step, (params, solver.init(params)), None, length=iterations)
        return params

    fitted = run(params)
    return np.asarray(fitted["weight"]), np.asarray(fitted["bias"])


def predict(weight: np.ndarray, bias: np.ndarray, features: np.ndarray) -> np.ndarray:
    """Predicted classes ``(N,)`` of the fitted model."""
    return np.argmax(np.asarray(features, np.float32) @ weight.T + bias, axis=1)


def linear_baseline(
    train: tuple[np.ndarray, np.ndarray],
    validation: tuple[np.ndarray, np.ndarray],
    test: tuple[np.ndarray, np.ndarray] | None,
    num_classes: int,
    time_groups: int = 3,
    l2_grid: Sequence[float] = DEFAULT_L2_GRID,
) -> dict:
    """Choose the L2 strength on ``validation``, then score that one model on ``test``.

    Args:
      train, validation, test: ``(frames (N, T, P, H, W), labels (N,))`` pairs; ``test`` may be
        ``None`` (only the validation figures are returned).
      num_classes: classes of the task.
      time_groups: see :func:`count_features`.
      l2_grid: strengths tried; ties go to the stronger (earlier) one.

    Returns:
      dict with ``l2`` (chosen), ``validation_accuracy`` (of the chosen one), ``validation_by_l2``
      (``{str(l2): accuracy}``), ``test_accuracy`` (None without ``test``), ``test_count``,
      ``time_groups`` and ``features``.
    """
    if not l2_grid:
        raise ConfigError("l2_grid is empty; give at least one L2 strength")
    train_x, validation_x = count_features(train[0], time_groups), count_features(validation[0], time_groups)
    by_l2, fitted = {}, {}
    for l2 in l2_grid:
        fitted[l2] = fit_logistic(train_x, train[1], num_classes, l2)
        by_l2[l2] = float(np.mean(predict(*fitted[l2], validation_x) == np.asarray(validation[1])))
    best = max(l2_grid, key=lambda l2: by_l2[l2])  # max keeps the first (strongest) of equal ones
    result = {
        "method": "linear",
        "l2": best,
        "validation_accuracy": by_l2[best],
        "validation_by_l2": {repr(l2): accuracy for l2, accuracy in by_l2.items()},
        "test_accuracy": None,
        "test_count": 0,
        "time_groups": time_groups,
        "features": int(train_x.shape[1]),
    }
    if test is not None:
        predictions = predict(*fitted[best], count_features(test[0], time_groups))
        result["test_accuracy"] = float(np.mean(predictions == np.asarray(test[1])))
        result["test_count"] = int(len(test[1]))
    return result


def linear_baseline_for_config(config, data_root=None, time_groups: int = 3, progress: bool = False) -> dict:
    """:func:`linear_baseline` on the splits a training run of ``config`` would use.

    The frames are ``config.data``'s, the validation recordings the trainer's stratified split
    of the training split (same fraction and seed), the test split read once at the end.
    """
    return linear_baselines_for_seeds(config, [config.train.seed], data_root, time_groups, progress)[0]


def linear_baselines_for_seeds(
    config, seeds: Sequence[int], data_root=None, time_groups: int = 3, progress: bool = False
) -> list[dict]:
    """:func:`linear_baseline_for_config` for each of ``seeds`` (the seed picks the validation
    split), the frames of both splits read once for all of them."""
    frames, labels = load_frames(config.data, "train", data_root, progress=progress)
    test = load_frames(config.data, "test", data_root, progress=progress)
    results = []
    for seed in seeds:
        train_index, validation_index = held_out(labels, config.data, seed)
        result = linear_baseline(
            (frames[train_index], labels[train_index]), (frames[validation_index], labels[validation_index]),
            test, config.data.num_classes, time_groups,
        )
        result["seed"] = int(seed)
        result["train_count"], result["validation_count"] = int(len(train_index)), int(len(validation_index))
        results.append(result)
    return results


__all__ = ["DEFAULT_L2_GRID", "linear_baseline_for_config", "linear_baselines_for_seeds", "count_features", "fit_logistic", "predict", "linear_baseline"]
