"""Safe access to zip archives: all-or-nothing extraction and capped single-member reads.

Archives come from downloads and other people's disks, so every member is checked before a
byte is written, and refused with :class:`~eggroll_snn.errors.ArchiveError` (naming the archive
and the member) when it is:

* outside the target: an absolute name (``/etc/x``), a drive letter (``C:x``), a backslash
  (``..\\x`` is traversal on Windows), a ``..`` component, an empty or ``.`` component, a control
  character or ``:`` (not portable), a component longer than 255 bytes;
* not a plain file or folder: a symbolic link, device, FIFO or socket, read from the Unix mode in
  the high 16 bits of ``external_attr`` (``S_IFMT(external_attr >> 16)``);
* too big (a zip bomb): a declared size over ``max_member_bytes``, declared sizes summing to more
  than ``max_total_bytes``, more than ``max_members`` entries. Bytes are also counted while they
  are decompressed, so a member whose header under-states its size fails with ``written >
  declared`` instead of filling the disk;
* undecodable: encrypted, a compression method other than stored/deflate (Python's zipfile runs
  bzip2 and LZMA without an output bound, so one 4 KiB read could expand to gigabytes), a bad
  header, a CRC mismatch or a truncated stream;
* ambiguous: a duplicate name, or a path that is both a file and a folder.

Extraction writes into a hidden staging folder inside the target and moves the top-level entries
into place only after every member is written and verified, so a refused or corrupt archive
leaves the target as it was.
"""

from __future__ import annotations

import os
import re
import shutil
import stat
import struct
import tempfile
import zipfile
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from eggroll_snn.errors import ArchiveError

DEFAULT_MAX_TOTAL_BYTES = 4 * 2**30
DEFAULT_MAX_MEMBER_BYTES = 256 * 2**20
DEFAULT_MAX_MEMBERS = 100_000
STAGING_PREFIX = ".extract-"

_CHUNK_BYTES = 1 << 16
_MAX_COMPONENT_BYTES = 255
_SUPPORTED_COMPRESSION = {zipfile.ZIP_STORED: "stored", zipfile.ZIP_DEFLATED: "deflate"}
_DRIVE_LETTER = re.compile(r"^[A-Za-z]:")
_ENCRYPTED_FLAG = 0x1
# What zipfile and zlib raise on malformed input: bad signatures and CRCs (BadZipFile), broken
# deflate streams (zlib.error), truncation (EOFError), undecodable names (UnicodeDecodeError is a
# ValueError), odd flag bits (NotImplementedError), short structs (struct.error), reads (OSError).
_MALFORMED_ZIP_ERRORS = (
    zipfile.BadZipFile,
    zlib.error,
    EOFError,
    ValueError,
    NotImplementedError,
    struct.error,
    OverflowError,
    OSError,
)


@contextmanager
def _as_archive_error(archive: str, member: str | None, action: str) -> Iterator[None]:
    """Turn zipfile's errors on malformed input into one ArchiveError naming archive and member."""
    try:
        yield
    except ArchiveError:
        raise
    except _MALFORMED_ZIP_ERRORS as error:
        where = archive if member is None else f"{archive}: member {member!r}"
        detail = f"{type(error).__name__}: {error}" if str(error) else type(error).__name__
        raise ArchiveError(
            f"{where}: {action} failed ({detail}); the archive is corrupt "
            "or truncated - download it again"
        ) from error


def _refuse(archive: str, member: str, why: str) -> ArchiveError:
    return ArchiveError(f"{archive}: member {member!r} {why}; refusing to use this archive")


def open_zip(zip_path: str | os.PathLike) -> zipfile.ZipFile:
    """Open a zip archive for reading, turning every sign of corruption into ArchiveError.

    Args:
      zip_path: path of the ``.zip`` file.

    Returns:
      an open :class:`zipfile.ZipFile` (use it as a context manager to close it).

    Raises:
      ArchiveError: the file is missing, not a zip, or its central directory is corrupt.
    """
    path = Path(zip_path)
    if not path.is_file():
        raise ArchiveError(f"{path}: archive not found (or not a file); check the path")
    with _as_archive_error(str(path), None, "reading the zip directory"):
        return zipfile.ZipFile(path)


