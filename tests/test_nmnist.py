"""The NMNIST dataset: layouts, order, labels, zips read in place, and every kind of bad input."""

from __future__ import annotations

import json
import pickle
import shutil
import zipfile
from pathlib import Path

import numpy as np
import pytest

from eggroll_snn.data import layout
from eggroll_snn.data.events import EVENT_DTYPE, encode_events, read_events
from eggroll_snn.data.nmnist import NMNIST, SENSOR_SIZE, scan_split
from eggroll_snn.errors import ConfigError, DataFormatError

SPLITS = {"train": "Train", "test": "Test"}


def _real_files(root, split):
    return sorted((root / "NMNIST" / SPLITS[split]).glob("*/*.bin"))


def _make_zip(path, root, split, prefix=""):
    """Write the real ``split`` of ``root`` into a zip at ``path`` as ``<prefix>Train/<d>/<f>.bin``."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as archive:
        for file in _real_files(root, split):
            archive.write(file, f"{prefix}{SPLITS[split]}/{file.parent.name}/{file.name}")
    return path


def _small_root(tmp_path, real_root, count=4):
    """A copy of a few real training recordings from different digits, under ``tmp_path/NMNIST/Train``."""
    picked = [files[0] for files in (sorted(real_root.glob(f"NMNIST/Train/{d}/*.bin")) for d in range(count))]
    for file in picked:
        target = tmp_path / "NMNIST" / "Train" / file.parent.name / file.name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(file, target)
    return tmp_path


@pytest.mark.parametrize("split, count", [("train", 800), ("test", 100)])
def test_counts_labels_and_sorted_order(nmnist_small_root, split, count):
    dataset = NMNIST(nmnist_small_root, split)
    files = _real_files(nmnist_small_root, split)
    assert len(dataset) == count == len(files)
    assert dataset.labels.dtype == np.int64
    assert dataset.labels.tolist() == [int(file.parent.name) for file in files]
    assert dataset.sources == [str(file) for file in files]
    counts = dataset.per_class_counts()
    split_folder = nmnist_small_root / "NMNIST" / SPLITS[split]
    assert counts == {d: len(list((split_folder / str(d)).glob("*.bin"))) for d in range(10)}
    assert sum(counts.values()) == count
    assert dataset.sensor_size == SENSOR_SIZE == (34, 34, 2)


def test_known_recording_by_index(nmnist_small_root):
    dataset = NMNIST(nmnist_small_root, "train")
    index = dataset.sources.index(str(nmnist_small_root / "NMNIST/Train/0/00002.bin"))
    events, label = dataset[index]
    assert label == 0 and len(events) == 5028
    assert events[0].tolist() == (10, 30, 937, 1) and events[-1].tolist() == (11, 17, 305341, 1)
    last_events, last_label = dataset[-1]
    assert last_label == dataset.labels[-1]
    np.testing.assert_array_equal(last_events, read_events(dataset.sources[-1]))
    with pytest.raises(IndexError):
        dataset[len(dataset)]


def test_first_saccade_only_matches_tonic(nmnist_small_root):
    reference = json.loads((nmnist_small_root / "tonic-reference.json").read_text())["files"]
    for name, facts in reference.items():
        split = "train" if "/Train/" in name else "test"
        dataset = NMNIST(nmnist_small_root, split, first_saccade_only=True)
        events, _ = dataset[dataset.sources.index(str(nmnist_small_root / name))]
        assert len(events) == facts["first_saccade_only_n(t<1e5)"], name
        assert events["t"].max() < 100_000


def test_root_holding_the_split_folders_directly(nmnist_small_root):
    direct = NMNIST(nmnist_small_root / "NMNIST", "test")
    official = NMNIST(nmnist_small_root, "test")
    assert direct.sources == official.sources
    assert direct.labels.tolist() == official.labels.tolist()


@pytest.mark.parametrize("prefix", ["", "NMNIST/"])
def test_zip_read_in_place_equals_folder(tmp_path, nmnist_small_root, prefix):
    for split in ("train", "test") if prefix == "" else ("test",):
        _make_zip(tmp_path / f"{SPLITS[split]}.zip", nmnist_small_root, split, prefix)
        zipped, folder = NMNIST(tmp_path, split), NMNIST(nmnist_small_root, split)
        assert zipped.files.kind == "zip"
        assert len(zipped) == len(folder)
        assert zipped.labels.tolist() == folder.labels.tolist()
        for index in range(len(folder)):
            np.testing.assert_array_equal(zipped[index][0], folder[index][0])
        first = Path(folder.sources[0])
        assert zipped.sources[0] == f"{tmp_path}/{SPLITS[split]}.zip/{prefix}{SPLITS[split]}/0/{first.name}"
        zipped.close()
    # read in place: nothing was extracted beside the archives
    archives = ["Test.zip", "Train.zip"] if prefix == "" else ["Test.zip"]
    assert sorted(path.name for path in tmp_path.iterdir()) == archives


def test_zip_split_files_pickle_for_worker_processes(tmp_path, nmnist_small_root):
    _make_zip(tmp_path / "Test.zip", nmnist_small_root, "test")
    dataset = NMNIST(tmp_path, "test")
    clone = pickle.loads(pickle.dumps(dataset.files))
    np.testing.assert_array_equal(clone.read_events(5), dataset[5][0])
    assert clone.fingerprint() == dataset.files.fingerprint()


def test_fingerprint_follows_size_and_mtime(tmp_path, nmnist_small_root):
    root = _small_root(tmp_path, nmnist_small_root)
    before = scan_split(root, "train").fingerprint()
    assert scan_split(root, "train").fingerprint() == before
    victim = next((root / "NMNIST/Train/1").glob("*.bin"))
    events = read_events(victim)
    victim.write_bytes(encode_events(events[:-1]))
    assert scan_split(root, "train").fingerprint() != before


def test_bad_split_name_is_a_config_error(nmnist_small_root):
    with pytest.raises(ConfigError, match="split"):
        NMNIST(nmnist_small_root, "validation")


def test_missing_split_folder_names_the_root(tmp_path, nmnist_small_root):
    root = _small_root(tmp_path, nmnist_small_root)
    with pytest.raises(DataFormatError, match=rf"{tmp_path}: no test split found"):
        NMNIST(root, "test")
    with pytest.raises(DataFormatError, match="does not exist"):
        NMNIST(tmp_path / "missing", "train")


# Each bad input: how to break a small copied root, and the message expected (it names the file).
def _non_digit_folder(root):
    (root / "NMNIST/Train/ten").mkdir()
    return root / "NMNIST/Train/ten", "not a digit"


def _empty_recording(root):
    path = root / "NMNIST/Train/2/99999.bin"
    path.write_bytes(b"")
    return path, "empty"


def _truncated_file(root):
    path = next((root / "NMNIST/Train/1").glob("*.bin"))
    path.write_bytes(path.read_bytes()[:-2])
    return path, "not a multiple of 5"


def _stray_file(root):
    path = root / "NMNIST/Train/3/notes.txt"
    path.write_text("hello")
    return path, "not a .bin recording"


def _out_of_sensor(root):
    path = next((root / "NMNIST/Train/0").glob("*.bin"))
    data = bytearray(path.read_bytes())
    data[5] = 40  # x of the second event
    path.write_bytes(bytes(data))
    return path, "outside the 34x34 sensor"


BREAKERS = [_non_digit_folder, _empty_recording, _truncated_file, _stray_file, _out_of_sensor]


@pytest.mark.parametrize("breaker", BREAKERS, ids=lambda breaker: breaker.__name__.strip("_"))
def test_each_bad_input_names_the_file(tmp_path, nmnist_small_root, breaker):
    root = _small_root(tmp_path, nmnist_small_root)
    bad_path, message = breaker(root)
    with pytest.raises(DataFormatError, match=message) as caught:
        dataset = NMNIST(root, "train")
        for index in range(len(dataset)):  # coordinates are checked when a recording is decoded
            dataset[index]
    assert str(bad_path) in str(caught.value)


def test_skip_bad_skips_and_reports_every_bad_input(tmp_path, nmnist_small_root):
    root = _small_root(tmp_path, nmnist_small_root, count=6)
    broken = dict(breaker(root) for breaker in BREAKERS)
    (root / "NMNIST/Train/.DS_Store").write_text("hidden files are not data")
    dataset = NMNIST(root, "train", skip_bad=True)
    # 6 good copies, minus the truncated (digit 1) and out-of-sensor (digit 0) ones
    assert len(dataset) == 4
    assert dataset.labels.tolist() == [2, 3, 4, 5]
    assert {source: reason for source, reason in dataset.skipped}.keys() == {str(path) for path in broken}
    for source, reason in dataset.skipped:
        assert broken[Path(source)] in reason
    for index in range(len(dataset)):
        assert len(dataset[index][0]) > 0


def test_corrupted_zip_names_the_archive(tmp_path):
    (tmp_path / "Train.zip").write_bytes(b"PK\x03\x04 this is not really a zip archive")
    with pytest.raises(DataFormatError, match=rf"{tmp_path / 'Train.zip'}: not a readable zip"):
        NMNIST(tmp_path, "train")


def test_corrupted_zip_member_names_the_member(tmp_path, nmnist_small_root):
    path = tmp_path / "Test.zip"
    first = _real_files(nmnist_small_root, "test")[0]
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as archive:
        archive.write(first, f"Test/0/{first.name}")
    data = bytearray(path.read_bytes())
    offset = data.index(first.read_bytes()[:50])
    data[offset + 20] ^= 0xFF  # flip a byte of the stored member: its CRC-32 no longer matches
    path.write_bytes(bytes(data))
    dataset = NMNIST(tmp_path, "test")
    with pytest.raises(DataFormatError, match=rf"Test\.zip/Test/0/{first.name}: cannot read zip member"):
        dataset[0]


def test_zip_members_outside_the_layout_or_too_large(tmp_path, nmnist_small_root, monkeypatch):
    first = _real_files(nmnist_small_root, "test")[0]
    with zipfile.ZipFile(tmp_path / "Test.zip", "w") as archive:
        archive.write(first, "Test/0/a.bin")
        archive.writestr("Test/0/empty.bin", b"")
        archive.writestr("Test/x/b.bin", b"12345")
        archive.writestr("elsewhere/c.bin", b"12345")
        archive.writestr("__MACOSX/Test/0/._a.bin", b"resource fork")
    with pytest.raises(DataFormatError, match=r"Test\.zip/Test/0/empty\.bin: the recording is empty"):
        NMNIST(tmp_path, "test")
    dataset = NMNIST(tmp_path, "test", skip_bad=True)
    assert len(dataset) == 1
    assert sorted(source.split("Test.zip/")[1] for source, _ in dataset.skipped) == [
        "Test/0/empty.bin",
        "Test/x/b.bin",
        "elsewhere/c.bin",
    ]
    monkeypatch.setattr(layout, "MAX_RECORDING_BYTES", 100)
    with pytest.raises(DataFormatError, match=r"a\.bin: \d+ bytes is more than the 100-byte limit"):
        NMNIST(tmp_path, "test")


def test_split_with_no_recordings(tmp_path):
    (tmp_path / "Train" / "3").mkdir(parents=True)
    with pytest.raises(DataFormatError, match="holds no usable recordings"):
        NMNIST(tmp_path, "train")


def test_file_changed_after_listing(tmp_path, nmnist_small_root):
    root = _small_root(tmp_path, nmnist_small_root)
    dataset = NMNIST(root, "train")
    path = dataset.sources[0]
    with open(path, "ab") as handle:
        handle.write(encode_events(np.zeros(1, dtype=EVENT_DTYPE)))
    with pytest.raises(DataFormatError, match=rf"{path}: read \d+ bytes but \d+ were listed"):
        dataset[0]
