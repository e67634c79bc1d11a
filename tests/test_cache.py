"""The frame cache: contents equal direct preprocessing; hits, misses and invalidation; bad input."""

from __future__ import annotations

import json
import os
import shutil
import warnings
from pathlib import Path

import numpy as np
import pytest

from eggroll_snn.data import cache
from eggroll_snn.data.cache import default_cache_dir, load_split_frames
from eggroll_snn.data.frames import FrameConfig, events_to_frames
from eggroll_snn.data.nmnist import NMNIST
from eggroll_snn.errors import ConfigError, DataFormatError


def _copy_test_split(tmp_path, real_root):
    root = tmp_path / "data"
    shutil.copytree(real_root / "NMNIST" / "Test", root / "NMNIST" / "Test")
    return root


def _put_first_event_off_the_sensor(path):
    data = bytearray(path.read_bytes())
    data[1] = 99  # y of the first event
    path.write_bytes(bytes(data))


def _expected(root, split, config):
    dataset = NMNIST(root, split)
    frames = np.stack([events_to_frames(dataset[index][0], config) for index in range(len(dataset))])
    return frames, dataset.labels


def _count_builds(monkeypatch):
    calls = []
    original = cache._build

    def counting_build(*args, **kwargs):
        calls.append(args[1])
        return original(*args, **kwargs)

    monkeypatch.setattr(cache, "_build", counting_build)
    return calls


def test_frames_equal_direct_preprocessing(tmp_path, nmnist_small_root):
    config = FrameConfig(pool=2)
    frames, labels = load_split_frames(nmnist_small_root, "test", config, cache_dir=tmp_path)
    expected_frames, expected_labels = _expected(nmnist_small_root, "test", config)
    assert isinstance(frames, np.memmap) and not frames.flags.writeable
    assert frames.shape == (100, 10, 2, 17, 17) and frames.dtype == np.uint8
    assert labels.dtype == np.int64
    np.testing.assert_array_equal(frames, expected_frames)
    np.testing.assert_array_equal(labels, expected_labels)
    assert len(list(tmp_path.glob("*.frames.npy"))) == 1
    assert not list(tmp_path.glob("*.tmp*"))


def test_hit_on_same_config_miss_on_changed_config(tmp_path, nmnist_small_root, monkeypatch):
    builds = _count_builds(monkeypatch)
    first, _ = load_split_frames(nmnist_small_root, "test", FrameConfig(), cache_dir=tmp_path)
    again, _ = load_split_frames(nmnist_small_root, "test", FrameConfig(), cache_dir=tmp_path)
    assert len(builds) == 1
    assert again.filename == first.filename
    binary, _ = load_split_frames(nmnist_small_root, "test", FrameConfig(binarize=True), cache_dir=tmp_path)
    assert len(builds) == 2
    assert binary.filename != first.filename
    np.testing.assert_array_equal(binary, (np.asarray(first) > 0).astype(np.uint8))
    assert len(list(tmp_path.glob("*.json"))) == 2


def test_miss_when_the_data_changes(tmp_path, nmnist_small_root, monkeypatch):
    root = _copy_test_split(tmp_path, nmnist_small_root)
    builds = _count_builds(monkeypatch)
    before, _ = load_split_frames(root, "test", FrameConfig(), cache_dir=tmp_path / "cache")
    victim = sorted((root / "NMNIST/Test/3").glob("*.bin"))[0]
    victim.write_bytes(victim.read_bytes()[: 5 * 100])  # keep only the first 100 events
    after, _ = load_split_frames(root, "test", FrameConfig(), cache_dir=tmp_path / "cache")
    assert len(builds) == 2 and after.filename != before.filename
    index = NMNIST(root, "test").sources.index(str(victim))
    assert int(after[index].sum()) == 100 < int(before[index].sum())
    # same size, new modification time: also a miss
    os.utime(victim, ns=(0, 1_000_000_000))
    load_split_frames(root, "test", FrameConfig(), cache_dir=tmp_path / "cache")
    assert len(builds) == 3


def test_broken_cache_is_rebuilt_with_a_warning(tmp_path, nmnist_small_root, monkeypatch):
    frames, labels = load_split_frames(nmnist_small_root, "test", FrameConfig(pool=2), cache_dir=tmp_path)
    expected = np.array(frames)
    path = next(tmp_path.glob("*.labels.npy"))
    np.save(path, labels[:-1])  # wrong length
    builds = _count_builds(monkeypatch)
    with pytest.warns(UserWarning, match="broken frame cache"):
        rebuilt, rebuilt_labels = load_split_frames(nmnist_small_root, "test", FrameConfig(pool=2), cache_dir=tmp_path)
    assert len(builds) == 1
    np.testing.assert_array_equal(rebuilt, expected)
    np.testing.assert_array_equal(rebuilt_labels, labels)


def test_variable_frame_count_is_refused(tmp_path, nmnist_small_root):
    with pytest.raises(ConfigError, match="duration_us"):
        load_split_frames(nmnist_small_root, "test", FrameConfig(event_count=1000), cache_dir=tmp_path)