def member_parts(info: zipfile.ZipInfo, archive: str) -> tuple[str, ...]:
    """Check one member's name, type and encoding; return its path components.

    Args:
      info: the member's central-directory entry.
      archive: the archive's name, for error messages.

    Returns:
      the components of the member's relative path, e.g. ``("Train", "0", "00002.bin")``;
      folders are marked by a trailing ``/`` in ``info.filename``, not in the components.

    Raises:
      ArchiveError: the member is unsafe or undecodable (see the module docstring).
    """
    name = info.filename
    if not name or name == "/":
        raise _refuse(archive, name, "has an empty name")
    if name.startswith("/"):
        raise _refuse(archive, name, "has an absolute path")
    if _DRIVE_LETTER.match(name):
        raise _refuse(archive, name, "starts with a drive letter (an absolute Windows path)")
    if "\\" in name:
        raise _refuse(archive, name, "contains a backslash (a path separator on Windows)")
    if any(ord(char) < 32 or char in ":\x7f" for char in name):
        raise _refuse(archive, name, "contains a control character or ':'")
    parts = tuple(name.removesuffix("/").split("/"))
    for part in parts:
        if part == "..":
            raise _refuse(archive, name, "climbs out of the target folder with '..'")
        if part in ("", "."):
            raise _refuse(archive, name, "has an empty or '.' path component")
        if len(part.encode("utf-8", "surrogatepass")) > _MAX_COMPONENT_BYTES:
            raise _refuse(archive, name, f"has a path component longer than {_MAX_COMPONENT_BYTES} bytes")

    mode = info.external_attr >> 16
    kind = stat.S_IFMT(mode)
    if kind == stat.S_IFLNK:
        raise _refuse(archive, name, "is a symbolic link")
    if kind not in (0, stat.S_IFREG, stat.S_IFDIR):
        raise _refuse(archive, name, f"is a special file (Unix mode {mode:#o})")
    is_folder = name.endswith("/")
    if kind == stat.S_IFDIR and not is_folder:
        raise _refuse(archive, name, "is marked as a folder but its name does not end in '/'")
    if is_folder and info.file_size:
        raise _refuse(archive, name, f"is a folder but declares {info.file_size} bytes of data")
    if info.flag_bits & _ENCRYPTED_FLAG:
        raise _refuse(archive, name, "is encrypted")
    if info.compress_type not in _SUPPORTED_COMPRESSION:
        raise _refuse(
            archive,
            name,
            f"uses compression method {info.compress_type}; only stored and deflate members are read "
            "(bzip2 and LZMA are decompressed without an output bound by Python's zipfile)",
        )
    return parts


def _stream_member(zip_file: zipfile.ZipFile, info: zipfile.ZipInfo, archive: str, max_bytes: int) -> Iterator[bytes]:
    """Yield a member's decompressed bytes in chunks, counting them against the header and a cap.

    The count does not trust ``info.file_size``: more bytes than declared, or than ``max_bytes``,
    raise at once; fewer than declared raise at the end. zipfile checks the CRC-32 at the end.
    """
    name = info.filename
    with _as_archive_error(archive, name, "opening the member"):
        source = zip_file.open(info)
    with source:
        written = 0
        while True:
            with _as_archive_error(archive, name, "decompressing"):
                chunk = source.read(_CHUNK_BYTES)
            if not chunk:
                break
            written += len(chunk)
            if written > info.file_size:
                declared = info.file_size
                raise _refuse(archive, name, f"decompresses to more than the {declared} bytes its header declares")
            if written > max_bytes:
                raise _refuse(archive, name, f"decompresses to more than the cap of {max_bytes} bytes")
            yield chunk
    if written != info.file_size:
        raise _refuse(archive, name, f"decompresses to {written} bytes but its header declares {info.file_size}")


def open_member_checked(zip_file: zipfile.ZipFile, name: str, max_bytes: int) -> bytes:
    """Read one member of an open archive in place, with its safety checks and a byte cap.

    Args:
      zip_file: an archive opened with :func:`open_zip`.
      name: the member's name, e.g. ``"Train/0/00002.bin"``.
      max_bytes: refuse the member when it declares or decompresses to more bytes than this.

    Returns:
      the member's decompressed bytes (at most ``max_bytes``).

    Raises:
      ArchiveError: no such member, an unsafe or folder member, too big, or corrupt data.
    """
    archive = str(zip_file.filename or "<zip>")
    try:
        info = zip_file.getinfo(name)
    except KeyError:
        raise ArchiveError(f"{archive}: no member named {name!r}; list the archive to see what it holds") from None
    member_parts(info, archive)
    if name.endswith("/"):
        raise _refuse(archive, name, "is a folder, not a file")
    if info.file_size > max_bytes:
        raise _refuse(archive, name, f"declares {info.file_size} bytes, over the cap of {max_bytes}")
    return b"".join(_stream_member(zip_file, info, archive, max_bytes))


