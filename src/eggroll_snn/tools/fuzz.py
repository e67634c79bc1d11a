"""Fuzz the readers of untrusted input: only the documented errors may escape.

Usage (with the package installed; ``python scripts/fuzz.py`` does the same)::

    python -m eggroll_snn.tools.fuzz --runs 20000       # every target, 20,000 inputs each
    python -m eggroll_snn.tools.fuzz --targets nmnist_zip --engine atheris --runs 100000

Targets (each takes one byte string, see :data:`~eggroll_snn.tools.fuzz_targets.TARGETS`):

* ``events``: ``decode_events`` of the bytes. Only ``DataFormatError``; on success one event per
  5 bytes and ``encode_events`` gives the bytes back.
* ``nmnist_zip``: the bytes as ``Train.zip``; ``NMNIST(root, "train")`` (strict and with
  ``skip_bad``) and every recording read. Only ``DataFormatError`` (``ArchiveError`` is one); each
  recording has ``size / 5`` events and a label 0..9.
* ``config_toml``: the bytes (UTF-8, invalid bytes replaced) as a TOML config file. Only
  ``ConfigError``, whose message starts with the file's name; an accepted config survives
  ``loads(dumps(config))``.
* ``config_overrides``: each line of the bytes as ``--set section.key=value``. Only
  ``ConfigError``, and its message names an option (``section.key``) or a section.
* ``checkpoint_npz``: the bytes as a checkpoint's ``.npz`` with a description whose size and
  SHA-256 match them (what a crafted checkpoint looks like), then resume's path:
  ``latest_valid_checkpoint`` + ``load_checkpoint``, and ``load_tree``. Only ``CheckpointError``.
* ``checkpoint_json``: the bytes as the checkpoint's ``.json`` beside a valid ``.npz``. Same rule.

Engines: ``mutate`` (seeded random mutations of valid seed inputs: bit flips, byte sets,
inserts, deletes, duplications, truncation, splices) and ``atheris`` (coverage-guided libFuzzer,
when the ``atheris`` package is installed; one subprocess per target). An input slower than
``--slow-seconds`` counts as a hang. Every input that raised anything else is saved under
``--out`` and counted as *unexpected*.

It prints, per target and in total: inputs, distinct failure kinds (exception type + the fixed
words of the message, see :func:`failure_kind`; for config errors the option and what was
wrong, see :func:`config_kind`), unexpected, the slowest input and the peak memory. Exit status
0 when nothing unexpected happened.
"""


from __future__ import annotations

import argparse
import collections
import dataclasses
import hashlib
import json
import os
import random
import shutil
import struct
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path

from eggroll_snn.process_memory import peak_rss_bytes
from eggroll_snn.tools.fuzz_targets import (  # noqa: F401 - the targets are part of this tool's interface
    DEFAULT_DATA,
    TARGETS,
    PropertyViolation,
    Target,
    Workspace,
    config_kind,
    failure_kind,
    run_checkpoint_json,
    run_checkpoint_npz,
    run_config_overrides,
    run_config_toml,
    run_events,
    run_nmnist_zip,
    seeds_checkpoint_json,
    seeds_checkpoint_npz,
    seeds_config_overrides,
    seeds_config_toml,
    seeds_events,
    seeds_nmnist_zip,
)

_INTERESTING = (0, 1, 0x7F, 0x80, 0xFF)
_INTERESTING_WORDS = (0, 1, 0xFFFFFFFF, 0x7FFFFFFF, 0x80000000, 0xFFFF, 0x10000)


def mutate(seed: bytes, rng: random.Random, others: list[bytes] = ()) -> bytes:
    """1 to 8 random edits of ``seed`` (the same ``rng`` state gives the same result)."""
    data = bytearray(seed)
    edits = 1
    while edits < 8 and rng.random() < 0.5:  # 1 edit half the time, 2 a quarter, ...
        edits += 1
    for _ in range(edits):
        op = rng.randrange(9)
        position = rng.randrange(len(data) + 1)
        if op == 0 and data:  # flip one bit
            data[min(position, len(data) - 1)] ^= 1 << rng.randrange(8)
        elif op == 1 and data:  # set one byte
            data[min(position, len(data) - 1)] = rng.choice((rng.randrange(256), *_INTERESTING))
        elif op == 2:  # insert random bytes
            data[position:position] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 16)))
        elif op == 3 and data:  # delete a range
            del data[position : position + rng.randint(1, 64)]
        elif op == 4 and data:  # duplicate a range
            start = rng.randrange(len(data))
            data[position:position] = data[start : start + rng.randint(1, 64)]
        elif op == 5:  # truncate
            del data[position:]
        elif op == 6 and len(data) >= 4:  # overwrite a 32-bit word (sizes, offsets, counts)
            at = min(position, len(data) - 4)
            data[at : at + 4] = struct.pack("<I", rng.choice(_INTERESTING_WORDS + (rng.getrandbits(32),)))
        elif op == 7 and others:  # splice with another seed
            other = rng.choice(others)
            cut = rng.randrange(len(other) + 1)
            data = data[:position] + bytearray(other[cut:])
        elif op == 8 and data:  # overwrite a range with one repeated byte
            data[position : position + rng.randint(1, 32)] = bytes([rng.choice(_INTERESTING)]) * rng.randint(1, 32)
    return bytes(data)


