"""Crash-safe checkpoints of pytrees: ``.npz`` arrays + a JSON description, no pickle.

A checkpoint (or a saved model) is two files with a common stem:

* ``<stem>.npz``: the pytree's leaves as plain arrays, stored uncompressed, keyed by their path
  in the tree (``params/layers/0/weight``); PRNG key leaves are stored as their raw ``uint32`` data;
* ``<stem>.json``: format/version, generation, the resolved config, the tree structure, every
  leaf's name/shape/dtype, and the SHA-256 and size of the ``.npz``.

Both are written atomically (temporary file in the same folder, ``fsync``, ``os.replace``,
``fsync`` of the folder), ``.npz`` first: the JSON is the commit record, so a checkpoint whose
JSON exists and whose ``.npz`` matches the recorded checksum was written completely. A process
killed at any moment leaves either the previous checkpoint set or the new one, never a torn file;
what it leaves behind (a temporary file, a ``.npz`` without its JSON) the next save removes.

Loading never runs code from the file: ``np.load(..., allow_pickle=False)`` on a checksummed file
whose member sizes are checked against the expected tree first, and every leaf's shape and dtype
must equal the expected pytree's (:class:`~eggroll_snn.errors.CheckpointError` names the file and
the leaf otherwise, e.g. for a checkpoint written with a different network configuration).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
import struct
import warnings
import zipfile
import zlib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import jax
import numpy as np

from eggroll_snn.atomic_files import atomic_write, atomic_write_text, remove_stale_temporaries
from eggroll_snn.errors import CheckpointError

FORMAT = "eggroll-snn-checkpoint"
VERSION = 1
CHECKPOINT_PATTERN = re.compile(r"^gen-(\d{8,})\.json$")
# Room for the .npy header and zip bookkeeping of one member, on top of its array bytes.
_MEMBER_OVERHEAD_BYTES = 4096
# A description holds the config and one short entry per leaf: far below this.
MAX_DESCRIPTION_BYTES = 16 * 2**20
# What zipfile, zlib and numpy's .npy reader raise on malformed input: bad signatures, CRCs and
# headers (BadZipFile, ValueError), broken deflate streams (zlib.error), truncation (EOFError),
# odd flags or versions (NotImplementedError), encryption (RuntimeError), short structs.
_MALFORMED_NPZ_ERRORS = (
    OSError, ValueError, KeyError, EOFError, NotImplementedError, RuntimeError, struct.error,
    OverflowError, zlib.error, zipfile.BadZipFile,
)


class CheckpointWarning(UserWarning):
    """A checkpoint was found corrupt or incomplete and skipped (the message names the file)."""


@dataclasses.dataclass(frozen=True)
class Checkpoint:
    """A checkpoint on disk whose checksum has been verified.

    Attributes:
      generation: generations completed when it was written.
      json_path, npz_path: its two files.
      metadata: the parsed JSON description.
    """

    generation: int
    json_path: Path
    npz_path: Path
    metadata: dict


# --------------------------------------------------------------------------------------------
# Pytree <-> named arrays


def _key_name(entry: Any) -> str:
    for attribute in ("key", "idx", "name"):
        if hasattr(entry, attribute):
            return str(getattr(entry, attribute))
    return str(entry)


def is_prng_key(leaf: Any) -> bool:
    return jax.dtypes.issubdtype(getattr(leaf, "dtype", np.float32), jax.dtypes.prng_key)


def describe_tree(tree: Any) -> tuple[list[dict], Any]:
    """Leaf descriptions ``[{"name", "shape", "dtype"[, "key_impl"]}]`` and the treedef of ``tree``.

    ``tree``'s leaves may be arrays or ``jax.ShapeDtypeStruct`` (e.g. from ``jax.eval_shape``).
    A PRNG key leaf is described by its raw data (``uint32``, shape ``key.shape + (2,)``).
    """
    leaves_with_paths, treedef = jax.tree_util.tree_flatten_with_path(tree)
    descriptions = []
    for path, leaf in leaves_with_paths:
        name = "/".join(_key_name(entry) for entry in path) or "root"
        entry = {"name": name}
        if is_prng_key(leaf):
            data = jax.eval_shape(jax.random.key_data, leaf)
            entry["key_impl"] = _key_impl_name(leaf)
            entry["shape"], entry["dtype"] = list(data.shape), str(np.dtype(data.dtype))
        else:
            entry["shape"], entry["dtype"] = list(np.shape(leaf)), str(np.dtype(leaf.dtype))
        descriptions.append(entry)
    return descriptions, treedef


def _key_impl_name(leaf: Any) -> str:
    """Name of a key leaf's PRNG implementation (e.g. ``threefry2x32``), for arrays and shape structs."""
    names = []
    jax.eval_shape(lambda key: names.append(str(jax.random.key_impl(key))), leaf)
    return names[0]


