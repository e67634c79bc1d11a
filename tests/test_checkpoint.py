"""Checkpoints: exact round trip, newest valid one found, corrupt ones skipped, no pickle ever loaded."""

from __future__ import annotations

import json
import zipfile
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from eggroll_snn import atomic_files, checkpoint
from eggroll_snn.checkpoint import (
    CheckpointWarning,
    latest_valid_checkpoint,
    load_checkpoint,
    load_tree,
    save_checkpoint,
    save_tree,
)
from eggroll_snn.errors import CheckpointError

CONFIG = {"network": {"hidden_sizes": [8]}, "train": {"generations": 10, "seed": 0}}


class _State(NamedTuple):
    params: dict
    count: jax.Array
    key: jax.Array


def _tree(seed: int = 0, hidden: int = 8) -> _State:
    key = jax.random.key(seed)
    return _State(
        params={"layers": [{"weight": jax.random.normal(key, (hidden, 5)), "bias": jnp.arange(hidden, dtype=jnp.float32)}]},
        count=jnp.asarray(seed, jnp.int32),
        key=jax.random.fold_in(key, 7),
    )


def _assert_trees_equal(a, b):
    leaves_a, leaves_b = jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b)
    assert jax.tree_util.tree_structure(a) == jax.tree_util.tree_structure(b)
    for x, y in zip(leaves_a, leaves_b):
        if checkpoint.is_prng_key(x):
            x, y = jax.random.key_data(x), jax.random.key_data(y)
        assert np.asarray(x).dtype == np.asarray(y).dtype
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))


def test_tree_round_trip_is_exact_including_prng_keys(tmp_path):
    tree = _tree(3)
    save_tree(tmp_path / "state", tree, {"note": "x"})
    loaded = load_tree(tmp_path / "state.json", jax.eval_shape(lambda: tree))
    _assert_trees_equal(loaded, tree)
    # the restored key draws the same numbers as the original
    np.testing.assert_array_equal(jax.random.normal(loaded.key, (3,)), jax.random.normal(tree.key, (3,)))
    assert json.loads((tmp_path / "state.json").read_text())["note"] == "x"
    assert not [p for p in tmp_path.iterdir() if ".tmp" in p.name]


def test_checkpoint_folder_keeps_the_newest_k(tmp_path):
    for generation in (5, 10, 15, 20):
        save_checkpoint(tmp_path, generation, _tree(generation), CONFIG, keep=2)
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "gen-00000015.json", "gen-00000015.npz", "gen-00000020.json", "gen-00000020.npz",
    ]
    found = latest_valid_checkpoint(tmp_path)
    assert found.generation == 20
    _assert_trees_equal(load_checkpoint(found, _tree()), _tree(20))


