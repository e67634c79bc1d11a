"""Files written so that a crash leaves the old file or the new one, never a torn one.

:func:`atomic_write` writes into a temporary file ``.<name>.tmp-<pid>`` in the same folder,
``fsync``s it, renames it over the target (``os.replace``, atomic on POSIX and Windows) and
``fsync``s the folder. The temporary files of writers that were killed (``kill -9``, OOM, power
loss) are removed by the next write (:func:`remove_stale_temporaries`), never a live writer's.
"""

from __future__ import annotations

import glob
import os
from pathlib import Path


def _fsync_directory(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:  # e.g. platforms that cannot open folders; the rename is still atomic
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (OSError, OverflowError):  # e.g. another user's process: leave its file alone
        return True
    return True


def remove_stale_temporaries(directory: Path, name_glob: str = "*") -> None:
    """Delete ``.<name>.tmp-<pid>`` files left in ``directory`` by writers that were killed.

    A process killed between creating its temporary file and renaming it (``kill -9``, OOM,
    power loss) leaves the file behind; only files whose ``pid`` no longer runs are removed, so
    a live writer's file is never touched.
    """
    try:
        candidates = list(Path(directory).glob(f".{name_glob}.tmp-*"))
    except OSError:
        return
    for candidate in candidates:
        pid = candidate.name.rpartition(".tmp-")[2]
        if pid.isdigit() and int(pid) != os.getpid() and not _pid_alive(int(pid)):
            candidate.unlink(missing_ok=True)


def atomic_write(path: Path, write) -> None:
    """Create ``path`` atomically: ``write(file)`` into a temporary file, fsync, rename, fsync dir.

    Temporary files of ``path`` left by killed writers are removed first.
    """
    path = Path(path)
    remove_stale_temporaries(path.parent, glob.escape(path.name))
    temporary = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        with open(temporary, "wb") as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    finally:
        if temporary.exists():
            temporary.unlink()
    _fsync_directory(path.parent)


def atomic_write_text(path: Path, text: str) -> None:
    """:func:`atomic_write` of UTF-8 text."""
    atomic_write(path, lambda handle: handle.write(text.encode("utf-8")))


__all__ = ["atomic_write", "atomic_write_text", "remove_stale_temporaries"]
