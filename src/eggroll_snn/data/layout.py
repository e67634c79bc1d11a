"""Where the recordings of an N-MNIST split are: a folder tree or an official zip, listed cheaply.

A root may hold the split in any of these forms (the first found wins)::

    <root>/NMNIST/Train/<digit>/<NNNNN>.bin     the official archives unpacked
    <root>/Train/<digit>/<NNNNN>.bin
    <root>/Train.zip  or  <root>/NMNIST/Train.zip   read in place, never extracted

and the same for ``Test``. :func:`scan_split` lists a split (names and sizes, no decoding) and
catches the structural problems (:class:`SplitFiles`); a zip is read through
:mod:`eggroll_snn.data.archive`, every read capped at :data:`MAX_RECORDING_BYTES`.
"""

from __future__ import annotations

import hashlib
import os
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from eggroll_snn.data.archive import member_parts, open_member_checked, open_zip
from eggroll_snn.data.events import BYTES_PER_EVENT, SENSOR_HEIGHT, SENSOR_WIDTH, check_time_order, decode_events
from eggroll_snn.errors import ArchiveError, ConfigError, DataFormatError

SPLIT_FOLDERS = {"train": "Train", "test": "Test"}
NUM_CLASSES = 10

MAX_RECORDING_BYTES = 16 * 1024 * 1024
"""Largest recording accepted (about 3.3 million events). Real ones are under 40 kB; the cap stops a
zip member that claims to be a recording from inflating into memory without bound."""


@dataclass(frozen=True)
class Recording:
    """One listed recording.

    Attributes:
      name: path relative to the split folder, ``"<digit>/<file>.bin"``.
      label: the digit, 0..9.
      size: file size in bytes (5 bytes per event).
      stamp: modification time in ns for a folder, CRC-32 of the member for a zip; with ``size``
        it tells whether a recording changed (used by the frame cache's key).
    """

    name: str
    label: int
    size: int
    stamp: int


class SplitFiles:
    """The recordings of one split, in a folder or a zip, with the problems found while listing.

    Build it with :func:`scan_split`. ``entries`` is a tuple of :class:`Recording` in sorted order;
    ``skipped`` lists ``(source, reason)`` for every bad entry left out (only with ``skip_bad``).
    It pickles (a zip handle is reopened in each process), so worker processes can read from it.
    """

    sensor_size = (SENSOR_WIDTH, SENSOR_HEIGHT, 2)  # (W, H, P) of every N-MNIST recording (the frame cache reads it)

    def __init__(self, split: str, kind: str, location: Path, entries, skipped, members=None):
        self.split = split
        self.kind = kind  # "folder" or "zip"
        self.location = location
        self.entries: tuple[Recording, ...] = tuple(entries)
        self.skipped: list[tuple[str, str]] = list(skipped)
        self._members: dict[str, str] = members or {}  # zip only: entry name -> member name
        self._zip: zipfile.ZipFile | None = None
        self._zip_pid: int | None = None

    def __len__(self) -> int:
        return len(self.entries)

    def subset(self, entries, skipped) -> SplitFiles:
        """The same split restricted to ``entries``, with ``skipped`` as its skip list."""
        entries = tuple(entries)
        members = {entry.name: self._members[entry.name] for entry in entries} if self._members else None
        return SplitFiles(self.split, self.kind, self.location, entries, skipped, members)

    def __getstate__(self):
        state = self.__dict__.copy()
        state["_zip"] = state["_zip_pid"] = None
        return state

    def source(self, index: int) -> str:
        """Human-readable location of recording ``index``: a path, or ``<zip>/<member>`` for a zip."""
        entry = self.entries[index]
        if self.kind == "zip":
            return f"{self.location}/{self._member_name(entry)}"
        return str(self.location / entry.name)

    def _member_name(self, entry: Recording) -> str:
        return self._members[entry.name]

    def read_bytes(self, index: int) -> bytes:
        """The raw bytes of recording ``index``.

        Raises:
          DataFormatError: unreadable file, corrupt zip member, or size not as listed.
        """
        entry = self.entries[index]
        source = self.source(index)
        if self.kind == "folder":
            try:
                with open(self.location / entry.name, "rb") as handle:
                    data = handle.read(MAX_RECORDING_BYTES + 1)
            except OSError as error:
                raise DataFormatError(f"{source}: cannot read recording ({error.strerror or error})") from error
        else:
            # Checked and capped: every zipfile/zlib failure on corrupt data becomes ArchiveError,
            # and a member never inflates past MAX_RECORDING_BYTES.
            try:
                data = open_member_checked(self._zip_handle(), self._member_name(entry), MAX_RECORDING_BYTES)
            except ArchiveError as error:
                raise ArchiveError(
                    f"{source}: cannot read zip member ({_cause(error)}); the archive is corrupt, download it again"
                ) from error
        if len(data) != entry.size:
            raise DataFormatError(
                f"{source}: read {len(data)} bytes but {entry.size} were listed; "
                "the file changed or the archive is corrupt"
            )
        return data

    def read_events(self, index: int) -> np.ndarray:
        """Decode recording ``index`` into an ``(n,)`` :data:`~eggroll_snn.data.events.EVENT_DTYPE` array.

        Raises:
          DataFormatError: see :meth:`read_bytes` and :func:`~eggroll_snn.data.events.decode_events`,
            or the recording holds no events, or its timestamps are not in non-decreasing order.
        """
        source = self.source(index)
        events = decode_events(self.read_bytes(index), source=source)
        if len(events) == 0:
            raise DataFormatError(f"{source}: the recording is empty (no events); delete it or use skip_bad")
        # Refused rather than warned about: sorting would hide a corrupt file, and N-MNIST's own
        # recordings are always in time order.
        check_time_order(events["t"], source, " us", _ADVICE)
        return events

    def fingerprint(self) -> str:
        """SHA-256 hex digest of the split's location, file names, sizes and stamps."""
        digest = hashlib.sha256()
        digest.update(f"{self.split}\0{self.kind}\0{self.location.resolve()}\0".encode())
        if self.kind == "zip":
            stat = self.location.stat()
            digest.update(f"{stat.st_size}\0{stat.st_mtime_ns}\0".encode())
        for entry in self.entries:
            digest.update(f"{entry.name}\0{entry.size}\0{entry.stamp}\n".encode())
        return digest.hexdigest()

    def _zip_handle(self) -> zipfile.ZipFile:
        # A ZipFile shares one OS file offset; a forked worker must open its own handle.
        if self._zip is None or self._zip_pid != os.getpid():
            self._zip = _open_zip(self.location)
            self._zip_pid = os.getpid()
        return self._zip

    def close(self) -> None:
        """Close the zip handle, if any (reading reopens it)."""
        if self._zip is not None and self._zip_pid == os.getpid():
            self._zip.close()
        self._zip = self._zip_pid = None