def _raw_arrays(tree: Any) -> list[np.ndarray]:
    arrays = []
    for leaf in jax.tree_util.tree_leaves(tree):
        if is_prng_key(leaf):
            leaf = jax.random.key_data(leaf)
        arrays.append(np.asarray(jax.device_get(leaf)))
    return arrays


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


# --------------------------------------------------------------------------------------------
# One saved tree (stem.npz + stem.json)


def save_tree(stem: str | Path, tree: Any, metadata: Mapping[str, Any] | None = None) -> Path:
    """Write ``tree`` to ``<stem>.npz`` and its description to ``<stem>.json``, both atomically.

    Args:
      stem: path without suffix; its folder must exist.
      tree: a pytree of arrays (PRNG keys allowed).
      metadata: extra JSON-serialisable fields (e.g. ``generation``, ``config``).

    Returns:
      The JSON path.
    """
    stem = Path(stem)
    npz_path, json_path = stem.with_suffix(".npz"), stem.with_suffix(".json")
    descriptions, treedef = describe_tree(tree)
    arrays = {entry["name"]: array for entry, array in zip(descriptions, _raw_arrays(tree))}
    atomic_write(npz_path, lambda handle: np.savez(handle, **arrays))
    record = {
        "format": FORMAT,
        "version": VERSION,
        **dict(metadata or {}),
        "treedef": str(treedef),
        "leaves": descriptions,
        "npz_file": npz_path.name,
        "npz_bytes": npz_path.stat().st_size,
        "npz_sha256": _sha256(npz_path),
    }
    atomic_write_text(json_path, json.dumps(record, indent=1, sort_keys=True) + "\n")
    return json_path


def verify(json_path: str | Path) -> dict:
    """Check that ``json_path`` and its ``.npz`` form a complete, uncorrupted saved tree.

    Returns:
      The parsed JSON description.

    Raises:
      CheckpointError: unreadable or malformed JSON, missing ``.npz``, size or SHA-256 mismatch.
    """
    json_path = Path(json_path)
    try:
        with open(json_path, "rb") as handle:
            raw = handle.read(MAX_DESCRIPTION_BYTES + 1)
        if len(raw) > MAX_DESCRIPTION_BYTES:
            raise CheckpointError(f"{json_path}: larger than {MAX_DESCRIPTION_BYTES} bytes; not a checkpoint description")
        metadata = json.loads(raw.decode("utf-8"))
    except (OSError, ValueError, RecursionError) as error:  # ValueError: bad UTF-8 or JSON
        raise CheckpointError(f"{json_path}: unreadable checkpoint description: {type(error).__name__}: {error}") from None
    required = {"format": str, "version": int, "treedef": str, "leaves": list, "npz_bytes": int, "npz_sha256": str}
    if not isinstance(metadata, dict) or any(not isinstance(metadata.get(k), t) for k, t in required.items()):
        raise CheckpointError(f"{json_path}: not an eggroll-snn checkpoint description (fields missing or mistyped)")
    if metadata["format"] != FORMAT or metadata["version"] != VERSION:
        raise CheckpointError(
            f"{json_path}: format {metadata['format']!r} version {metadata['version']} is not "
            f"{FORMAT!r} version {VERSION}"
        )
    npz_path = json_path.with_suffix(".npz")
    if not npz_path.is_file():
        raise CheckpointError(f"{json_path}: its array file {npz_path.name} is missing")
    size = npz_path.stat().st_size
    if size != metadata["npz_bytes"]:
        raise CheckpointError(f"{npz_path}: {size} bytes, the description records {metadata['npz_bytes']}")
    if _sha256(npz_path) != metadata["npz_sha256"]:
        raise CheckpointError(f"{npz_path}: SHA-256 does not match the description; the file is corrupt")
    return metadata


def _check_structure(json_path: Path, metadata: dict, like: Any) -> list[dict]:
    expected, treedef = describe_tree(like)
    found = metadata["leaves"]
    hint = "it was written by a different configuration (network sizes, strategy, optimiser); start a new run"
    if metadata["treedef"] != str(treedef) or len(found) != len(expected):
        raise CheckpointError(f"{json_path}: the saved tree structure differs from the expected one; {hint}")
    for want, have in zip(expected, found):
        if not isinstance(have, dict) or {k: have.get(k) for k in want} != want:
            raise CheckpointError(
                f"{json_path}: leaf {want['name']} is {_leaf_text(have)} in the file, expected "
                f"{_leaf_text(want)}; {hint}"
            )
    return expected


