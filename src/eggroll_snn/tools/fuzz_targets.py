"""The fuzz targets: readers of untrusted bytes, their seed inputs and the properties they must keep.

Each target takes one byte string and returns its outcome kinds (``"ok"`` or a failure kind, see
:func:`failure_kind`); a documented error is an outcome, anything else propagates, and a broken
property on success raises :class:`PropertyViolation` (an explicit exception, so ``python -O``
checks the same). :mod:`eggroll_snn.tools.fuzz` feeds them mutated inputs.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import random
import re
import tempfile
import warnings
import zipfile
from pathlib import Path

DEFAULT_DATA = Path("/work/shared/data/nmnist-small")


class PropertyViolation(Exception):
    """A target's property broke on an input it accepted (a round trip, a size, a message)."""


def check(condition: bool, message: str) -> None:
    """Raise :class:`PropertyViolation` with ``message`` unless ``condition`` holds."""
    if not condition:
        raise PropertyViolation(message)


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
        check(str(error).startswith("fuzz.bin: "), f"the message does not start with the file name: {error}")
        return [failure_kind(error, "fuzz.bin")]
    check(
        events.dtype == EVENT_DTYPE and events.shape == (len(data) // 5,) and len(data) % 5 == 0,
        f"{len(data)} bytes decoded to {events.shape} events of {events.dtype}",
    )
    check(encode_events(events) == data, "encode_events(decode_events(data)) differs from data")
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
                    size = dataset.files.entries[index].size
                    check(0 <= label <= 9 and 5 * len(events) == size, f"recording {index}: label {label}, {len(events)} events of {size} bytes")
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
        check(str(error).startswith("fuzz.toml: "), f"the message does not start with the file name: {error}")
        return [config_kind(error)]
    check(loads(dumps(config)) == config, "loads(dumps(config)) differs from the config")
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
            check(named, f"message names neither the override nor its option: {error}")
            return [config_kind(error)]
        overrides[key] = value
    try:
        config = apply_overrides(TrainConfig(), overrides)
    except ConfigError as error:
        # The option given, or (for a check across options) the option it constrains.
        known = [f"{section}.{key}" for section, table in TrainConfig().to_dict().items() for key in table]
        check(any(name in str(error) for name in [*overrides, *known]), f"message names no option: {error}")
        return [config_kind(error)]
    check(loads(dumps(config)) == config, "loads(dumps(config)) differs from the config")
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

    # configs/ of a source checkout (src/eggroll_snn/tools/ -> the root); an installed copy has none
    repository = Path(__file__).resolve().parents[3]
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
