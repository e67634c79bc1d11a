"""A whole split as one cached array of frames on disk, memory-mapped for training.

:func:`load_split_frames` turns every recording of a split into frames (see
:mod:`eggroll_snn.data.frames`) once and stores them as one ``.npy`` file of shape
``(N, T, P, H', W')`` uint8, beside an ``(N,)`` int64 labels file and a JSON description. Later
calls map the file read-only, so a 60,000-recording split costs no memory until it is read.

The file names hold a key: the SHA-256 of the frame configuration, the cache format version,
``skip_bad`` and the split's listing (location, file names, sizes, and modification times, or the
CRC-32 of each member of a zip). A changed configuration or changed data therefore gets a new
file and never reads a stale one. Files are written under a temporary name and renamed into place,
the JSON last, so an interrupted run leaves no cache that looks complete.

Counts above 255 in one pooled pixel and frame would not fit uint8 and are clipped to 255; with
N-MNIST's few thousand events per recording this does not happen in practice.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import re
import uuid
import warnings
from contextlib import contextmanager
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path

import numpy as np

from eggroll_snn.data.frames import FrameConfig, cached_frames
from eggroll_snn.data.layout import NUM_CLASSES, SplitFiles, scan_split
from eggroll_snn.errors import CacheError, ConfigError, DataFormatError

CACHE_FORMAT_VERSION = 3  # 2: recordings with unsorted timestamps are bad; 3: content checksums
CHUNK_SIZE = 1000
PARALLEL_MIN_RECORDINGS = 5000
"""Below this many recordings a second process costs more to start than it saves."""


def default_cache_dir() -> Path:
    """``$EGGROLL_SNN_CACHE/frames``, or ``~/.cache/eggroll-snn/frames`` when the variable is unset."""
    base = os.environ.get("EGGROLL_SNN_CACHE") or Path.home() / ".cache" / "eggroll-snn"
    return Path(base) / "frames"


def cache_key(files: SplitFiles, frame_config: FrameConfig, skip_bad: bool = False) -> str:
    """SHA-256 hex digest naming the cache of ``files`` preprocessed with ``frame_config``."""
    description = {
        "format": CACHE_FORMAT_VERSION,
        "config": dataclasses.asdict(frame_config),
        "sensor_size": files.sensor_size,
        "skip_bad": bool(skip_bad),
        "data": files.fingerprint(),
    }
    return hashlib.sha256(json.dumps(description, sort_keys=True).encode()).hexdigest()


def load_split_frames(
    root: str | os.PathLike,
    split: str,
    frame_config: FrameConfig = FrameConfig(),
    cache_dir: str | os.PathLike | None = None,
    progress: bool = False,
    skip_bad: bool = False,
    workers: int = 1,
    skipped: list | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """All frames of a split, from the cache or preprocessed into it.

    Args:
      root: data root (any layout :class:`~eggroll_snn.data.nmnist.NMNIST` accepts).
      split: ``"train"`` or ``"test"``.
      frame_config: must give a fixed number of frames (``frame_config.num_frames`` not None).
      cache_dir: folder for the cache files; default :func:`default_cache_dir`.
      progress: show a progress bar while preprocessing.
      skip_bad: leave out bad recordings (each one is reported in a warning and listed in the
        cache's JSON file) instead of raising.
      workers: processes for preprocessing, used only for splits of at least 5,000 recordings
        (whether a second one pays is measured by ``benchmarks/preprocess.py``). Worker processes
        are started with "spawn", which re-imports the calling script (it needs an
        ``if __name__ == "__main__"`` guard).
      skipped: when given, each recording left out by ``skip_bad`` is appended to it as
        ``{"split", "source", "reason"}``.

    Returns:
      ``(frames, labels)``: a read-only memory map ``(N, T, P, H', W')`` uint8 (``frames[i, k, p, y, x]``)
      and ``(N,)`` int64 digits, in the dataset's sorted order.

    Raises:
      ConfigError: the frame configuration gives recordings different numbers of frames.
      DataFormatError: a bad recording (unless ``skip_bad``), naming the file.
    """
    if not isinstance(frame_config, FrameConfig):
        raise ConfigError(f"frame_config: expected a FrameConfig, got {type(frame_config).__name__}")
    frame_config.frame_shape()  # a config error before any file is listed
    _check_workers(workers)
    files = scan_split(root, split, skip_bad=skip_bad)
    return frames_of_files(files, frame_config, NUM_CLASSES, cache_dir, progress, skip_bad, workers, skipped)


def frames_of_files(
    files,
    frame_config: FrameConfig,
    num_classes: int,
    cache_dir: str | os.PathLike | None = None,
    progress: bool = False,
    skip_bad: bool = False,
    workers: int = 1,
    skipped: list | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """:func:`load_split_frames` for an already listed split: from the cache, or preprocessed into it.

    Args:
      files: a :class:`~eggroll_snn.data.nmnist.SplitFiles`, or any listing with its interface
        (``split``, ``location``, ``entries`` with ``.label``, ``skipped``, ``sensor_size``,
        ``len``, ``subset``, ``source``, ``read_events``, ``fingerprint``), e.g.
        :class:`eggroll_snn.data.tonic_source.TonicSplit`.
      num_classes: labels must lie in ``0..num_classes-1`` (a cache holding others is rebuilt).
      frame_config, cache_dir, progress, skip_bad, workers, skipped: as :func:`load_split_frames`.
    """
    frame_shape = frame_config.frame_shape(files.sensor_size)
    split = files.split
    cache_dir = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    stem = cache_dir / f"{split}-{cache_key(files, frame_config, skip_bad)[:24]}"
    cached = _load_cached(stem, frame_shape, num_classes)
    if cached is None:
        try:
            cache_dir.mkdir(parents=True, exist_ok=True)
            remove_stale_temp_files(cache_dir)
            _build(files, frame_config, frame_shape, stem, progress, skip_bad, workers)
        except OSError as error:
            raise CacheError(
                f"{cache_dir}: cannot write the frame cache ({error.strerror or error}); free space there "
                "or point EGGROLL_SNN_CACHE (or data.cache_dir) at a folder with room"
            ) from None
        cached = _load_cached(stem, frame_shape, num_classes)
        if cached is None:
            raise DataFormatError(f"{stem}.json: the cache just written does not read back; is the disk full?")
    frames, labels, left_out = cached
    if skipped is not None:
        skipped.extend({"split": split, "source": source, "reason": reason} for source, reason in left_out)
    if left_out:
        listed = "; ".join(f"{source}: {reason}" for source, reason in left_out[:3])
        more = f" and {len(left_out) - 3} more" if len(left_out) > 3 else ""
        warnings.warn(
            f"skipped {len(left_out)} bad recording(s) of the {split} split: {listed}{more} (all in {stem}.json)",
            stacklevel=2,
        )
    return frames, labels


_TEMP_NAME = re.compile(r"\.(\d+)-[0-9a-f]{8}\.tmp")


def remove_stale_temp_files(cache_dir: Path) -> list[Path]:
    """Delete the temporary files of cache writers that died (their process id no longer runs).

    Files of live writers, and of writers whose liveness cannot be told, are left alone.

    Returns:
      the paths removed.
    """
    removed = []
    for path in cache_dir.glob("*.tmp*"):
        match = _TEMP_NAME.search(path.name)
        if match is None or _process_alive(int(match.group(1))):
            continue
        try:
            path.unlink()
        except OSError:
            continue  # another process removed it first, or the folder is read-only
        removed.append(path)
    return removed


def _process_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True  # exists, but belongs to someone else
    return True


def _preallocate(path: Path, shape: tuple[int, ...]) -> None:
    """Create a zero-filled ``.npy`` file of ``shape`` uint8 with real writes.

    A sparse file (what ``open_memmap`` makes) takes its disk blocks only when the memory map is
    written, and a full disk then kills the process with SIGBUS; real writes raise ``ENOSPC`` here.
    """
    header = {"descr": np.lib.format.dtype_to_descr(np.dtype(np.uint8)), "fortran_order": False, "shape": shape}
    size = int(np.prod(shape))
    block = bytes(min(size, 1 << 22) or 1)
    with open(path, "wb") as file:
        np.lib.format.write_array_header_1_0(file, header)
        remaining = size
        while remaining > 0:
            written = file.write(block[: min(remaining, len(block))])
            remaining -= written
        file.flush()
        os.fsync(file.fileno())


def _check_workers(workers) -> None:
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise ConfigError(f"workers: expected a positive integer, got {workers!r}")


def _paths(stem: Path) -> tuple[Path, Path, Path]:
    return tuple(stem.with_name(stem.name + suffix) for suffix in (".frames.npy", ".labels.npy", ".json"))


def file_digest(path: Path) -> str:
    """BLAKE2b of a file's bytes (read in 16 MiB blocks)."""
    digest = hashlib.blake2b(digest_size=16)
    with open(path, "rb") as handle:
        while block := handle.read(1 << 24):
            digest.update(block)
    return digest.hexdigest()


def _load_cached(stem: Path, frame_shape: tuple[int, ...], num_classes: int):
    """``(frames, labels, skipped)`` from a complete, consistent cache, else None.

    Consistent: the format version, shapes, dtypes and label range its JSON states, and the
    BLAKE2b checksums of the frame and label files recorded when it was written (so changed bytes
    of a cache file are found, not read as data; the cost is one read of the file per open).
    """
    frames_path, labels_path, meta_path = _paths(stem)
    if not meta_path.is_file():
        return None
    reason = "format, shape, dtype or labels do not match its description"
    try:
        meta = json.loads(meta_path.read_text())
        frames = np.load(frames_path, mmap_mode="r", allow_pickle=False)
        # Memory-mapped first: a crafted header claiming a huge shape must not allocate it.
        labels = np.load(labels_path, mmap_mode="r", allow_pickle=False)
        count = meta["count"]
        valid = (
            meta.get("format") == CACHE_FORMAT_VERSION
            and frames.dtype == np.uint8
            and frames.shape == (count, *frame_shape)
            and labels.dtype == np.int64
            and labels.shape == (count,)
            and (count == 0 or (labels.min() >= 0 and labels.max() < num_classes))
        )
        if valid and (meta.get("frames_blake2b"), meta.get("labels_blake2b")) != (file_digest(frames_path), file_digest(labels_path)):
            valid, reason = False, "its content does not match the checksum recorded when it was written"
        skipped = [tuple(item) for item in meta.get("skipped", [])]
    except (OSError, ValueError, KeyError, TypeError, RecursionError) as error:
        valid, reason = False, str(error)
    if not valid:
        warnings.warn(f"{meta_path}: ignoring a broken frame cache ({reason}); rebuilding it", stacklevel=3)
        return None
    return frames, np.array(labels), skipped  # labels are small: copy them out of the map


def _fill_rows(files: SplitFiles, config: FrameConfig, frames_path: Path, first_row: int, skip_bad: bool):
    """Write the frames of every recording of ``files`` into rows ``first_row, first_row + 1, ...``
    of the memory-mapped ``frames_path``.

    Returns the ``(row, source, reason)`` of each recording that failed to decode (``skip_bad``).
    """
    out = np.load(frames_path, mmap_mode="r+", allow_pickle=False)
    failed = []
    for index in range(len(files)):
        try:
            events = files.read_events(index)
        except DataFormatError as error:
            if not skip_bad:
                raise
            source = files.source(index)
            failed.append((first_row + index, source, str(error).removeprefix(f"{source}: ")))
            continue
        out[first_row + index] = cached_frames(events, config, files.sensor_size)
    out.flush()
    del out
    return failed


def _build(files, config, frame_shape, stem, progress, skip_bad, workers) -> None:
    frames_path, labels_path, meta_path = _paths(stem)
    tag = f".{os.getpid()}-{uuid.uuid4().hex[:8]}.tmp"
    temp_frames = frames_path.with_name(frames_path.name + tag + ".npy")
    temp_compact = frames_path.with_name(frames_path.name + tag + "-compact.npy")
    temp_labels = labels_path.with_name(labels_path.name + tag + ".npy")
    temp_meta = meta_path.with_name(meta_path.name + tag)
    count = len(files)
    try:
        _preallocate(temp_frames, (count, *frame_shape))
        failed = _fill_all(files, config, temp_frames, progress, skip_bad, workers)
        labels = np.array([entry.label for entry in files.entries], dtype=np.int64)
        if failed:
            keep = np.setdiff1d(np.arange(count), [index for index, _, _ in failed])
            if len(keep) == 0:
                raise DataFormatError(f"{files.location}: none of the {count} {files.split} recordings decodes")
            _compact(temp_frames, temp_compact, keep)
            os.replace(temp_compact, temp_frames)
            labels = labels[keep]
        np.save(temp_labels, labels, allow_pickle=False)
        skipped = list(files.skipped) + [(source, reason) for _, source, reason in failed]
        meta = {
            "format": CACHE_FORMAT_VERSION,
            "split": files.split,
            "location": str(files.location),
            "config": dataclasses.asdict(config),
            "count": int(len(labels)),
            "frame_shape": list(frame_shape),
            "skipped": skipped,
            "frames_blake2b": file_digest(temp_frames),
            "labels_blake2b": file_digest(temp_labels),
        }
        temp_meta.write_text(json.dumps(meta, indent=1))
        os.replace(temp_frames, frames_path)
        os.replace(temp_labels, labels_path)
        os.replace(temp_meta, meta_path)  # last: its presence marks the cache complete
    finally:
        for path in (temp_frames, temp_compact, temp_labels, temp_meta):
            path.unlink(missing_ok=True)


def _fill_all(files, config, frames_path, progress, skip_bad, workers) -> list:
    count = len(files)
    # Each job carries only its own slice of the listing: pickling all 60,000 entries per job
    # made two processes slower than one.
    chunks = [
        (files.subset(files.entries[start : start + CHUNK_SIZE], []), start) for start in range(0, count, CHUNK_SIZE)
    ]
    failed = []
    with _progress_bar(progress, count, f"frames: {files.split}") as advance:
        if workers == 1 or count < PARALLEL_MIN_RECORDINGS:
            for chunk, start in chunks:
                failed += _fill_rows(chunk, config, frames_path, start, skip_bad)
                advance(len(chunk))
        else:
            # "spawn": forking a parent that has started JAX's threads can deadlock.
            with ProcessPoolExecutor(workers, mp_context=get_context("spawn")) as pool:
                jobs = [
                    (pool.submit(_fill_rows, chunk, config, frames_path, start, skip_bad), len(chunk))
                    for chunk, start in chunks
                ]
                try:
                    for job, size in jobs:
                        failed += job.result()
                        advance(size)
                except BaseException:
                    for job, _ in jobs:
                        job.cancel()  # a bad recording ends the build; don't wait for the rest
                    raise
    return failed


def _compact(source_path: Path, target_path: Path, keep: np.ndarray) -> None:
    """Copy rows ``keep`` of one ``.npy`` memory map into a new one (only when recordings were skipped)."""
    source = np.load(source_path, mmap_mode="r", allow_pickle=False)
    _preallocate(target_path, (len(keep), *source.shape[1:]))
    target = np.load(target_path, mmap_mode="r+", allow_pickle=False)
    for start in range(0, len(keep), CHUNK_SIZE):
        target[start : start + CHUNK_SIZE] = source[keep[start : start + CHUNK_SIZE]]
    target.flush()
    del source, target


@contextmanager
def _progress_bar(enabled: bool, total: int, description: str):
    """Yields ``advance(n)``: moves a rich progress bar when enabled, else does nothing."""
    if not enabled:
        yield lambda n: None
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn()) as bar:
        task = bar.add_task(description, total=total)
        yield lambda n: bar.advance(task, n)
