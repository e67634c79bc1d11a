"""One ``eggroll-snn train`` subprocess of a fault-injection campaign, signalled when a trigger fires.

:func:`run_session` starts (or resumes) training, polls the run folder and sends a signal at a
``time``, ``progress`` (metrics size) or ``write`` (an atomic write's temporary file) moment.
"""

from __future__ import annotations

import dataclasses
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

TEMPORARY_MARK = ".tmp-"  # atomic writes go through ".<name>.tmp-<pid>"


@dataclasses.dataclass
class Session:
    """One ``train`` subprocess: how it ended and where it was when a signal hit it."""

    command: str  # "fresh" or "resume"
    trigger: str | None  # the kill trigger, None for a session left to finish
    returncode: int
    signalled: bool  # the signal was sent while the process was still running
    seconds: float
    metrics_bytes_at_signal: int = -1
    temporary_at_signal: bool = False
    wrote_metrics_before_signal: bool = False  # False: killed in start-up (imports, data, compile)
    output: str = ""


@dataclasses.dataclass
class Campaign:
    """Paths and options shared by every session."""

    work_dir: Path
    config_path: Path
    data_root: Path
    env: dict
    session_timeout_s: float
    reference_dir: Path | None = None
    reference_seconds: float = 0.0
    reference_metrics_bytes: int = 0


def _temporary_files(run_dir: Path) -> list[Path]:
    found = []
    for folder in (run_dir, run_dir / "checkpoints"):
        try:
            found += [Path(entry.path) for entry in os.scandir(folder) if TEMPORARY_MARK in entry.name]
        except FileNotFoundError:
            pass
    return found


def metrics_size(run_dir: Path) -> int:
    """Bytes of ``run_dir/metrics.jsonl`` now (0 while it does not exist)."""
    try:
        return (run_dir / "metrics.jsonl").stat().st_size
    except FileNotFoundError:
        return 0


def _metrics_version(run_dir: Path) -> tuple:
    """Identity of the metrics file's current content (inode, size, mtime), () when missing."""
    try:
        stat = (run_dir / "metrics.jsonl").stat()
    except FileNotFoundError:
        return ()
    return stat.st_ino, stat.st_size, stat.st_mtime_ns


def interruptible_cli(*args: str) -> list[str]:
    """The command line of ``eggroll-snn *args`` in a Python that raises KeyboardInterrupt on SIGINT.

    A job started with ``&`` from a non-interactive shell inherits SIGINT ignored, and a Python
    started so keeps ignoring it: a Ctrl-C trial would not interrupt anything. The handler is
    restored in the child's own code (a ``preexec_fn`` would run Python between fork and exec of a
    multithreaded parent).
    """
    start = "import signal, sys; signal.signal(signal.SIGINT, signal.default_int_handler); " \
        "from eggroll_snn.cli import main; sys.exit(main(sys.argv[1:]))"
    return [sys.executable, "-c", start, *args]


def run_session(campaign: Campaign, run_dir: Path, trigger: tuple | None = None, sig: int = signal.SIGKILL) -> Session:
    """Start (or resume) training into ``run_dir``; send ``sig`` when ``trigger`` fires.

    Args:
      trigger: ``None`` (let it finish), ``("time", seconds)``, ``("progress", bytes)`` (metrics
        file reaches that size) or ``("write", n)`` (the ``n``-th poll that sees a temporary file).
    """
    resume = (run_dir / "config.toml").is_file()
    command = interruptible_cli("train", "--no-progress")
    if resume:
        command += ["--resume", str(run_dir)]
    else:
        command += ["--config", str(campaign.config_path), "--data", str(campaign.data_root), "--out", str(run_dir)]
    log_path = run_dir.parent / f"{run_dir.name}.log"
    start = time.monotonic()
    with open(log_path, "w") as log:
        process = subprocess.Popen(
            command, stdout=log, stderr=subprocess.STDOUT, env=campaign.env, start_new_session=True
        )
        signalled, metrics_bytes, temporary, seen_writes, wrote = False, -1, False, 0, False
        # A resumed session starts with the previous session's metrics file: "progress" counts
        # only once this session has rewritten or appended to it.
        initial_metrics = _metrics_version(run_dir)
        try:
            while process.poll() is None:
                elapsed = time.monotonic() - start
                if elapsed > campaign.session_timeout_s:
                    process.kill()
                    process.wait()
                    raise TimeoutError(f"{' '.join(command)} ran more than {campaign.session_timeout_s} s (a hang?)")
                fire = False
                if trigger is not None and not signalled:
                    kind, value = trigger
                    if kind == "time":
                        fire = elapsed >= value
                    elif kind == "progress":
                        fire = metrics_size(run_dir) >= value and _metrics_version(run_dir) != initial_metrics
                    elif kind == "write" and _temporary_files(run_dir):
                        seen_writes += 1
                        fire = seen_writes >= value
                if fire:
                    metrics_bytes = metrics_size(run_dir)
                    wrote = _metrics_version(run_dir) != initial_metrics
                    process.send_signal(sig)
                    signalled = True
                    if sig == signal.SIGKILL:
                        process.wait()
                        temporary = bool(_temporary_files(run_dir))
                    continue
                time.sleep(0.001)
        finally:
            if process.poll() is None:  # the script itself was interrupted
                process.kill()
                process.wait()
    return Session(
        command="resume" if resume else "fresh",
        trigger=None if trigger is None else trigger[0],
        returncode=process.returncode,
        signalled=signalled and process.returncode in (-sig, 130 if sig == signal.SIGINT else -sig),
        seconds=time.monotonic() - start,
        metrics_bytes_at_signal=metrics_bytes,
        temporary_at_signal=temporary,
        wrote_metrics_before_signal=wrote,
        output=log_path.read_text(errors="replace"),
    )
