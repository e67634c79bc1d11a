"""Event-level augmentation from Python: copies of the training recordings made by an event transform."""

from __future__ import annotations

import numpy as np
import pytest

from eggroll_snn.cli import main
from eggroll_snn.config import TrainConfig, apply_overrides, load as load_config
from eggroll_snn.data.event_augment import augmented_copies, describe, seeded_numpy, transformed_events
from eggroll_snn.data.events import EVENT_DTYPE
from eggroll_snn.data.frames import FrameConfig, events_to_frames
from eggroll_snn.data.layout import scan_split
from eggroll_snn.errors import ConfigError
from eggroll_snn.run_folder import TIMING_FIELDS, read_metrics
from eggroll_snn.training import train

from test_failures import FAST, one_error_line

SENSOR = (34, 34, 2)


def _events(x, y, t, p):
    events = np.empty(len(x), EVENT_DTYPE)
    events["x"], events["y"], events["t"], events["p"] = x, y, t, p
    return events


def shift_right_and_reverse(events):
    moved = events[::-1].copy()
    moved["x"] += 3
    return moved


def drop_half(events):
    return events[np.random.random_sample(len(events)) < 0.5]


def test_transformed_events_drop_what_leaves_the_sensor_and_return_to_time_order():
    events = _events([0, 30, 31, 10], [5, 6, 7, 8], [10, 20, 30, 40], [0, 1, 0, 1])
    out = transformed_events(events, shift_right_and_reverse, SENSOR)
    assert out.dtype == EVENT_DTYPE
    np.testing.assert_array_equal(out["x"], [3, 33, 13])  # x = 31 + 3 is off the 34-pixel sensor
    np.testing.assert_array_equal(out["t"], [10, 20, 40])
    np.testing.assert_array_equal(out["y"], [5, 6, 8])
    assert events["x"][0] == 0  # the caller's events are not modified


def test_a_transform_that_returns_no_events_is_refused_naming_it():
    with pytest.raises(ConfigError, match="event transform .*len.*not events with fields x, y, t, p"):
        transformed_events(_events([1], [1], [1], [0]), len, SENSOR)


def test_seeded_numpy_repeats_its_draws_and_restores_the_global_state():
    np.random.seed(123)
    expected_next = np.random.random_sample(3)
    np.random.seed(123)
    with seeded_numpy(0, 1, 2):
        first = np.random.random_sample(5)
    with seeded_numpy(0, 1, 2):
        again = np.random.random_sample(5)
    with seeded_numpy(0, 2, 2):
        other = np.random.random_sample(5)
    np.testing.assert_array_equal(first, again)
    assert not np.array_equal(first, other)
    np.testing.assert_array_equal(np.random.random_sample(3), expected_next)


def test_description_is_the_repr_or_the_qualified_name_of_a_function():
    assert describe(drop_half) == "test_event_augment.drop_half"
    assert "lambda" in describe(lambda events: events)


def test_copies_are_the_binned_transformed_events_of_each_recording(nmnist_small_root):
    listing = scan_split(nmnist_small_root, "train")
    config = FrameConfig(num_time_bins=4, pool=2)
    rows = np.asarray([3, 500])
    copies = augmented_copies(listing, rows, drop_half, 2, config, seed=7)
    assert copies.shape == (4, 4, 2, 17, 17) and copies.dtype == np.uint8
    for copy in range(2):
        for index, row in enumerate(rows):
            events = listing.read_events(int(row))
            with seeded_numpy(7, copy, row):
                kept = events[np.random.random_sample(len(events)) < 0.5]
            np.testing.assert_array_equal(copies[copy * 2 + index], events_to_frames(kept, config, SENSOR))
            whole = events_to_frames(events, config, SENSOR).astype(np.int64).sum()
            assert 0.4 < copies[copy * 2 + index].astype(np.int64).sum() / whole < 0.6
    assert not np.array_equal(copies[0], copies[2])  # two copies of one recording differ
    np.testing.assert_array_equal(augmented_copies(listing, rows, drop_half, 2, config, seed=7), copies)


def test_tonic_transforms_run_as_event_transforms(nmnist_small_root):
    transforms = pytest.importorskip("tonic.transforms")
    listing = scan_split(nmnist_small_root, "train")
    config = FrameConfig(num_time_bins=4, pool=2)
    events = listing.read_events(0)
    dropped = augmented_copies(listing, np.asarray([0]), transforms.DropEvent(p=0.3), 1, config, seed=1)[0]
    whole = events_to_frames(events, config, SENSOR).astype(np.int64).sum()
    assert abs(dropped.astype(np.int64).sum() / whole - 0.7) < 0.03
    jitter = transforms.SpatialJitter(sensor_size=SENSOR, var_x=2.0, var_y=2.0, clip_outliers=True)
    jittered = augmented_copies(listing, np.asarray([0]), jitter, 1, config, seed=1)[0]
    assert abs(int(jittered.astype(np.int64).sum()) - int(whole)) <= 0.05 * whole  # moved, few lost at the edges
    assert not np.array_equal(jittered, events_to_frames(events, config, SENSOR))