def _plan(
    zip_file: zipfile.ZipFile, archive: str, max_total_bytes: int, max_member_bytes: int, max_members: int
) -> list[tuple[zipfile.ZipInfo, tuple[str, ...]]]:
    """Check every member and the caps on declared sizes before anything is written."""
    with _as_archive_error(archive, None, "listing the members"):
        infos = zip_file.infolist()
    if len(infos) > max_members:
        raise ArchiveError(
            f"{archive}: {len(infos)} members, over the cap of {max_members} (max_members); "
            "refusing to extract it"
        )
    plan = []
    files: set[tuple[str, ...]] = set()
    folders: set[tuple[str, ...]] = set()
    declared_total = 0
    for info in infos:
        parts = member_parts(info, archive)
        if info.filename.endswith("/"):
            if parts in folders:
                continue  # a repeated folder entry changes nothing
            folders.add(parts)
        else:
            if parts in files:
                raise _refuse(archive, info.filename, "appears twice")
            files.add(parts)
            if info.file_size > max_member_bytes:
                why = f"declares {info.file_size} bytes, over the cap of {max_member_bytes} (max_member_bytes)"
                raise _refuse(archive, info.filename, why)
            declared_total += info.file_size
            if declared_total > max_total_bytes:
                raise ArchiveError(
                    f"{archive}: members declare more than {max_total_bytes} bytes in total "
                    "(max_total_bytes); refusing to extract it"
                )
        folders.update(parts[:depth] for depth in range(1, len(parts)))
        plan.append((info, parts))
    clashes = files & folders
    if clashes:
        raise ArchiveError(f"{archive}: {'/'.join(min(clashes))!r} is both a file and a folder; refusing to extract it")
    return plan


def _write_member(chunks: Iterator[bytes], destination: Path, archive: str, name: str) -> int:
    try:
        out = open(destination, "xb")  # exclusive: a member never overwrites another
    except FileExistsError:
        raise _refuse(archive, name, "collides with another member (a case-insensitive file system?)") from None
    written = 0
    with out:
        for chunk in chunks:
            out.write(chunk)
            written += len(chunk)
    return written


def _move_into_place(staging: Path, target: Path) -> None:
    """Rename each top-level entry of ``staging`` into ``target``; undo all of them if one fails."""
    moved = []
    try:
        for entry in sorted(staging.iterdir()):
            destination = target / entry.name
            if destination.exists() or destination.is_symlink():
                raise ArchiveError(f"{destination} already exists; remove it or extract into another folder")
            entry.rename(destination)
            moved.append(destination)
    except BaseException:
        for destination in moved:
            destination.rename(staging / destination.name)
        raise


def safe_extract(
    zip_path: str | os.PathLike,
    target_dir: str | os.PathLike,
    max_total_bytes: int = DEFAULT_MAX_TOTAL_BYTES,
    max_member_bytes: int = DEFAULT_MAX_MEMBER_BYTES,
    max_members: int = DEFAULT_MAX_MEMBERS,
) -> list[Path]:
    """Extract a zip archive into ``target_dir``, all or nothing, refusing anything unsafe.

    Args:
      zip_path: the ``.zip`` file.
      target_dir: the folder to extract into (created if missing). Top-level entries of the
        archive must not exist there yet: nothing is overwritten.
      max_total_bytes: cap on the sum of the members' sizes (declared and actually decompressed).
      max_member_bytes: cap on any one member's size (declared and actually decompressed).
      max_members: cap on the number of entries (files and folders) in the archive.

    Returns:
      the extracted files' paths under ``target_dir``, in archive order (folders not listed).

    Raises:
      ArchiveError: the archive is missing, corrupt or unsafe, or a top-level entry already
        exists in ``target_dir``. The target then holds exactly what it held before.
    """
    archive = str(zip_path)
    target = Path(target_dir)
    with open_zip(zip_path) as zip_file:
        plan = _plan(zip_file, archive, max_total_bytes, max_member_bytes, max_members)
        for top in sorted({parts[0] for _, parts in plan}):
            if (target / top).exists() or (target / top).is_symlink():
                raise ArchiveError(
                    f"{archive}: {target / top} already exists; remove it or extract into another folder"
                )
        target.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=STAGING_PREFIX, dir=target))
        try:
            written_total = 0
            for info, parts in plan:
                destination = staging.joinpath(*parts)
                if info.filename.endswith("/"):
                    destination.mkdir(parents=True, exist_ok=True)
                    continue
                destination.parent.mkdir(parents=True, exist_ok=True)
                chunks = _stream_member(zip_file, info, archive, max_member_bytes)
                written_total += _write_member(chunks, destination, archive, info.filename)
                if written_total > max_total_bytes:
                    raise ArchiveError(f"{archive}: members decompress to more than {max_total_bytes} bytes in total")
            _move_into_place(staging, target)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    return [target.joinpath(*parts) for info, parts in plan if not info.filename.endswith("/")]
