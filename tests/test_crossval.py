"""Honest selection on small data: stratified k folds, each held out once, the test split unread."""

from __future__ import annotations

import json

import numpy as np
import pytest

from eggroll_snn.cli import main
from eggroll_snn.data.splits import fold_split
from eggroll_snn.errors import ConfigError

from test_failures import FAST


def test_folds_partition_the_split_stratified_and_seeded():
    labels = np.repeat(np.arange(4), [10, 11, 12, 7])
    held = [fold_split(labels, 3, fold, seed=5)[1] for fold in range(3)]
    assert np.array_equal(np.sort(np.concatenate(held)), np.arange(len(labels)))  # disjoint, complete
    for fold in held:
        per_class = np.bincount(labels[fold], minlength=4)
        assert np.all(np.abs(per_class - np.bincount(labels) / 3) < 1)  # c // 3 or one more of each class
    train, validation = fold_split(labels, 3, 1, seed=5)
    assert np.array_equal(np.sort(np.concatenate([train, validation])), np.arange(len(labels)))
    assert np.array_equal(validation, fold_split(labels, 3, 1, seed=5)[1])
    assert not np.array_equal(validation, fold_split(labels, 3, 1, seed=6)[1])
    with pytest.raises(ConfigError, match="data.validation_fold = 3 is out of range: 0..2"):
        fold_split(labels, 3, 3, seed=5)


def test_crossval_trains_every_fold_without_reading_the_test_split(nmnist_small_root, tmp_path, capsys):
    out = tmp_path / "cv"
    options = ["crossval", "--folds", "3", "--data", str(nmnist_small_root), "--generations", "2", *FAST, "--out", str(out)]
    assert main([*options, "--json"]) == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert result["folds"] == 3 and len(result["validation_accuracies"]) == 3
    assert result["mean"] == pytest.approx(np.mean(result["validation_accuracies"]))
    assert sum(result["validation_recordings"]) == 720 + 80  # the whole training split, each recording once
    for fold in range(3):
        summary = json.loads((out / f"fold-{fold}" / "summary.json").read_text())
        assert summary["test_accuracy"] is None and summary["test_count"] == 0
    assert json.loads((out / "crossval.json").read_text()) == result
    assert main(options) == 0  # finished folds are read, not trained again
    assert "mean" in capsys.readouterr().out