def test_bad_recording_raises_and_leaves_no_cache(tmp_path, nmnist_small_root):
    root = _copy_test_split(tmp_path, nmnist_small_root)
    victim = sorted((root / "NMNIST/Test/5").glob("*.bin"))[0]
    _put_first_event_off_the_sensor(victim)
    with pytest.raises(DataFormatError, match=str(victim)):
        load_split_frames(root, "test", FrameConfig(), cache_dir=tmp_path / "cache")
    assert list((tmp_path / "cache").iterdir()) == []


def test_skip_bad_leaves_out_and_reports(tmp_path, nmnist_small_root):
    root = _copy_test_split(tmp_path, nmnist_small_root)
    undecodable = sorted((root / "NMNIST/Test/5").glob("*.bin"))[0]
    _put_first_event_off_the_sensor(undecodable)
    truncated = sorted((root / "NMNIST/Test/8").glob("*.bin"))[0]
    truncated.write_bytes(truncated.read_bytes()[:-1])
    good = NMNIST(root, "test", skip_bad=True)
    assert len(good) == 98
    with pytest.warns(UserWarning, match="skipped 2 bad recording"):
        frames, labels = load_split_frames(root, "test", FrameConfig(), cache_dir=tmp_path / "cache", skip_bad=True)
    assert frames.shape[0] == 98
    np.testing.assert_array_equal(labels, good.labels)
    for index in (0, 50, 97):
        np.testing.assert_array_equal(frames[index], events_to_frames(good[index][0], FrameConfig()))
    meta = json.loads(next((tmp_path / "cache").glob("*.json")).read_text())
    assert sorted(source for source, _ in meta["skipped"]) == sorted([str(undecodable), str(truncated)])
    with pytest.warns(UserWarning, match="skipped 2 bad recording"):  # a cache hit reports them again
        load_split_frames(root, "test", FrameConfig(), cache_dir=tmp_path / "cache", skip_bad=True)


def test_two_worker_processes_give_the_same_frames(tmp_path, nmnist_small_root, monkeypatch):
    monkeypatch.setattr(cache, "PARALLEL_MIN_RECORDINGS", 0)
    monkeypatch.setattr(cache, "CHUNK_SIZE", 30)
    config = FrameConfig(pool=2, num_time_bins=5)
    frames, labels = load_split_frames(nmnist_small_root, "test", config, cache_dir=tmp_path, workers=2)
    expected_frames, expected_labels = _expected(nmnist_small_root, "test", config)
    np.testing.assert_array_equal(frames, expected_frames)
    np.testing.assert_array_equal(labels, expected_labels)


def test_default_cache_dir_follows_the_environment(tmp_path, nmnist_small_root, monkeypatch):
    monkeypatch.setenv("EGGROLL_SNN_CACHE", str(tmp_path / "base"))
    assert default_cache_dir() == tmp_path / "base" / "frames"
    frames, _ = load_split_frames(nmnist_small_root, "test", FrameConfig(num_time_bins=2))
    assert os.path.dirname(frames.filename) == str(tmp_path / "base" / "frames")
    monkeypatch.delenv("EGGROLL_SNN_CACHE")
    assert default_cache_dir() == Path.home() / ".cache" / "eggroll-snn" / "frames"


def test_progress_bar_and_bad_workers(tmp_path, nmnist_small_root, capsys):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        load_split_frames(nmnist_small_root, "test", FrameConfig(num_time_bins=3), cache_dir=tmp_path, progress=True)
    assert "100/100" in capsys.readouterr().out
    with pytest.raises(ConfigError, match="workers"):
        load_split_frames(nmnist_small_root, "test", FrameConfig(), cache_dir=tmp_path, workers=0)


def test_no_decodable_recording_and_wrong_config_type(tmp_path, nmnist_small_root):
    only = sorted((nmnist_small_root / "NMNIST/Test/2").glob("*.bin"))[0]
    victim = tmp_path / "data" / "Test" / "2" / only.name
    victim.parent.mkdir(parents=True)
    shutil.copyfile(only, victim)
    _put_first_event_off_the_sensor(victim)
    with pytest.raises(DataFormatError, match="none of the 1 test recordings decodes"):
        load_split_frames(tmp_path / "data", "test", FrameConfig(), cache_dir=tmp_path / "cache", skip_bad=True)
    with pytest.raises(ConfigError, match="frame_config"):
        load_split_frames(nmnist_small_root, "test", {"pool": 2}, cache_dir=tmp_path / "cache")


def test_a_cache_file_with_changed_bytes_of_the_same_size_is_found_and_rebuilt(tmp_path, nmnist_small_root, monkeypatch):
    config = FrameConfig(pool=2, num_time_bins=4)
    expected, _ = load_split_frames(nmnist_small_root, "test", config, cache_dir=tmp_path)
    expected = np.array(expected)
    frames_file = next(tmp_path.glob("*.frames.npy"))
    data = bytearray(frames_file.read_bytes())
    for offset in range(len(data) - 4000, len(data), 7):  # flip frame bytes; the size stays
        data[offset] ^= 0x5A
    frames_file.write_bytes(bytes(data))
    builds = _count_builds(monkeypatch)
    with pytest.warns(UserWarning, match="does not match the checksum recorded when it was written"):
        frames, _ = load_split_frames(nmnist_small_root, "test", config, cache_dir=tmp_path)
    assert len(builds) == 1
    np.testing.assert_array_equal(frames, expected)
