"""The N-MNIST event codec against the real recordings and tonic's reading of them."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from eggroll_snn.data.events import EVENT_DTYPE, decode_events, encode_events, read_events, write_events
from eggroll_snn.errors import DataFormatError


def _md5sums(root):
    listed = {}
    for line in (root / "MD5SUMS").read_text().splitlines():
        digest, name = line.split(maxsplit=1)
        listed[name] = digest
    return listed


def test_known_recording(nmnist_small_root):
    events = read_events(nmnist_small_root / "NMNIST/Train/0/00002.bin")
    assert events.dtype == EVENT_DTYPE
    assert len(events) == 5028
    assert events[0].tolist() == (10, 30, 937, 1)
    assert events[-1].tolist() == (11, 17, 305341, 1)


def test_matches_tonic_reader(nmnist_small_root):
    reference = json.loads((nmnist_small_root / "tonic-reference.json").read_text())["files"]
    for name, facts in reference.items():
        events = read_events(nmnist_small_root / name)
        assert len(events) == facts["n_events"], name
        assert events["t"][0] == facts["t_first"], name
        assert events["t"][-1] == facts["t_last"], name
        assert int((events["p"] == 1).sum()) == facts["n_on(p=1)"], name


def test_every_file_matches_md5sums_and_round_trips(nmnist_small_root):
    listed = _md5sums(nmnist_small_root)
    paths = nmnist_small_root.glob("NMNIST/*/*/*.bin")
    on_disk = sorted(path.relative_to(nmnist_small_root).as_posix() for path in paths)
    assert len(on_disk) == 900
    assert sorted(listed) == on_disk
    for name in on_disk:
        data = (nmnist_small_root / name).read_bytes()
        assert hashlib.md5(data).hexdigest() == listed[name], name
        events = decode_events(data, source=name)
        assert np.all(np.diff(events["t"]) >= 0), name
        assert encode_events(events) == data, name


@settings(max_examples=50, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.integers(0, 33), st.integers(0, 33), st.integers(0, (1 << 23) - 1), st.integers(0, 1)
        ),
        max_size=50,
    )
)
def test_decode_inverts_encode(rows):
    events = np.array(rows, dtype=EVENT_DTYPE)
    decoded = decode_events(encode_events(events))
    np.testing.assert_array_equal(decoded, events)


def test_write_then_read(tmp_path, nmnist_small_root):
    events = read_events(nmnist_small_root / "NMNIST/Test/7/00001.bin")
    path = tmp_path / "a" / "b.bin"
    write_events(path, events)
    np.testing.assert_array_equal(read_events(path), events)


def test_truncated_bytes_name_the_source():
    with pytest.raises(DataFormatError, match=r"rec\.bin: 7 bytes is not a multiple of 5"):
        decode_events(bytes(7), source="rec.bin")


def test_out_of_sensor_coordinates_name_the_source():
    data = bytearray(encode_events(np.array([(1, 2, 3, 1), (5, 6, 7, 0)], dtype=EVENT_DTYPE)))
    data[6] = 34  # y of the second event
    with pytest.raises(DataFormatError, match=r"rec\.bin: event 1 .*outside"):
        decode_events(bytes(data), source="rec.bin")


@pytest.mark.parametrize("field, value", [("x", 34), ("y", -1), ("t", 1 << 23), ("p", 2)])
def test_encode_rejects_values_outside_the_format(field, value):
    events = np.zeros(3, dtype=EVENT_DTYPE)
    events[field][1] = value
    with pytest.raises(DataFormatError, match=repr(field)):
        encode_events(events)


def test_missing_file_names_the_path(tmp_path):
    with pytest.raises(DataFormatError, match="nope.bin"):
        read_events(tmp_path / "nope.bin")
