"""The seeded, class-stratified validation part held out of a training split.

The trainer, the linear baselines and ``compare`` all hold out the same recordings through
:func:`validation_split`. (The simulated data set's own train/test split is a different, older
rule: :func:`eggroll_snn.data.simulate.stratified_split`.)
"""

from __future__ import annotations

import numpy as np

from eggroll_snn.errors import ConfigError


def validation_split(labels: np.ndarray, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Seeded, class-stratified split of ``range(len(labels))`` into (train, validation) indices.

    Each class with ``c >= 2`` recordings gives ``round(fraction * c)`` of them (at least 1, at
    most ``c - 1``) to validation, chosen by a permutation seeded with ``seed``. Both index arrays
    are sorted.

    Raises:
      ConfigError: the validation part would be empty.
    """
    labels = np.asarray(labels)
    rng = np.random.default_rng(np.random.SeedSequence([seed, 0x5EED]))
    validation = []
    for label in np.unique(labels):
        members = np.flatnonzero(labels == label)
        if len(members) < 2:
            continue
        count = min(max(int(round(fraction * len(members))), 1), len(members) - 1)
        validation.append(rng.permutation(members)[:count])
    if not validation:
        raise ConfigError(
            f"option data.validation_fraction = {fraction}: no class of the {len(labels)} training "
            "recordings has 2 or more recordings, so no validation split can be held out"
        )
    validation = np.sort(np.concatenate(validation))
    train = np.setdiff1d(np.arange(len(labels)), validation)
    return train, validation


def fold_split(labels: np.ndarray, folds: int, fold: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Fold ``fold`` of a seeded, class-stratified ``folds``-fold partition of ``range(len(labels))``:
    ``(train, validation)`` indices, sorted.

    Each class's recordings are permuted (seeded with ``seed``) and dealt round-robin to the folds,
    so every fold holds ``c // folds`` or one more of a class of ``c``; the folds are disjoint and
    together cover every recording.

    Raises:
      ConfigError: ``fold`` is not in ``0..folds-1``, or the validation fold would be empty.
    """
    if not 0 <= fold < folds:
        raise ConfigError(f"option data.validation_fold = {fold} is out of range: 0..{folds - 1} for data.validation_folds = {folds}")
    labels = np.asarray(labels)
    rng = np.random.default_rng(np.random.SeedSequence([seed, 0xF01D]))
    validation = []
    for label in np.unique(labels):
        members = rng.permutation(np.flatnonzero(labels == label))
        validation.append(members[fold::folds])
    validation = np.sort(np.concatenate(validation))
    if len(validation) == 0:
        raise ConfigError(f"option data.validation_folds = {folds}: fold {fold} of the {len(labels)} recordings is empty")
    return np.setdiff1d(np.arange(len(labels)), validation), validation


def held_out(labels: np.ndarray, data, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``(train, validation)`` indices of a training split as a ``[data]`` section asks: the fold
    ``data.validation_fold`` of ``data.validation_folds`` folds, or else ``data.validation_fraction``."""
    if data.validation_folds:
        return fold_split(labels, data.validation_folds, data.validation_fold, seed)
    return validation_split(labels, data.validation_fraction, seed)


__all__ = ["validation_split", "fold_split", "held_out"]
