"""Time preprocessing a full-size N-MNIST training split (60,000 recordings) into the frame cache.

    python benchmarks/preprocess.py [--count 60000] [--workers 1 2] [--pool 2] [--time-bins 10]

Builds a split of ``--count`` recordings in a temporary folder (never in the repository) from the
900 real recordings of the shared subset: recording ``i`` is real recording ``i mod 900`` shifted
by ``-1..+1`` pixels in x and ``0..800`` us in time, re-encoded with
:func:`eggroll_snn.data.events.encode_events`, so the split has every digit, realistic sizes
(about 20 kB each) and no two files alike. Then times :func:`load_split_frames` with an empty
cache, once per ``--workers`` value, and a cache hit. The files were just written, so they are in
the operating system's page cache: the time is the CPU cost, not the cost of a cold disk.
The target of the project is at most 120 s on 2 cores.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from eggroll_snn.data.cache import load_split_frames
from eggroll_snn.data.events import encode_events
from eggroll_snn.data.frames import FrameConfig
from eggroll_snn.data.nmnist import NMNIST

DEFAULT_SUBSET = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "nmnist-small"


def write_split(real_root: Path, target: Path, count: int) -> None:
    """Write ``count`` varied copies of the real recordings as ``target/NMNIST/Train/<d>/<NNNNN>.bin``."""
    real = [NMNIST(real_root, split) for split in ("train", "test")]
    recordings = [dataset[index] for dataset in real for index in range(len(dataset))]
    for label in range(10):
        (target / "NMNIST" / "Train" / str(label)).mkdir(parents=True)
    for number in range(count):
        events, label = recordings[number % len(recordings)]
        varied = events.copy()
        varied["x"] += number // len(recordings) % 3 - 1
        varied["t"] += number % 5 * 200
        varied = varied[(varied["x"] >= 0) & (varied["x"] < 34)]
        path = target / "NMNIST" / "Train" / str(label) / f"{number + 1:05d}.bin"
        path.write_bytes(encode_events(varied))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=60_000, help="recordings in the split")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2], help="process counts to time")
    parser.add_argument("--pool", type=int, default=2)
    parser.add_argument("--time-bins", type=int, default=10)
    parser.add_argument("--subset", type=Path, default=Path(os.environ.get("EGGROLL_SNN_NMNIST_SMALL", DEFAULT_SUBSET)))
    args = parser.parse_args(argv)
    config = FrameConfig(num_time_bins=args.time_bins, pool=args.pool)
    work = Path(tempfile.mkdtemp(prefix="eggroll-preprocess-"))
    try:
        start = time.perf_counter()
        write_split(args.subset, work / "data", args.count)
        print(f"wrote {args.count} recordings to {work / 'data'} in {time.perf_counter() - start:.1f} s")
        for run, workers in enumerate(args.workers):
            cache_dir = work / f"cache-{run}"  # a fresh cache for every run
            start = time.perf_counter()
            frames, labels = load_split_frames(work / "data", "train", config, cache_dir=cache_dir, workers=workers)
            seconds = time.perf_counter() - start
            print(
                f"workers={workers}: {seconds:.1f} s for {len(labels)} recordings "
                f"({seconds / len(labels) * 1e6:.0f} us each) -> {frames.shape} uint8, "
                f"{frames.nbytes / 2**20:.0f} MiB, {int(np.bincount(labels).min())}+ per digit"
            )
            del frames
        start = time.perf_counter()
        load_split_frames(work / "data", "train", config, cache_dir=cache_dir)
        print(f"cache hit (lists {args.count} files, maps the array): {time.perf_counter() - start:.2f} s")
    finally:
        start = time.perf_counter()
        shutil.rmtree(work, ignore_errors=True)
        print(f"removed the temporary folder in {time.perf_counter() - start:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