def _cause(error: ArchiveError) -> str:
    """The underlying zipfile/zlib failure of an :class:`ArchiveError`, else its own message."""
    cause = error.__cause__
    return f"{type(cause).__name__}: {cause}" if cause is not None else str(error)


def _open_zip(path: Path) -> zipfile.ZipFile:
    try:
        return open_zip(path)
    except ArchiveError as error:
        raise ArchiveError(
            f"{path}: not a readable zip archive ({_cause(error)}); the download is corrupt or incomplete, "
            "fetch it again"
        ) from error


def _hidden(name: str) -> bool:
    # Operating-system litter (.DS_Store, ._foo, __MACOSX/) is not data.
    return name.startswith(".") or name == "__MACOSX"


def _size_problem(size: int) -> str | None:
    if size == 0:
        return "the recording is empty (0 bytes, no events)"
    if size % BYTES_PER_EVENT:
        return f"{size} bytes is not a multiple of {BYTES_PER_EVENT}; the file is truncated"
    if size > MAX_RECORDING_BYTES:
        return f"{size} bytes is more than the {MAX_RECORDING_BYTES}-byte limit for one recording"
    return None


def _class_problem(folder_name: str) -> str | None:
    if folder_name in {str(digit) for digit in range(NUM_CLASSES)}:
        return None
    return f"class folder {folder_name!r} is not a digit 0..9"


class _Problems:
    """Raises each problem, or collects it when skipping bad input."""

    def __init__(self, skip_bad: bool):
        self.skip_bad = skip_bad
        self.skipped: list[tuple[str, str]] = []

    def report(self, source: str, reason: str, advice: str) -> None:
        if not self.skip_bad:
            raise DataFormatError(f"{source}: {reason}; {advice}")
        self.skipped.append((source, reason))


_ADVICE = "remove or fix it, or pass skip_bad=True (--skip-bad) to skip bad recordings"


def _unreadable(entry: os.DirEntry) -> str | None:
    """Why ``entry`` cannot be followed (a symbolic-link loop, no permission), or None."""
    try:
        entry.stat()  # follows links; a loop raises ELOOP here rather than deep in the scan
    except FileNotFoundError:
        return "a broken symbolic link"
    except OSError as error:
        return f"cannot be read ({error.strerror or error})"
    return None


