"""The official N-MNIST archives: resumable download, MD5 verification and safe extraction.

N-MNIST (Orchard et al. 2015) is published as two zip files, ``Train.zip`` (60,000 recordings)
and ``Test.zip`` (10,000), each holding one top-level folder (``Train/`` or ``Test/``) of
``<digit>/<NNNNN>.bin`` files. :func:`download_nmnist` fetches both, checks their MD5, and
extracts them into the layout the dataset reader expects::

    to_dir/Train.zip, to_dir/Test.zip          (kept: the reader can also use them in place)
    to_dir/NMNIST/Train/<digit>/<NNNNN>.bin
    to_dir/NMNIST/Test/<digit>/<NNNNN>.bin

Downloads go to ``<dest>.part`` and are resumed with an HTTP ``Range`` request when rerun; the
file is renamed to ``<dest>`` only once complete and verified, so a ``<dest>`` on disk is always
whole. Extraction goes through :func:`eggroll_snn.data.archive.safe_extract`.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import tempfile
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from http.client import HTTPException
from pathlib import Path

from eggroll_snn import __version__
from eggroll_snn.data.archive import STAGING_PREFIX, safe_extract
from eggroll_snn.errors import ArchiveError, ConfigError, DownloadError

# Official URLs and MD5 checksums of the two archives, as listed by tonic's NMNIST dataset class
# (tonic/datasets/nmnist.py in github.com/neuromorphs/tonic; tonic 1.x downloads from the dataset's
# Mendeley Data record 468j46mzdv; the same MD5s were listed for the earlier Dropbox copies).
NMNIST_URL_BASE = "https://data.mendeley.com/public-files/datasets/468j46mzdv/files/"
NMNIST_TRAIN_URL = NMNIST_URL_BASE + "39c25547-014b-4137-a934-9d29fa53c7a0/file_downloaded"
NMNIST_TEST_URL = NMNIST_URL_BASE + "05a4d654-7e03-4c15-bdfa-9bb2bcbea494/file_downloaded"
NMNIST_TRAIN_MD5 = "20959b8e626244a1b502305a9e6e2031"
NMNIST_TEST_MD5 = "69ca8762b2fe404d9b9bad1103e97832"

# Environment variables that override the sources (a mirror, or a test server on 127.0.0.1).
ENV_URL_BASE = "EGGROLL_SNN_NMNIST_URL_BASE"
ENV_MD5 = {"Train.zip": "EGGROLL_SNN_NMNIST_TRAIN_MD5", "Test.zip": "EGGROLL_SNN_NMNIST_TEST_MD5"}

# Caps for the official archives, with a wide margin: the largest recording is ~36 kB
# (7,200 events x 5 bytes) and the extracted train split ~1.3 GB in ~60,000 files.
NMNIST_MAX_ARCHIVE_BYTES = 4 * 2**30
NMNIST_MAX_RECORDING_BYTES = 2**20
NMNIST_MAX_EXTRACTED_BYTES = 4 * 2**30
NMNIST_MAX_MEMBERS = 100_000

DEFAULT_TIMEOUT_S = 60.0
_CHUNK_BYTES = 1 << 20
_MD5_PATTERN = re.compile(r"^[0-9a-fA-F]{32}$")
_CONTENT_RANGE = re.compile(r"^bytes\s+(\d+)-(\d+)/(\d+|\*)$")
_UNSATISFIABLE_RANGE = re.compile(r"^bytes\s+\*/(\d+)$")


@dataclass(frozen=True)
class RemoteArchive:
    """One archive to fetch: saved as ``filename``, verified with ``md5``, holding ``folder``."""

    filename: str
    url: str
    md5: str
    folder: str


@dataclass(frozen=True)
class NMNISTDownload:
    """What :func:`download_nmnist` did.

    ``root`` is the dataset root to pass to the reader; ``archives`` maps ``"Train.zip"`` to its
    path; ``split_dirs`` maps ``"Train"`` to its extracted folder (empty with ``extract=False``);
    (a split found already extracted lists its zip only if it is still there);
    ``downloaded`` and ``extracted`` name the archives fetched / unpacked by this call (work found
    already done is skipped).
    """

    root: Path
    archives: dict[str, Path]
    split_dirs: dict[str, Path]
    downloaded: tuple[str, ...]
    extracted: tuple[str, ...]


def _check_md5_text(md5: str, option: str) -> str:
    if not _MD5_PATTERN.match(md5):
        raise ConfigError(f"{option}: {md5!r} is not an MD5 checksum (32 hexadecimal digits)")
    return md5.lower()


def file_md5(path: str | os.PathLike) -> str:
    """Hex MD5 digest of a file, read in 1 MiB chunks."""
    digest = hashlib.md5()
    with open(path, "rb") as stream:
        while chunk := stream.read(_CHUNK_BYTES):
            digest.update(chunk)
    return digest.hexdigest()


def nmnist_archives(
    url_base: str | None = None, md5s: Mapping[str, str] | None = None, environ: Mapping[str, str] | None = None
) -> tuple[RemoteArchive, ...]:
    """The two N-MNIST archives to fetch, with overrides applied.

    Args:
      url_base: a mirror serving ``<url_base>/Train.zip`` and ``<url_base>/Test.zip``; default
        ``environ[EGGROLL_SNN_NMNIST_URL_BASE]``, else the official URLs.
      md5s: ``{"Train.zip": hex, "Test.zip": hex}`` overriding the published checksums (for
        test archives); default ``environ[EGGROLL_SNN_NMNIST_TRAIN_MD5 / _TEST_MD5]``.
      environ: the environment to read (default ``os.environ``).

    Raises:
      ConfigError: an override is not an MD5 or the URL base is not http(s).
    """
    environ = os.environ if environ is None else environ
    url_base = url_base or environ.get(ENV_URL_BASE) or None
    official = {"Train.zip": (NMNIST_TRAIN_URL, NMNIST_TRAIN_MD5), "Test.zip": (NMNIST_TEST_URL, NMNIST_TEST_MD5)}
    archives = []
    for filename, (url, md5) in official.items():
        if url_base is not None:
            _check_url(url_base, "--url-base")
            url = url_base.rstrip("/") + "/" + filename
        if md5s is not None and filename in md5s:
            md5 = _check_md5_text(md5s[filename], f"md5 of {filename}")
        elif environ.get(ENV_MD5[filename]):
            md5 = _check_md5_text(environ[ENV_MD5[filename]], ENV_MD5[filename])
        archives.append(RemoteArchive(filename, url, md5, folder=filename.removesuffix(".zip")))
    return tuple(archives)


def _check_url(url: str, option: str) -> None:
    if urllib.parse.urlsplit(url).scheme not in ("http", "https"):
        raise ConfigError(f"{option}: {url!r} is not an http:// or https:// URL")


def _open_range(url: str, offset: int, timeout: float):
    """Send a GET asking for the bytes from ``offset`` on; return the response (or None on 416)."""
    headers = {"User-Agent": f"eggroll-snn/{__version__}", "Accept-Encoding": "identity"}
    if offset:
        headers["Range"] = f"bytes={offset}-"
    request = urllib.request.Request(url, headers=headers)
    try:
        return urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as error:
        if error.code == 416 and offset:
            return error  # range not satisfiable: the caller looks at Content-Range
        raise DownloadError(f"{url}: HTTP {error.code} {error.reason}; check the URL or try again later") from error
    except (urllib.error.URLError, OSError, HTTPException) as error:
        reason = getattr(error, "reason", error)
        raise DownloadError(f"{url}: could not connect ({reason}); check the network and the URL") from error


def _progress_bar(enabled: bool):
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
        TransferSpeedColumn,
    )

    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
    )
    return Progress(*columns, console=Console(stderr=True), disable=not enabled, transient=False)


def _fetch_to_part(url: str, part: Path, timeout: float, max_bytes: int | None, progress: bool) -> None:
    """Bring ``part`` to the complete remote file, resuming from its current size."""
    for _attempt in range(2):
        offset = part.stat().st_size if part.exists() else 0
        response = _open_range(url, offset, timeout)
        with response:
            status = response.status
            if status == 416:
                match = _UNSATISFIABLE_RANGE.match(response.headers.get("Content-Range", ""))
                if match and int(match.group(1)) == offset:
                    return  # the .part already holds the whole file
                part.unlink()  # longer than the remote file: it cannot be a prefix of it
                continue
            if status == 206:
                match = _CONTENT_RANGE.match(response.headers.get("Content-Range", ""))
                if not match or int(match.group(1)) != offset:
                    part.unlink()  # a range we did not ask for: start again from byte 0
                    continue
                total = None if match.group(3) == "*" else int(match.group(3))
                mode = "ab"
            elif status == 200:
                offset = 0  # the server ignored Range and sends the whole file: start over
                length = response.headers.get("Content-Length")
                total = int(length) if length and length.isdigit() else None
                mode = "wb"
            else:
                raise DownloadError(f"{url}: unexpected HTTP status {status}; expected 200 or 206")
            if max_bytes is not None and total is not None and total > max_bytes:
                raise DownloadError(f"{url}: the server announces {total} bytes, over the cap of {max_bytes}")
            _stream_response(response, part, mode, offset, total, url, max_bytes, progress)
            return
    raise DownloadError(f"{url}: the server answered resume requests inconsistently; delete {part} and rerun")


def _stream_response(
    response, part: Path, mode: str, offset: int, total: int | None, url: str, max_bytes: int | None, progress: bool
) -> None:
    """Write the response body to ``part`` (appending at ``offset`` or from scratch), with a bar."""
    received = offset
    with _progress_bar(progress) as bar, open(part, mode) as out:
        task = bar.add_task(part.name.removesuffix(".part"), total=total, completed=offset)
        while True:
            try:
                chunk = response.read(_CHUNK_BYTES)
            except (OSError, HTTPException) as error:
                raise DownloadError(
                    f"{url}: transfer interrupted after {received} bytes ({error}); {part} is kept, "
                    "rerun to resume"
                ) from error
            if not chunk:
                break
            received += len(chunk)
            if max_bytes is not None and received > max_bytes:
                break
            out.write(chunk)
            bar.update(task, completed=received)
        out.flush()
        os.fsync(out.fileno())
    if max_bytes is not None and received > max_bytes:
        part.unlink()
        raise DownloadError(f"{url}: more than {max_bytes} bytes received, over the cap; the download was deleted")
    if total is not None and received != total:
        raise DownloadError(
            f"{url}: transfer ended after {received} of {total} bytes; {part} is kept, rerun to resume"
        )


def download_file(
    url: str,
    dest: str | os.PathLike,
    md5: str | None = None,
    progress: bool = True,
    timeout: float = DEFAULT_TIMEOUT_S,
    max_bytes: int | None = None,
) -> Path:
    """Download ``url`` to ``dest``: resumable, MD5-verified, renamed into place when complete.

    Bytes go to ``<dest>.part``; a rerun asks the server for the rest with ``Range: bytes=N-``
    (a server that ignores Range and answers 200 makes the download start again from byte 0).
    Only a complete file whose MD5 matches is renamed to ``dest``.

    Args:
      url: an http:// or https:// URL.
      dest: where the file ends up.
      md5: expected hex MD5; ``None`` skips verification. When given and ``dest`` already
        exists with this MD5, nothing is downloaded.
      progress: show a rich progress bar on stderr.
      timeout: seconds to wait for the server on connect and on each read.
      max_bytes: refuse a file announced or received larger than this (``None``: no cap).

    Returns:
      ``dest`` as a Path.

    Raises:
      DownloadError: HTTP or network failure (the ``.part`` is kept for a resume), a file over
        ``max_bytes``, or an MD5 mismatch (the ``.part`` is deleted: its bytes are wrong), or an
        existing ``dest`` whose MD5 does not match.
      ConfigError: ``url`` is not http(s) or ``md5`` is not 32 hex digits.
    """
    _check_url(url, "url")
    expected = None if md5 is None else _check_md5_text(md5, "md5")
    dest = Path(dest)
    if dest.exists():
        if expected is None:
            pass  # nothing to verify it against: fetch it again and replace it
        elif file_md5(dest) == expected:
            return dest
        else:
            raise DownloadError(
                f"{dest} exists but its MD5 is not {expected}; delete it (or move it away) and rerun"
            )
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    _fetch_to_part(url, part, timeout, max_bytes, progress)
    if expected is not None:
        actual = file_md5(part)
        if actual != expected:
            part.unlink()
            raise DownloadError(
                f"{url}: downloaded file has MD5 {actual}, expected {expected}; the corrupt download was "
                "deleted - rerun to fetch it again, and if it keeps failing the server holds a different file"
            )
    os.replace(part, dest)
    return dest


def _split_folder(staging: Path, archive: RemoteArchive, zip_path: Path) -> Path:
    """Find the split folder in a freshly extracted archive: ``Train/`` or bare digit folders."""
    entries = [entry for entry in staging.iterdir() if entry.name != "__MACOSX"]
    if len(entries) == 1 and entries[0].name == archive.folder and entries[0].is_dir():
        return entries[0]
    if entries and all(entry.is_dir() and entry.name.isdigit() for entry in entries):
        return staging  # digit folders at the top: the archive is the split folder itself
    names = sorted(entry.name for entry in entries)
    raise ArchiveError(
        f"{zip_path}: expected one top-level folder {archive.folder}/ (or digit folders), found {names}; "
        "this is not an N-MNIST archive"
    )


def _extract_split(zip_path: Path, archive: RemoteArchive, nmnist_dir: Path) -> Path:
    """Safely extract one N-MNIST archive so that its recordings end up in ``nmnist_dir/<folder>``."""
    nmnist_dir.mkdir(parents=True, exist_ok=True)
    split_dir = nmnist_dir / archive.folder
    staging = Path(tempfile.mkdtemp(prefix=STAGING_PREFIX, dir=nmnist_dir))
    try:
        safe_extract(
            zip_path,
            staging,
            max_total_bytes=NMNIST_MAX_EXTRACTED_BYTES,
            max_member_bytes=NMNIST_MAX_RECORDING_BYTES,
            max_members=NMNIST_MAX_MEMBERS,
        )
        os.rename(_split_folder(staging, archive, zip_path), split_dir)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return split_dir


def download_nmnist(
    to_dir: str | os.PathLike,
    url_base: str | None = None,
    md5s: Mapping[str, str] | None = None,
    extract: bool = True,
    progress: bool = True,
    timeout: float = DEFAULT_TIMEOUT_S,
) -> NMNISTDownload:
    """Download, verify and (optionally) extract both N-MNIST archives into ``to_dir``.

    Work already done is skipped: a split whose folder ``to_dir/NMNIST/<Split>`` exists is not
    touched (extraction renames that folder into place only when complete), and an archive
    already on disk with the right MD5 is not fetched again. Interrupted downloads resume.

    Args:
      to_dir: the dataset root to create or complete.
      url_base: a mirror serving ``Train.zip`` and ``Test.zip`` (see :func:`nmnist_archives`).
      md5s: checksum overrides ``{"Train.zip": hex, "Test.zip": hex}``.
      extract: also unpack into ``to_dir/NMNIST/{Train,Test}``; ``False`` keeps just the zips,
        which the reader can use in place.
      progress: show progress bars on stderr.
      timeout: network timeout in seconds.

    Raises:
      DownloadError: network failure or checksum mismatch.
      ArchiveError: an archive is corrupt, unsafe, or not laid out like N-MNIST.
    """
    root = Path(to_dir)
    nmnist_dir = root / "NMNIST"
    archives, split_dirs, downloaded, extracted = {}, {}, [], []
    for archive in nmnist_archives(url_base, md5s):
        zip_path = root / archive.filename
        split_dir = nmnist_dir / archive.folder
        if extract and split_dir.is_dir():
            split_dirs[archive.folder] = split_dir
            if zip_path.exists():
                archives[archive.filename] = zip_path
            continue
        if not (zip_path.exists() and file_md5(zip_path) == archive.md5):
            download_file(
                archive.url,
                zip_path,
                md5=archive.md5,
                progress=progress,
                timeout=timeout,
                max_bytes=NMNIST_MAX_ARCHIVE_BYTES,
            )
            downloaded.append(archive.filename)
        archives[archive.filename] = zip_path
        if extract:
            split_dirs[archive.folder] = _extract_split(zip_path, archive, nmnist_dir)
            extracted.append(archive.filename)
    return NMNISTDownload(root, archives, split_dirs, tuple(downloaded), tuple(extracted))