def _config(root, **overrides):
    base = {"data.root": str(root), "data.num_time_bins": 2, "network.hidden_sizes": (8,), "strategy.population_size": 4,
            "strategy.rank": 1, "train.batch_size": 8, "train.eval_batch_size": 64, "train.eval_every": 2,
            "train.checkpoint_every": 2, "train.generations_per_call": 2, "strategy.learning_rate_schedule": "constant"}
    return apply_overrides(TrainConfig(), {**base, **overrides})


def test_a_run_trains_on_the_copies_records_the_transform_and_resumes_to_the_same_bytes(nmnist_small_root, tmp_path):
    config = _config(nmnist_small_root, **{"train.augment_event_copies": 2, "train.generations": 4})
    train(config, tmp_path / "straight", progress=False, event_transform=drop_half)
    recorded = load_config(tmp_path / "straight" / "config.toml").train
    assert (recorded.augment_event_copies, recorded.augment_event_transform) == (2, "test_event_augment.drop_half")
    split = apply_overrides(config, {"train.generations": 2})
    train(split, tmp_path / "split", progress=False, event_transform=drop_half)
    with pytest.raises(ConfigError, match="needs an event transform .this run used test_event_augment.drop_half."):
        train(load_config(tmp_path / "split" / "config.toml"), tmp_path / "split", resume=True, progress=False)
    with pytest.raises(ConfigError, match="records test_event_augment.drop_half"):
        train(load_config(tmp_path / "split" / "config.toml"), tmp_path / "split", resume=True, progress=False,
              event_transform=shift_right_and_reverse)
    resumed = apply_overrides(load_config(tmp_path / "split" / "config.toml"), {"train.generations": 4})
    train(resumed, tmp_path / "split", resume=True, progress=False, event_transform=drop_half)
    strip = lambda records: [{k: v for k, v in r.items() if k not in TIMING_FIELDS} for r in records]  # noqa: E731
    assert strip(read_metrics(tmp_path / "split")) == strip(read_metrics(tmp_path / "straight"))
    assert (tmp_path / "split" / "model.npz").read_bytes() == (tmp_path / "straight" / "model.npz").read_bytes()


def test_the_training_part_holds_the_originals_then_each_copy(nmnist_small_root):
    from eggroll_snn.training import prepare_data

    config = _config(nmnist_small_root, **{"train.augment_event_copies": 1, "train.generations": 2})
    plain, _ = prepare_data(apply_overrides(config, {"train.augment_event_copies": 0}))
    copied, _ = prepare_data(config, event_transform=drop_half)
    count = plain.train_frames.shape[0]
    assert copied.train_frames.shape[0] == 2 * count
    np.testing.assert_array_equal(np.asarray(copied.train_frames[:count]), np.asarray(plain.train_frames))
    np.testing.assert_array_equal(np.asarray(copied.train_labels), np.tile(np.asarray(plain.train_labels), 2))
    np.testing.assert_array_equal(np.asarray(copied.validation_frames), np.asarray(plain.validation_frames))
    ratio = np.asarray(copied.train_frames[count:]).sum(dtype=np.int64) / np.asarray(plain.train_frames).sum(dtype=np.int64)
    assert 0.45 < ratio < 0.55


def test_copies_from_the_command_line_are_refused_in_one_line(tmp_path, capsys):
    assert main(["train", *FAST, "--set", "train.augment_event_copies=2", "--out", str(tmp_path / "run")]) == 1
    line = one_error_line(capsys.readouterr().err)
    assert "train.augment_event_copies = 2 needs an event transform" in line and "event_transform=" in line


@pytest.mark.parametrize("value", ["-1", "65", "1.5"])
def test_a_bad_copy_count_is_refused_naming_it(value, tmp_path, capsys):
    assert main(["train", *FAST, "--set", f"train.augment_event_copies={value}", "--out", str(tmp_path / "run")]) == 1
    assert "train.augment_event_copies" in one_error_line(capsys.readouterr().err)


def test_cross_validation_passes_the_transform_to_every_fold(nmnist_small_root, tmp_path):
    from eggroll_snn.training.crossval import cross_validate

    config = _config(nmnist_small_root, **{"train.generations": 2})
    result = cross_validate(config, 2, tmp_path / "cv", event_transform=drop_half)
    for run in result["runs"]:
        recorded = load_config(f"{run}/config.toml").train
        assert (recorded.augment_event_copies, recorded.augment_event_transform) == (1, "test_event_augment.drop_half")
