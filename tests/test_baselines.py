"""The linear read-out baseline: features, a toy task it must solve, validation-chosen L2, bad input."""

import numpy as np
import pytest

from eggroll_snn.baselines import count_features, linear_baseline
from eggroll_snn.errors import ConfigError


def _toy_frames(rng, count, classes=4):
    """Frames (N, T=6, P=2, H=4, W=4): class c adds Poisson counts at pixel c during the later bins."""
    labels = rng.integers(0, classes, count)
    frames = rng.poisson(0.5, (count, 6, 2, 4, 4)).astype(np.uint8)
    for index, label in enumerate(labels):
        frames[index, 3:, 1, 0, label] += rng.poisson(4.0, 3).astype(np.uint8)
    return frames, labels


def test_count_features_sum_bins_in_groups_and_compress_with_log1p():
    frames = np.zeros((1, 8, 2, 2, 2), np.uint8)
    frames[0, :, 1, 0, 1] = 1  # one event in every bin at (p=1, y=0, x=1)
    features = count_features(frames, time_groups=3).reshape(3, 2, 2, 2)
    # array_split of 8 bins into 3 groups: 3, 3 and 2 bins
    np.testing.assert_allclose(features[:, 1, 0, 1], np.log1p([3.0, 3.0, 2.0]))
    assert features.sum() == pytest.approx(np.log1p([3.0, 3.0, 2.0]).sum())


def test_linear_baseline_solves_a_linearly_separable_toy_task():
    rng = np.random.default_rng(0)
    train, validation, test = _toy_frames(rng, 400), _toy_frames(rng, 100), _toy_frames(rng, 200)
    result = linear_baseline(train, validation, test, num_classes=4, time_groups=2, l2_grid=(30.0, 1e-3))
    assert result["test_accuracy"] > 0.95, result
    assert result["l2"] == 1e-3  # validation picks the weak penalty: a strength of 30 underfits
    assert result["validation_by_l2"]["30.0"] < result["validation_by_l2"]["0.001"]
    assert result["test_count"] == 200 and result["features"] == 2 * 2 * 4 * 4


def test_without_a_test_split_only_validation_figures_come_back():
    rng = np.random.default_rng(1)
    result = linear_baseline(_toy_frames(rng, 100), _toy_frames(rng, 40), None, num_classes=4, l2_grid=(1e-2,))
    assert result["test_accuracy"] is None and 0.0 <= result["validation_accuracy"] <= 1.0


def test_bad_shapes_and_options_are_refused():
    with pytest.raises(ConfigError, match="expected"):
        count_features(np.zeros((3, 8, 34 * 34)))
    with pytest.raises(ConfigError, match="time_groups"):
        count_features(np.zeros((1, 2, 2, 3, 3)), time_groups=3)
    rng = np.random.default_rng(2)
    with pytest.raises(ConfigError, match="l2_grid"):
        linear_baseline(_toy_frames(rng, 10), _toy_frames(rng, 10), None, num_classes=4, l2_grid=())


def test_baseline_command_scores_the_real_subset_on_the_trainers_splits(nmnist_small_root, capsys):
    import json

    from eggroll_snn.cli import main

    assert main(["baseline", "--data", str(nmnist_small_root), "--set", "data.pool=2", "--json"]) == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    # 800 training recordings, 10 % of each class held out for validation, 100 test recordings
    assert result["train_count"] + result["validation_count"] == 800 and result["test_count"] == 100
    assert 75 <= result["validation_count"] <= 85
    assert result["features"] == 3 * 2 * 17 * 17
    assert result["test_accuracy"] > 0.85 and result["validation_accuracy"] > 0.9, result