def _leaf_text(entry: Any) -> str:
    if not isinstance(entry, dict) or not isinstance(entry.get("shape"), list):
        return repr(entry)[:200]
    return f"{entry.get('dtype')}{tuple(entry['shape'])}"


def _check_member(archive: zipfile.ZipFile, info: zipfile.ZipInfo, entry: dict, npz_path: Path) -> None:
    """Refuse a member that could inflate without bound or whose .npy header is not ``entry``'s array.

    Reading the header first means a file claiming a huge shape is refused before numpy
    allocates memory for it, and an object (pickle) array before anything unpickles it.
    """
    name = info.filename
    if info.flag_bits & 0x1 or info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
        # zipfile inflates bzip2 and LZMA without an output bound
        raise CheckpointError(f"{npz_path}: member {name} is encrypted or compressed with method {info.compress_type}")
    limit = int(np.prod(entry["shape"])) * np.dtype(entry["dtype"]).itemsize + _MEMBER_OVERHEAD_BYTES
    if info.file_size > limit:  # never inflate more than the expected array
        raise CheckpointError(f"{npz_path}: member {name} is larger than its array")
    with archive.open(info) as member:
        version = np.lib.format.read_magic(member)
        if version == (1, 0):
            shape, fortran_order, dtype = np.lib.format.read_array_header_1_0(member)
        elif version == (2, 0):
            shape, fortran_order, dtype = np.lib.format.read_array_header_2_0(member)
        else:
            raise CheckpointError(f"{npz_path}: member {name} has .npy format version {version}, expected 1.0 or 2.0")
    if list(shape) != entry["shape"] or dtype != np.dtype(entry["dtype"]) or fortran_order:
        raise CheckpointError(
            f"{npz_path}: array {entry['name']} is {dtype}{tuple(shape)}{' (Fortran order)' if fortran_order else ''}, "
            f"expected {entry['dtype']}{tuple(entry['shape'])}"
        )


def load_tree(json_path: str | Path, like: Any, metadata: dict | None = None) -> Any:
    """Load the tree saved at ``json_path`` into the structure, shapes and dtypes of ``like``.

    Args:
      json_path: the ``.json`` of a :func:`save_tree` pair.
      like: the expected pytree (arrays or ``jax.ShapeDtypeStruct``); the file must match it exactly.
      metadata: the already verified description (skips re-hashing), e.g. from :func:`verify`.

    Returns:
      The loaded pytree (numpy arrays; PRNG key leaves re-wrapped as JAX keys).

    Raises:
      CheckpointError: corrupt file, or a structure/shape/dtype different from ``like``.
    """
    json_path = Path(json_path)
    if metadata is None:
        metadata = verify(json_path)
    expected = _check_structure(json_path, metadata, like)
    npz_path = json_path.with_suffix(".npz")
    members = {f"{entry['name']}.npy": entry for entry in expected}
    try:
        with zipfile.ZipFile(npz_path) as archive:
            infos = archive.infolist()
            if sorted(info.filename for info in infos) != sorted(members):
                raise CheckpointError(f"{npz_path}: its arrays do not match the description")
            for info in infos:
                _check_member(archive, info, members[info.filename], npz_path)
        arrays = []
        with np.load(npz_path, allow_pickle=False) as archive:
            for entry in expected:
                array = archive[entry["name"]]
                if list(array.shape) != entry["shape"] or str(array.dtype) != entry["dtype"]:
                    raise CheckpointError(
                        f"{npz_path}: array {entry['name']} is {array.dtype}{array.shape}, expected "
                        f"{entry['dtype']}{tuple(entry['shape'])}"
                    )
                if "key_impl" in entry:
                    array = jax.random.wrap_key_data(array, impl=entry["key_impl"])
                arrays.append(array)
    except CheckpointError:
        raise
    except _MALFORMED_NPZ_ERRORS as error:
        raise CheckpointError(f"{npz_path}: cannot read the arrays: {type(error).__name__}: {error}") from None
    return jax.tree_util.tree_unflatten(jax.tree_util.tree_structure(like), arrays)


# --------------------------------------------------------------------------------------------
# Checkpoint folders


def checkpoint_stem(directory: str | Path, generation: int) -> Path:
    """``<directory>/gen-<generation:08d>`` (the sortable stem of a checkpoint)."""
    return Path(directory) / f"gen-{generation:08d}"


