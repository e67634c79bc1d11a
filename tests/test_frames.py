"""Events -> frames: tonic 1.7.0's ToFrame results, the fixed window, pooling, binarisation, validation."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from eggroll_snn.data.events import EVENT_DTYPE, read_events
from eggroll_snn.data.frames import FrameConfig, events_to_frames
from eggroll_snn.errors import ConfigError, DataFormatError

TONIC_MODES = {
    "ToFrame(time_window=1000)": FrameConfig(window_us=1000, duration_us=None),
    "ToFrame(time_window=1000,include_incomplete=True)": FrameConfig(
        window_us=1000, duration_us=None, include_incomplete=True
    ),
    "ToFrame(n_time_bins=3)": FrameConfig(num_time_bins=3, duration_us=None),
    "ToFrame(n_time_bins=300)": FrameConfig(num_time_bins=300, duration_us=None),
    "ToFrame(event_count=1000)": FrameConfig(event_count=1000),
}


def _reference(root):
    return json.loads((root / "tonic-reference.json").read_text())["files"]


def _dense_reference(events, num_bins, duration_us):
    """Frames by a plain loop over events: the obvious, slow definition of the fixed window."""
    frames = np.zeros((num_bins, 2, 34, 34), dtype=np.int64)
    for x, y, t, p in events.tolist():
        if t < duration_us:
            frames[t * num_bins // duration_us, p, y, x] += 1
    return frames


@pytest.mark.parametrize("mode", sorted(TONIC_MODES))
def test_tonic_compatible_modes_match_tonic(nmnist_small_root, mode):
    for name, facts in _reference(nmnist_small_root).items():
        frames = events_to_frames(read_events(nmnist_small_root / name), TONIC_MODES[mode])
        expected = facts[mode]
        assert list(frames.shape) == expected["shape"], name
        assert int(frames.sum()) == expected["sum"], name
        assert frames.dtype == np.dtype(expected.get("dtype", "int16")), name
        if "per_bin" in expected:
            assert frames.sum(axis=(1, 2, 3)).tolist() == expected["per_bin"], name
        if "max" in expected:
            assert int(frames.max()) == expected["max"], name


def test_first_saccade_only_matches_tonic(nmnist_small_root):
    config = FrameConfig(first_saccade_only=True, duration_us=100_000, num_time_bins=4)
    for name, facts in _reference(nmnist_small_root).items():
        frames = events_to_frames(read_events(nmnist_small_root / name), config)
        assert frames.shape == (4, 2, 34, 34)
        assert int(frames.sum()) == facts["first_saccade_only_n(t<1e5)"], name


def test_default_fixed_window_equals_dense_reference(nmnist_small_root):
    for name in _reference(nmnist_small_root):
        events = read_events(nmnist_small_root / name)
        frames = events_to_frames(events)
        assert frames.shape == (10, 2, 34, 34) and frames.dtype == np.int16
        np.testing.assert_array_equal(frames, _dense_reference(events, 10, 315_000))
        assert int(frames.sum()) == int((events["t"] < 315_000).sum())


def test_fixed_window_keeps_the_same_bins_for_every_recording(nmnist_small_root):
    paths = sorted(nmnist_small_root.glob("NMNIST/Test/*/*.bin"))
    shapes = {events_to_frames(read_events(path), FrameConfig(num_time_bins=7)).shape for path in paths}
    assert shapes == {(7, 2, 34, 34)}


@settings(max_examples=40, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(0, 33), st.integers(0, 33), st.integers(0, 400_000), st.integers(0, 1)), max_size=200
    ),
    st.integers(1, 40),
    st.integers(1_000, 400_000),
)
def test_fixed_window_on_random_events(rows, num_bins, duration_us):
    events = np.sort(np.array(rows, dtype=EVENT_DTYPE), order="t")
    frames = events_to_frames(events, FrameConfig(num_time_bins=num_bins, duration_us=duration_us))
    np.testing.assert_array_equal(frames, _dense_reference(events, num_bins, duration_us))


def test_fixed_time_windows(nmnist_small_root):
    events = read_events(nmnist_small_root / "NMNIST/Train/0/00002.bin")
    whole = events_to_frames(events, FrameConfig(window_us=10_000))
    assert whole.shape == (31, 2, 34, 34)  # floor(315 ms / 10 ms)
    assert int(whole.sum()) == int((events["t"] < 310_000).sum())
    partial = events_to_frames(events, FrameConfig(window_us=10_000, include_incomplete=True))
    assert partial.shape == (32, 2, 34, 34)  # the last window, 310..315 ms, is partial
    assert int(partial.sum()) == int((events["t"] < 315_000).sum())
    np.testing.assert_array_equal(partial[:31], whole)
    # bins of 10 ms are sums of ten 1 ms bins
    fine = events_to_frames(events, FrameConfig(window_us=1_000))
    np.testing.assert_array_equal(fine[:310].reshape(31, 10, 2, 34, 34).sum(axis=1), whole)


@pytest.mark.parametrize("pool", [2, 17])
def test_pooling_sums_pixel_blocks(nmnist_small_root, pool):
    events = read_events(nmnist_small_root / "NMNIST/Train/5/00001.bin")
    dense = events_to_frames(events, FrameConfig())
    pooled = events_to_frames(events, FrameConfig(pool=pool))
    size = 34 // pool
    assert pooled.shape == (10, 2, size, size)
    np.testing.assert_array_equal(pooled, dense.reshape(10, 2, size, pool, size, pool).sum(axis=(3, 5)))


def test_binarize_marks_pixels_with_events(nmnist_small_root):
    events = read_events(nmnist_small_root / "NMNIST/Test/7/00001.bin")
    counts = events_to_frames(events, FrameConfig(pool=2))
    binary = events_to_frames(events, FrameConfig(pool=2, binarize=True))
    assert binary.dtype == np.uint8
    assert counts.max() > 1  # so the test can tell binarising from counting
    np.testing.assert_array_equal(binary, (counts > 0).astype(np.uint8))


def test_empty_events():
    empty = np.zeros(0, dtype=EVENT_DTYPE)
    assert events_to_frames(empty).shape == (10, 2, 34, 34)
    assert events_to_frames(empty).sum() == 0
    assert events_to_frames(empty, FrameConfig(event_count=5)).shape == (0, 2, 34, 34)


def test_events_outside_the_sensor_are_refused():
    events = np.array([(3, 34, 10, 1)], dtype=EVENT_DTYPE)
    with pytest.raises(DataFormatError, match="0 <= y < 34"):
        events_to_frames(events)


@pytest.mark.parametrize(
    "options, field",
    [
        ({"num_time_bins": 0}, "num_time_bins"),
        ({"num_time_bins": 2.5}, "num_time_bins"),
        ({"window_us": -5}, "window_us"),
        ({"event_count": True}, "event_count"),
        ({"pool": 0}, "pool"),
        ({"duration_us": 0}, "duration_us"),
        ({"binarize": 1}, "binarize"),
        ({"first_saccade_only": "yes"}, "first_saccade_only"),
        ({"include_incomplete": None}, "include_incomplete"),
        ({"window_us": 1000, "event_count": 100}, "event_count"),
        ({"window_us": 400_000}, "window_us"),
    ],
)
def test_bad_config_names_the_field(options, field):
    with pytest.raises(ConfigError, match=rf"FrameConfig\.{field}"):
        FrameConfig(**options)


def test_pool_must_divide_the_sensor():
    with pytest.raises(ConfigError, match=r"FrameConfig\.pool: 3 does not divide"):
        events_to_frames(np.zeros(1, dtype=EVENT_DTYPE), FrameConfig(pool=3))


def test_frame_shape_needs_a_fixed_number_of_frames():
    assert FrameConfig(pool=2).frame_shape() == (10, 2, 17, 17)
    assert FrameConfig(window_us=5_000, duration_us=100_000).frame_shape() == (20, 2, 34, 34)
    for config in (FrameConfig(duration_us=None), FrameConfig(event_count=100)):
        assert config.num_frames is None
        with pytest.raises(ConfigError, match="duration_us"):
            config.frame_shape()