# --------------------------------------------------------------------------------------------
# Running


@dataclasses.dataclass
class Stats:
    """What one target's fuzzing found."""

    target: str
    inputs: int = 0
    kinds: collections.Counter = dataclasses.field(default_factory=collections.Counter)
    unexpected: collections.Counter = dataclasses.field(default_factory=collections.Counter)
    slowest_s: float = 0.0
    seconds: float = 0.0
    peak_rss_mb: float = 0.0

    @property
    def failure_kinds(self) -> int:
        return sum(1 for kind in self.kinds if not kind.endswith("ok") and kind != "no valid checkpoint")

    @property
    def unexpected_count(self) -> int:
        return sum(self.unexpected.values())

    def to_dict(self) -> dict:
        return {
            "target": self.target, "inputs": self.inputs, "failure_kinds": self.failure_kinds,
            "unexpected": self.unexpected_count, "kinds": dict(self.kinds), "unexpected_kinds": dict(self.unexpected),
            "slowest_s": round(self.slowest_s, 4), "seconds": round(self.seconds, 1), "peak_rss_mb": self.peak_rss_mb,
        }

    @classmethod
    def from_dict(cls, record: dict) -> Stats:
        return cls(
            record["target"], record["inputs"], collections.Counter(record["kinds"]),
            collections.Counter(record["unexpected_kinds"]), record["slowest_s"], record["seconds"], record["peak_rss_mb"],
        )


class Runner:
    """Feeds inputs to one target and records outcomes, unexpected errors and hangs."""

    def __init__(self, name: str, workspace: Workspace, out_dir: Path, slow_seconds: float):
        self.name, self.workspace, self.out_dir, self.slow_seconds = name, workspace, out_dir, slow_seconds
        self.target = TARGETS[name]
        self.stats = Stats(name)
        self.start = time.monotonic()

    def feed(self, data: bytes) -> None:
        started = time.monotonic()
        try:
            outcomes = self.target.run(data, self.workspace)
        except Exception as error:  # noqa: BLE001 - anything undocumented is what we look for
            kind = f"{type(error).__name__}: {str(error)[:120]}"
            self.stats.unexpected[kind] += 1
            self._save(data, kind, traceback.format_exc())
            outcomes = []
        elapsed = time.monotonic() - started
        if elapsed > self.slow_seconds:
            kind = f"slow input: {elapsed:.1f} s > {self.slow_seconds} s"
            self.stats.unexpected[kind] += 1
            self._save(data, kind, "")
        self.stats.slowest_s = max(self.stats.slowest_s, elapsed)
        self.stats.inputs += 1
        self.stats.kinds.update(outcomes)

    def _save(self, data: bytes, kind: str, trace: str) -> None:
        folder = self.out_dir / self.name
        folder.mkdir(parents=True, exist_ok=True)
        digest = hashlib.sha256(data).hexdigest()[:16]
        (folder / f"{digest}.input").write_bytes(data)
        (folder / f"{digest}.txt").write_text(f"{kind}\n\n{trace}")

    def finish(self) -> Stats:
        self.stats.seconds = time.monotonic() - self.start
        self.stats.peak_rss_mb = round(peak_rss_bytes() / 2**20, 1)
        return self.stats


def fuzz_mutate(name: str, runs: int, seed: int, workspace: Workspace, out_dir: Path, slow_seconds: float = 5.0) -> Stats:
    """``runs`` inputs: the seeds themselves, then seeded mutations of them."""
    runner = Runner(name, workspace, out_dir, slow_seconds)
    seeds = TARGETS[name].seeds(workspace)
    rng = random.Random(f"{seed}/{name}")
    for data in seeds[:runs]:
        runner.feed(data)
    for _ in range(runs - min(runs, len(seeds))):
        runner.feed(mutate(rng.choice(seeds), rng, seeds))
    return runner.finish()