def _scan_folder(split: str, folder: Path, problems: _Problems) -> SplitFiles:
    entries = []
    for class_entry in sorted(os.scandir(folder), key=lambda item: item.name):
        if _hidden(class_entry.name):
            continue
        unreadable = _unreadable(class_entry)
        if unreadable:
            problems.report(class_entry.path, unreadable, _ADVICE)
            continue
        reason = _class_problem(class_entry.name) if class_entry.is_dir() else "a file outside any class folder"
        if reason:
            problems.report(class_entry.path, reason, _ADVICE)
            continue
        label = int(class_entry.name)
        for item in sorted(os.scandir(class_entry.path), key=lambda item: item.name):
            if _hidden(item.name):
                continue
            unreadable = _unreadable(item)
            if unreadable:
                problems.report(item.path, unreadable, _ADVICE)
                continue
            if not (item.is_file() and item.name.endswith(".bin")):
                problems.report(item.path, "not a .bin recording", _ADVICE)
                continue
            stat = item.stat()
            reason = _size_problem(stat.st_size)
            if reason:
                problems.report(item.path, reason, _ADVICE)
                continue
            entries.append(Recording(f"{class_entry.name}/{item.name}", label, stat.st_size, stat.st_mtime_ns))
    return SplitFiles(split, "folder", folder, entries, problems.skipped)


def _scan_zip(split: str, path: Path, problems: _Problems) -> SplitFiles:
    folder_name = SPLIT_FOLDERS[split]
    with _open_zip(path) as archive:
        infos = archive.infolist()
    entries, members = [], {}
    for info in infos:
        parts = info.filename.split("/")
        # Not info.is_dir(): it indexes filename[-1] and fails on an empty name.
        if info.filename.endswith("/") or any(_hidden(part) for part in parts):
            continue
        source = f"{path}/{info.filename}"
        # Accept "Train/<d>/<f>.bin" under any leading folders (e.g. "NMNIST/Train/...").
        if len(parts) < 3 or parts[-3] != folder_name:
            problems.report(source, f"zip member is not at {folder_name}/<digit>/<file>.bin", _ADVICE)
            continue
        class_name, file_name = parts[-2], parts[-1]
        reason = _class_problem(class_name)
        if reason is None and not file_name.endswith(".bin"):
            reason = "not a .bin recording"
        if reason is None:
            try:  # encrypted, bzip2/LZMA (inflated without an output bound), links, odd names
                member_parts(info, str(path))
            except ArchiveError as error:
                reason = str(error).removeprefix(f"{path}: ").removesuffix("; refusing to use this archive")
        reason = reason or _size_problem(info.file_size)
        if reason:
            problems.report(source, reason, _ADVICE)
            continue
        name = f"{class_name}/{file_name}"
        if name in members:
            problems.report(source, f"duplicate of {path}/{members[name]}", _ADVICE)
            continue
        members[name] = info.filename
        entries.append(Recording(name, int(class_name), info.file_size, info.CRC))
    entries.sort(key=lambda entry: entry.name)
    return SplitFiles(split, "zip", path, entries, problems.skipped, members)


def locate_split(root: str | os.PathLike, split: str) -> tuple[str, Path]:
    """Find where ``split`` lives under ``root``.

    Returns:
      ``("folder", path)`` or ``("zip", path)``.

    Raises:
      ConfigError: ``split`` is not "train" or "test".
      DataFormatError: nothing of the split is under ``root``.
    """
    if split not in SPLIT_FOLDERS:
        raise ConfigError(f"split: expected one of {sorted(SPLIT_FOLDERS)}, got {split!r}")
    root = Path(root)
    if not root.is_dir():
        raise DataFormatError(f"{root}: the data root does not exist or is not a folder")
    folder_name = SPLIT_FOLDERS[split]
    for base in (root / "NMNIST", root):
        if (base / folder_name).is_dir():
            return "folder", base / folder_name
    for base in (root, root / "NMNIST"):
        if (base / f"{folder_name}.zip").is_file():
            return "zip", base / f"{folder_name}.zip"
    raise DataFormatError(
        f"{root}: no {split} split found (looked for NMNIST/{folder_name}/, {folder_name}/, "
        f"{folder_name}.zip and NMNIST/{folder_name}.zip); point the root at the folder that holds them, "
        "or fetch the data with `eggroll-snn data download`"
    )


def scan_split(root: str | os.PathLike, split: str = "train", skip_bad: bool = False) -> SplitFiles:
    """List one split without decoding it: names, labels, sizes (cheap even for 60,000 files).

    Catches the structural problems: a class folder that is not a digit, a stray file, an empty
    recording, a size that is not a multiple of 5 bytes (truncated), a corrupt zip. Coordinates
    are only checked when a recording is decoded.

    Raises:
      DataFormatError: naming the file, for the first problem (unless ``skip_bad``, which records
        it in ``.skipped`` instead), or when the split holds no recordings at all.
    """
    kind, location = locate_split(root, split)
    problems = _Problems(skip_bad)
    files = (_scan_folder if kind == "folder" else _scan_zip)(split, location, problems)
    if not files.entries:
        skipped = f" ({len(files.skipped)} bad entries skipped)" if files.skipped else ""
        raise DataFormatError(f"{location}: the {split} split holds no usable recordings{skipped}")
    return files


__all__ = ["SPLIT_FOLDERS", "NUM_CLASSES", "MAX_RECORDING_BYTES", "Recording", "SplitFiles", "locate_split", "scan_split"]
