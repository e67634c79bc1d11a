"""This process's resident memory, read the same way by the bench, the comparison and the fuzzer."""

from __future__ import annotations

import resource
import sys
from pathlib import Path


def status_bytes(field: str) -> int | None:
    """A ``/proc/self/status`` memory field (``VmRSS``, ``VmHWM``) in bytes, or None off Linux."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(f"{field}:"):
                return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def peak_rss_bytes() -> int:
    """This process's peak resident memory in bytes (``VmHWM`` on Linux, ``ru_maxrss`` elsewhere)."""
    # VmHWM belongs to this process's own address space. ru_maxrss would not do: Linux carries it
    # over exec from the forking parent, so a fresh worker would report the benchmark's own peak.
    peak = status_bytes("VmHWM")
    if peak is not None:
        return peak
    maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(maxrss if sys.platform == "darwin" else maxrss * 1024)  # KiB on Linux, bytes on macOS


__all__ = ["status_bytes", "peak_rss_bytes"]