@pytest.mark.parametrize("damage", ["flip_byte", "truncate_npz", "delete_npz", "torn_json", "empty_json"])
def test_corrupt_newest_checkpoint_is_reported_and_skipped(tmp_path, damage):
    save_checkpoint(tmp_path, 1, _tree(1), CONFIG)
    save_checkpoint(tmp_path, 2, _tree(2), CONFIG)
    npz, json_path = tmp_path / "gen-00000002.npz", tmp_path / "gen-00000002.json"
    if damage == "flip_byte":
        data = bytearray(npz.read_bytes())
        data[len(data) // 2] ^= 0xFF
        npz.write_bytes(bytes(data))
    elif damage == "truncate_npz":
        npz.write_bytes(npz.read_bytes()[:100])
    elif damage == "delete_npz":
        npz.unlink()
    elif damage == "torn_json":
        json_path.write_text(json_path.read_text()[:50])
    else:
        json_path.write_text("")
    with pytest.warns(CheckpointWarning, match="gen-00000002"):
        found = latest_valid_checkpoint(tmp_path)
    assert found.generation == 1
    _assert_trees_equal(load_checkpoint(found, _tree()), _tree(1))


def test_no_checkpoint_gives_none(tmp_path):
    assert latest_valid_checkpoint(tmp_path) is None
    assert latest_valid_checkpoint(tmp_path / "missing") is None


def test_checkpoint_of_a_different_network_is_refused_naming_file_and_leaf(tmp_path):
    save_checkpoint(tmp_path, 4, _tree(hidden=16), CONFIG)
    found = latest_valid_checkpoint(tmp_path)
    with pytest.raises(CheckpointError, match=r"gen-00000004\.json: leaf params/layers/0/bias is float32\(16,\) in the file, expected float32\(8,\).*different configuration"):
        load_checkpoint(found, _tree(hidden=8))


def test_checkpoint_with_another_structure_is_refused(tmp_path):
    save_checkpoint(tmp_path, 4, {"a": jnp.zeros(3)}, CONFIG)
    with pytest.raises(CheckpointError, match="structure"):
        load_checkpoint(latest_valid_checkpoint(tmp_path), _tree())


def test_checkpoint_with_another_dtype_is_refused(tmp_path):
    save_checkpoint(tmp_path, 4, {"a": jnp.zeros(3, jnp.int32)}, CONFIG)
    with pytest.raises(CheckpointError, match=r"leaf a is int32\(3,\) in the file, expected float32\(3,\)"):
        load_checkpoint(latest_valid_checkpoint(tmp_path), {"a": jnp.zeros(3, jnp.float32)})


def test_checkpoint_from_a_different_config_is_refused_naming_the_option(tmp_path):
    save_checkpoint(tmp_path, 4, _tree(), CONFIG)
    other = {"network": {"hidden_sizes": [8]}, "train": {"generations": 10, "seed": 1}}
    found = latest_valid_checkpoint(tmp_path)
    with pytest.raises(CheckpointError, match=r"train\.seed: checkpoint 0, now 1"):
        load_checkpoint(found, _tree(), config=other)
    longer = {"network": {"hidden_sizes": [8]}, "train": {"generations": 99, "seed": 0}}
    _assert_trees_equal(load_checkpoint(found, _tree(), config=longer, ignore=("train.generations",)), _tree())


def _forge(tmp_path, arrays: dict, leaves: list[dict], treedef: str):
    """Write a .npz with a JSON whose checksum matches: only the structure checks can stop it."""
    npz = tmp_path / "gen-00000009.npz"
    with open(npz, "wb") as handle:
        np.savez(handle, **arrays)
    record = {
        "format": checkpoint.FORMAT, "version": checkpoint.VERSION, "generation": 9, "config": CONFIG,
        "treedef": treedef, "leaves": leaves, "npz_file": npz.name, "npz_bytes": npz.stat().st_size,
        "npz_sha256": checkpoint._sha256(npz),
    }
    (tmp_path / "gen-00000009.json").write_text(json.dumps(record))
    return latest_valid_checkpoint(tmp_path)


class _Payload:
    """Unpickling this would create a marker file."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


def test_pickled_object_array_never_executes(tmp_path):
    marker = tmp_path / "pwned"
    like = {"a": jnp.zeros(3, jnp.float32)}
    leaves, treedef = checkpoint.describe_tree(like)
    payload = np.empty(1, dtype=object)
    payload[0] = _Payload(marker)
    found = _forge(tmp_path, {"a": payload}, leaves, str(treedef))
    with pytest.raises(CheckpointError):
        load_checkpoint(found, like)
    assert not marker.exists()
    # The payload is live: loading the same file with pickles allowed runs it.
    with np.load(tmp_path / "gen-00000009.npz", allow_pickle=True) as arrays:
        arrays["a"]
    assert marker.exists()


def test_member_larger_than_its_array_is_refused_before_reading(tmp_path):
    like = {"a": jnp.zeros(3, jnp.float32)}
    leaves, treedef = checkpoint.describe_tree(like)
    found = _forge(tmp_path, {"a": np.zeros(1_000_000, np.float32)}, leaves, str(treedef))
    with pytest.raises(CheckpointError, match="larger than its array"):
        load_checkpoint(found, like)


def test_extra_member_is_refused(tmp_path):
    like = {"a": jnp.zeros(3, jnp.float32)}
    leaves, treedef = checkpoint.describe_tree(like)
    found = _forge(tmp_path, {"a": np.zeros(3, np.float32), "b": np.zeros(3)}, leaves, str(treedef))
    with pytest.raises(CheckpointError, match="do not match"):
        load_checkpoint(found, like)


def test_description_that_lies_about_the_shape_is_caught_by_the_array_check(tmp_path):
    like = {"a": jnp.zeros(4, jnp.float32)}
    leaves, treedef = checkpoint.describe_tree(like)
    found = _forge(tmp_path, {"a": np.zeros(2, np.float64)}, leaves, str(treedef))
    with pytest.raises(CheckpointError, match=r"array a is float64\(2,\), expected float32\(4,\)"):
        load_checkpoint(found, like)


def test_not_a_zip_with_matching_checksum_is_a_checkpoint_error(tmp_path):
    like = {"a": jnp.zeros(3, jnp.float32)}
    save_checkpoint(tmp_path, 1, like, CONFIG)
    npz = tmp_path / "gen-00000001.npz"
    npz.write_bytes(b"not a zip at all")
    record = json.loads((tmp_path / "gen-00000001.json").read_text())
    record.update(npz_bytes=npz.stat().st_size, npz_sha256=checkpoint._sha256(npz))
    (tmp_path / "gen-00000001.json").write_text(json.dumps(record))
    with pytest.raises(CheckpointError, match="gen-00000001.npz"):
        load_checkpoint(latest_valid_checkpoint(tmp_path), like)


def test_failed_write_leaves_the_old_file_and_no_temporary(tmp_path):
    target = tmp_path / "file.bin"
    target.write_bytes(b"old")

    def failing(handle):
        handle.write(b"partial")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        atomic_files.atomic_write(target, failing)
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["file.bin"]


def test_saved_npz_members_are_plain_arrays(tmp_path):
    save_tree(tmp_path / "s", _tree())
    with zipfile.ZipFile(tmp_path / "s.npz") as archive:
        assert all(info.compress_type == zipfile.ZIP_STORED for info in archive.infolist())
    with np.load(tmp_path / "s.npz", allow_pickle=False) as arrays:
        assert sorted(arrays.files) == ["count", "key", "params/layers/0/bias", "params/layers/0/weight"]