def save_checkpoint(
    directory: str | Path,
    generation: int,
    tree: Any,
    config: Mapping[str, Any],
    keep: int = 3,
    extra: Mapping[str, Any] | None = None,
) -> Path:
    """Write the checkpoint of ``generation`` and delete all but the newest ``keep``.

    Args:
      directory: the checkpoint folder (created if missing).
      generation: generations completed.
      tree: the training state pytree.
      config: the resolved config as a plain dict (stored to refuse resuming with another one).
      keep: number of newest checkpoints kept.
      extra: more JSON metadata.

    Returns:
      The JSON path of the new checkpoint.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    json_path = save_tree(
        checkpoint_stem(directory, generation), tree, {"generation": generation, "config": dict(config), **(extra or {})}
    )
    for old_json in _checkpoint_files(directory)[keep:]:
        old_json.unlink(missing_ok=True)  # the description first: a lone .npz is never loaded
        old_json.with_suffix(".npz").unlink(missing_ok=True)
    # A kill between those two deletions (or between writing a .npz and its .json) leaves a lone
    # .npz that no description refers to: remove it, with killed writers' temporary files.
    for npz_path in directory.glob("gen-*.npz"):
        if CHECKPOINT_PATTERN.match(npz_path.with_suffix(".json").name) and not npz_path.with_suffix(".json").exists():
            npz_path.unlink(missing_ok=True)
    remove_stale_temporaries(directory)
    return json_path


def _checkpoint_files(directory: Path) -> list[Path]:
    """Checkpoint JSON files of ``directory``, newest generation first."""
    if not directory.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in directory.iterdir() if (m := CHECKPOINT_PATTERN.match(p.name))]
    return [path for _, path in sorted(found, reverse=True)]


def latest_valid_checkpoint(directory: str | Path) -> Checkpoint | None:
    """The newest checkpoint in ``directory`` whose files are complete and match their checksum.

    Corrupt or incomplete checkpoints are skipped with a :class:`CheckpointWarning` naming the
    file (never loaded). Returns ``None`` when there is no valid checkpoint.
    """
    directory = Path(directory)
    for json_path in _checkpoint_files(directory):
        try:
            metadata = verify(json_path)
            generation = int(CHECKPOINT_PATTERN.match(json_path.name).group(1))
            if metadata.get("generation") != generation:
                raise CheckpointError(f"{json_path}: records generation {metadata.get('generation')!r}")
        except CheckpointError as error:
            warnings.warn(f"skipping corrupt checkpoint: {error}", CheckpointWarning, stacklevel=2)
            continue
        return Checkpoint(generation, json_path, json_path.with_suffix(".npz"), metadata)
    return None


def load_checkpoint(
    checkpoint: Checkpoint, like: Any, config: Mapping[str, Any] | None = None, ignore: tuple[str, ...] = ()
) -> Any:
    """Load a verified checkpoint into the structure of ``like``.

    Args:
      checkpoint: from :func:`latest_valid_checkpoint`.
      like: the expected state pytree (arrays or ``jax.ShapeDtypeStruct``).
      config: when given, the stored config must equal it (as nested dicts), else
        :class:`CheckpointError` listing the differing options.
      ignore: ``"section.key"`` options left out of that comparison (e.g. ``train.generations``).

    Returns:
      The state pytree.
    """
    if config is not None:
        stored = checkpoint.metadata.get("config")
        differences = config_differences(stored if isinstance(stored, dict) else {}, dict(config), ignore)
        if differences:
            raise CheckpointError(
                f"{checkpoint.json_path}: written with a different configuration ({'; '.join(differences[:5])}); "
                "resume with the run's own config.toml or start a new run"
            )
    return load_tree(checkpoint.json_path, like, checkpoint.metadata)


def config_differences(stored: Mapping, expected: Mapping, ignore: tuple[str, ...] = (), prefix: str = "") -> list[str]:
    """``"option: checkpoint X, now Y"`` for every option that differs between two nested config dicts."""
    lines = []
    for key in sorted(set(stored) | set(expected), key=str):
        option = f"{prefix}{key}"
        if option in ignore:
            continue
        old, new = stored.get(key), expected.get(key)
        if isinstance(old, Mapping) and isinstance(new, Mapping):
            lines += config_differences(old, new, ignore, f"{option}.")
        elif old != new:
            lines.append(f"{option}: checkpoint {old!r}, now {new!r}")
    return lines


__all__ = [
    "Checkpoint",
    "CheckpointWarning",
    "describe_tree",
    "save_tree",
    "verify",
    "load_tree",
    "checkpoint_stem",
    "save_checkpoint",
    "latest_valid_checkpoint",
    "load_checkpoint",
    "config_differences",
]
