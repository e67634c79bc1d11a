#!/usr/bin/env python
"""Fuzz the readers of untrusted input: only the documented errors may escape.

Usage (from the repository root, with the package installed)::

    python scripts/fuzz.py --runs 20000                 # every target, 20,000 inputs each
    python scripts/fuzz.py --targets nmnist_zip --engine atheris --runs 100000

Targets (each takes one byte string, see :data:`TARGETS`):

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
import io
import json
import os
import random
import re
import resource
import shutil
import struct
import subprocess
import sys
import tempfile
import time
import traceback
import warnings
import zipfile
from pathlib import Path

DEFAULT_DATA = Path("/work/shared/data/nmnist-small")


# --------------------------------------------------------------------------------------------
# Outcomes


def failure_kind(error: BaseException, *sources: object) -> str:
    """``"Type: message template"`` of an error, counted as one failure kind.

    The template keeps only the message's fixed words (first clause): file names, quoted text,
    numbers and every token holding anything but letters (array shapes, dtypes, member paths,
    which echo the input) are dropped, so inputs that fail the same way give the same kind.
    """
    text = str(error)
    for source in sources:
        text = text.replace(str(source), "<file>")
    text = re.sub(r"b?'(?:\\.|[^'\\])*'|b?\"(?:\\.|[^\"\\])*\"", "'…'", text)
    text = re.sub(r"0x[0-9a-fA-F]+|\d+", "N", text.split("; ")[0])
    words = [word.rstrip(",;:.") for word in text.split()]
    return f"{type(error).__name__}: " + " ".join(word for word in words if re.fullmatch(r"[A-Za-z-]+|'…'", word))[:160]


_CONFIG_PHRASES = (
    "is out of range", "has the wrong type", "is not allowed", "is not a section", "unknown section",
    "unknown option", "must be a table", "must look like", "not valid TOML", "a configuration must be",
)


def config_kind(error: BaseException) -> str:
    """Kind of a ConfigError: the option it names and what was wrong (values and user text left out).

    A TOML syntax error keeps its parser message with numbers blanked (line, column).
    """
    from eggroll_snn.config import TrainConfig

    text = str(error)
    if "not valid TOML" in text:
        return failure_kind(error, text.split(": ")[0])
    known = [f"{section}.{key}" for section, table in TrainConfig().to_dict().items() for key in table]
    phrase = next((phrase for phrase in _CONFIG_PHRASES if phrase in text), "<other>")
    named = next((name for name in known if re.search(rf"\b{re.escape(name)}\b", text)), "<other option>")
    if phrase == "must look like":  # the message quotes the malformed override and an example
        named = "<override>"
    return f"{type(error).__name__}: {named} {phrase}"


class Workspace:
    """A private temporary folder the targets write their files into (one per process)."""

    def __init__(self, data_root: Path | None = DEFAULT_DATA, base: Path | None = None):
        self.path = Path(tempfile.mkdtemp(prefix="eggroll-fuzz-", dir=base))
        self.data_root = data_root if data_root is not None and (Path(data_root) / "NMNIST").is_dir() else None
        self._checkpoint = None

    # -- events ------------------------------------------------------------------------------

    def recordings(self, count: int = 6, events: int = 60) -> list[tuple[str, bytes]]:
        """``(member name, bytes)`` of short recordings: real ones when the subset is there."""
        if self.data_root is not None:
            files = sorted((self.data_root / "NMNIST" / "Train").glob("*/*.bin"))
            step = max(1, len(files) // count)
            return [(f"Train/{f.parent.name}/{f.name}", f.read_bytes()[: 5 * events]) for f in files[::step][:count]]
        rng = random.Random(0)
        out = []
        for index in range(count):
            raw = bytearray()
            for t in range(events):
                raw += bytes([rng.randrange(34), rng.randrange(34), rng.randrange(2) << 7, 0, t & 0xFF])
            out.append((f"Train/{index % 10}/{index:05d}.bin", bytes(raw)))
        return out

    # -- checkpoint --------------------------------------------------------------------------

    def checkpoint_template(self):
        """``(like, json text, npz bytes)`` of a small valid checkpoint (built once)."""
        if self._checkpoint is None:
            import jax
            import jax.numpy as jnp

            from eggroll_snn.checkpoint import save_checkpoint

            tree = {
                "params": {"weight": jnp.arange(12, dtype=jnp.float32).reshape(4, 3), "bias": jnp.ones(4, jnp.float32)},
                "generation": jnp.asarray(5, jnp.int32),
                "key": jax.random.key(3),
            }
            folder = self.path / "template"
            json_path = save_checkpoint(folder, 5, tree, {"train": {"seed": 0}})
            like = jax.eval_shape(lambda: tree)
            self._checkpoint = like, json_path.read_text(), json_path.with_suffix(".npz").read_bytes()
        return self._checkpoint


# --------------------------------------------------------------------------------------------
# Targets: bytes -> outcome kinds; anything but the documented errors propagates


def run_events(data: bytes, workspace: Workspace) -> list[str]:
    from eggroll_snn.data.events import EVENT_DTYPE, decode_events, encode_events
    from eggroll_snn.errors import DataFormatError

    try:
        events = decode_events(data, source="fuzz.bin")
    except DataFormatError as error:
        assert str(error).startswith("fuzz.bin: "), error
        return [failure_kind(error, "fuzz.bin")]
    assert events.dtype == EVENT_DTYPE and events.shape == (len(data) // 5,) and len(data) % 5 == 0
    assert encode_events(events) == data
    return ["ok"]


def run_nmnist_zip(data: bytes, workspace: Workspace) -> list[str]:
    from eggroll_snn.data.nmnist import NMNIST
    from eggroll_snn.errors import DataFormatError

    root = workspace.path / "nmnist"
    root.mkdir(exist_ok=True)
    (root / "Train.zip").write_bytes(data)
    outcomes = []
    for skip_bad in (False, True):
        try:
            dataset = NMNIST(root, "train", skip_bad=skip_bad)
            try:
                for index in range(len(dataset)):
                    events, label = dataset[index]
                    assert 0 <= label <= 9 and 5 * len(events) == dataset.files.entries[index].size
            finally:
                dataset.close()
            outcomes.append("ok")
        except DataFormatError as error:
            outcomes.append(("skip_bad " if skip_bad else "") + failure_kind(error, root / "Train.zip", root))
    return outcomes


def run_config_toml(data: bytes, workspace: Workspace) -> list[str]:
    from eggroll_snn.config import dumps, loads
    from eggroll_snn.errors import ConfigError

    text = data.decode("utf-8", errors="replace")
    try:
        config = loads(text, source="fuzz.toml")
    except ConfigError as error:
        assert str(error).startswith("fuzz.toml: "), error
        return [config_kind(error)]
    assert loads(dumps(config)) == config
    return ["ok"]


def run_config_overrides(data: bytes, workspace: Workspace) -> list[str]:
    from eggroll_snn.config import TrainConfig, apply_overrides, dumps, loads, parse_assignment
    from eggroll_snn.errors import ConfigError

    lines = [line for line in data.decode("utf-8", errors="replace").splitlines() if line.strip()]
    overrides = {}
    for line in lines:
        try:
            key, value = parse_assignment(line)
        except ConfigError as error:
            named = repr(line) in str(error) or line.partition("=")[0].strip() in str(error)
            assert named, f"message names neither the override nor its option: {error}"
            return [config_kind(error)]
        overrides[key] = value
    try:
        config = apply_overrides(TrainConfig(), overrides)
    except ConfigError as error:
        # The option given, or (for a check across options) the option it constrains.
        known = [f"{section}.{key}" for section, table in TrainConfig().to_dict().items() for key in table]
        assert any(name in str(error) for name in [*overrides, *known]), f"message names no option: {error}"
        return [config_kind(error)]
    assert loads(dumps(config)) == config
    return ["ok"]


def _checkpoint_outcomes(folder: Path, like) -> list[str]:
    from eggroll_snn.checkpoint import CheckpointWarning, latest_valid_checkpoint, load_checkpoint, load_tree
    from eggroll_snn.errors import CheckpointError

    outcomes = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CheckpointWarning)
        found = latest_valid_checkpoint(folder)
    if found is None:
        outcomes.append("no valid checkpoint")
    else:
        try:
            load_checkpoint(found, like, config={"train": {"seed": 0}})
            outcomes.append("ok")
        except CheckpointError as error:
            outcomes.append(failure_kind(error, found.json_path, found.npz_path))
    json_path = folder / "gen-00000005.json"
    try:
        load_tree(json_path, like)
        outcomes.append("load_tree ok")
    except CheckpointError as error:
        outcomes.append("load_tree " + failure_kind(error, json_path, json_path.with_suffix(".npz")))
    return outcomes


def run_checkpoint_npz(data: bytes, workspace: Workspace) -> list[str]:
    like, json_text, _ = workspace.checkpoint_template()
    folder = workspace.path / "checkpoint_npz"
    folder.mkdir(exist_ok=True)
    (folder / "gen-00000005.npz").write_bytes(data)
    description = json.loads(json_text)
    description["npz_bytes"], description["npz_sha256"] = len(data), hashlib.sha256(data).hexdigest()
    (folder / "gen-00000005.json").write_text(json.dumps(description))
    return _checkpoint_outcomes(folder, like)


def run_checkpoint_json(data: bytes, workspace: Workspace) -> list[str]:
    like, _, npz_bytes = workspace.checkpoint_template()
    folder = workspace.path / "checkpoint_json"
    folder.mkdir(exist_ok=True)
    (folder / "gen-00000005.npz").write_bytes(npz_bytes)
    (folder / "gen-00000005.json").write_bytes(data)
    return _checkpoint_outcomes(folder, like)


# --------------------------------------------------------------------------------------------
# Seeds: valid inputs the mutations start from


def _zip_of(members: list[tuple[str, bytes]], compression: int) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=compression) as archive:
        for name, content in members:
            archive.writestr(name, content)
    return buffer.getvalue()


def seeds_events(workspace: Workspace) -> list[bytes]:
    return [content for _, content in workspace.recordings()] + [b"", b"\x21\x21\xff\xff\xff"]


def seeds_nmnist_zip(workspace: Workspace) -> list[bytes]:
    members = workspace.recordings()
    return [
        _zip_of(members, zipfile.ZIP_STORED),
        _zip_of(members, zipfile.ZIP_DEFLATED),
        _zip_of(members, zipfile.ZIP_BZIP2),
        _zip_of(members, zipfile.ZIP_LZMA),
        _zip_of([(f"NMNIST/{name}", content) for name, content in members[:3]], zipfile.ZIP_DEFLATED),
        _zip_of(members[:2] + [("Train/x/a.bin", b"12345"), ("__MACOSX/._a", b"junk"), ("Train/1/", b"")], zipfile.ZIP_STORED),
    ]


def seeds_config_toml(workspace: Workspace) -> list[bytes]:
    from eggroll_snn.config import TrainConfig, dumps

    repository = Path(__file__).resolve().parents[1]
    texts = [path.read_bytes() for path in sorted((repository / "configs").glob("*.toml"))]
    return texts + [dumps(TrainConfig()).encode()]


def seeds_config_overrides(workspace: Workspace) -> list[bytes]:
    """Every set option of the default config as ``section.key=value`` (its TOML line), four a seed."""
    from eggroll_snn.config import TrainConfig, dumps

    lines, section = [], ""
    for line in dumps(TrainConfig()).splitlines():
        if line.startswith("["):
            section = line.strip("[]")
        elif " = " in line and not line.startswith("#"):
            key, _, value = line.partition(" = ")
            lines.append(f"{section}.{key}={value}")
    return ["\n".join(lines[i : i + 4]).encode() for i in range(0, len(lines), 4)]


def seeds_checkpoint_npz(workspace: Workspace) -> list[bytes]:
    _, _, npz_bytes = workspace.checkpoint_template()
    return [npz_bytes]


def seeds_checkpoint_json(workspace: Workspace) -> list[bytes]:
    _, json_text, _ = workspace.checkpoint_template()
    return [json_text.encode()]


@dataclasses.dataclass(frozen=True)
class Target:
    run: object  # (bytes, Workspace) -> list[str]
    seeds: object  # Workspace -> list[bytes]


TARGETS = {
    "events": Target(run_events, seeds_events),
    "nmnist_zip": Target(run_nmnist_zip, seeds_nmnist_zip),
    "config_toml": Target(run_config_toml, seeds_config_toml),
    "config_overrides": Target(run_config_overrides, seeds_config_overrides),
    "checkpoint_npz": Target(run_checkpoint_npz, seeds_checkpoint_npz),
    "checkpoint_json": Target(run_checkpoint_json, seeds_checkpoint_json),
}


# --------------------------------------------------------------------------------------------
# Mutations


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
        self.stats.peak_rss_mb = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
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
        sys.executable, __file__, "--atheris-child", name, "--runs", str(runs), "--seed", str(seed),
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