def _atheris_child(name: str, runs: int, seed: int, stats_path: Path, out_dir: Path, slow_seconds: float, data_root) -> None:
    """Run atheris on one target in this process; write the stats after ``runs`` inputs and exit."""
    import atheris

    # Coverage of our modules and of the pure-Python parsers under them guides the mutations;
    # zipfile and tomllib are re-imported so that they get instrumented (nothing of ours holds
    # the old modules yet: eggroll_snn is imported below).
    parsers = ["zipfile", "tomllib", "tomllib._parser", "tomllib._re"]
    for module in parsers:
        sys.modules.pop(module, None)
    with atheris.instrument_imports(include=["eggroll_snn", *parsers]):
        import tomllib  # noqa: F401
        import zipfile  # noqa: F401

        import eggroll_snn.checkpoint  # noqa: F401
        import eggroll_snn.config  # noqa: F401
        import eggroll_snn.data.archive  # noqa: F401
        import eggroll_snn.data.events  # noqa: F401
        import eggroll_snn.data.nmnist  # noqa: F401
    workspace = Workspace(data_root, base=out_dir)  # left behind: libFuzzer ends the process
    runner = Runner(name, workspace, out_dir, slow_seconds)
    corpus = out_dir / "corpus" / name
    corpus.mkdir(parents=True, exist_ok=True)
    for index, data in enumerate(TARGETS[name].seeds(workspace)):
        (corpus / f"seed-{index}").write_bytes(data)

    def one_input(data: bytes) -> None:
        runner.feed(data)
        if runner.stats.inputs >= runs:
            stats_path.write_text(json.dumps(runner.finish().to_dict()))
            os._exit(0)  # libFuzzer's own exit skips Python's clean-up; the stats are written

    atheris.Setup(
        [sys.argv[0], str(corpus), f"-seed={seed + 1}", "-max_len=65536", "-rss_limit_mb=4096", "-print_final_stats=0"],
        one_input,
    )
    atheris.Fuzz()


def fuzz_atheris(name: str, runs: int, seed: int, out_dir: Path, slow_seconds: float, data_root) -> Stats:
    stats_path = out_dir / f"{name}.stats.json"
    command = [
        sys.executable, "-m", "eggroll_snn.tools.fuzz", "--atheris-child", name, "--runs", str(runs), "--seed", str(seed),
        "--out", str(out_dir), "--slow-seconds", str(slow_seconds), "--data", str(data_root),
    ]
    result = subprocess.run(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    if not stats_path.is_file():
        raise RuntimeError(f"atheris on {name} stopped early (status {result.returncode}):\n{result.stderr[-3000:]}")
    return Stats.from_dict(json.loads(stats_path.read_text()))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--targets", nargs="+", choices=sorted(TARGETS), default=list(TARGETS))
    parser.add_argument("--runs", type=int, default=5000, help="inputs per target (default: %(default)s)")
    parser.add_argument("--engine", choices=("auto", "mutate", "atheris"), default="auto",
                        help="auto: atheris when installed, else mutate")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="N-MNIST root for seed recordings (optional)")
    parser.add_argument("--out", type=Path, help="folder for unexpected inputs (default: a temporary folder)")
    parser.add_argument("--slow-seconds", type=float, default=5.0, help="an input slower than this is a hang")
    parser.add_argument("--json", type=Path, metavar="FILE", help="also write the figures as JSON")
    parser.add_argument("--atheris-child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    out_dir = args.out or Path(tempfile.mkdtemp(prefix="eggroll-fuzz-out-"))
    out_dir.mkdir(parents=True, exist_ok=True)
    if args.atheris_child:
        _atheris_child(args.atheris_child, args.runs, args.seed, out_dir / f"{args.atheris_child}.stats.json",
                       out_dir, args.slow_seconds, args.data)
        return 1  # not reached
    engine = args.engine
    if engine == "auto":
        try:
            import atheris  # noqa: F401

            engine = "atheris"
        except ImportError:
            engine = "mutate"
    results = []
    workspace = Workspace(args.data) if engine == "mutate" else None
    for name in args.targets:
        if engine == "atheris":
            stats = fuzz_atheris(name, args.runs, args.seed, out_dir, args.slow_seconds, args.data)
        else:
            stats = fuzz_mutate(name, args.runs, args.seed, workspace, out_dir, args.slow_seconds)
        results.append(stats)
        print(
            f"{name:17s} inputs {stats.inputs:7d}  failure kinds {stats.failure_kinds:4d}  unexpected "
            f"{stats.unexpected_count:4d}  ok {sum(n for k, n in stats.kinds.items() if k.endswith('ok')):6d}  "
            f"slowest {stats.slowest_s * 1000:7.1f} ms  peak RSS {stats.peak_rss_mb:.0f} MB  {stats.seconds:.0f} s",
            flush=True,
        )
        for kind, count in stats.unexpected.most_common(10):
            print(f"    UNEXPECTED x{count}: {kind}")
    total_inputs = sum(s.inputs for s in results)
    total_kinds = sum(s.failure_kinds for s in results)
    total_unexpected = sum(s.unexpected_count for s in results)
    print(
        f"total ({engine}): {total_inputs} fuzzed inputs, {total_kinds} distinct failure kinds, "
        f"{total_unexpected} unexpected" + ("" if total_unexpected else " (all handled)")
    )
    if total_unexpected:
        print(f"unexpected inputs and tracebacks saved under {out_dir}")
    if args.json:
        args.json.write_text(json.dumps({"engine": engine, "targets": [s.to_dict() for s in results]}, indent=1) + "\n")
    if workspace is not None:
        shutil.rmtree(workspace.path, ignore_errors=True)
    if not total_unexpected and args.out is None:
        shutil.rmtree(out_dir, ignore_errors=True)
    return 1 if total_unexpected else 0


if __name__ == "__main__":
    sys.exit(main())
