"""Hostile inputs: property-based tests of the readers of untrusted data.

Only the documented errors may escape: ``DataFormatError`` (``ArchiveError``) from the event
decoder and the N-MNIST zip reader, ``ConfigError`` from the config parser, ``CheckpointError``
from checkpoint loading. The targets and the mutation operator are eggroll_snn.tools.fuzz's (which
also runs them for long); each target asserts its own properties on success (sizes bounded by
the input, round trips). Hypothesis runs derandomised with a bounded number of examples and a
per-example deadline, so the file is reproducible and takes well under 30 s.
"""

from __future__ import annotations

import datetime
import hashlib
import io
import json
import re
import stat
import struct
import zipfile
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import HealthCheck, event, example, given, settings
from hypothesis import strategies as st

from eggroll_snn import checkpoint
from eggroll_snn.tools import fuzz
from eggroll_snn.config import TrainConfig, apply_overrides, dumps, loads, parse_assignment
from eggroll_snn.data.events import EVENT_DTYPE, decode_events
from eggroll_snn.data.nmnist import NMNIST
from eggroll_snn.errors import CheckpointError, ConfigError, DataFormatError


FUZZ = settings(
    max_examples=150,
    deadline=datetime.timedelta(seconds=5),  # a hang fails the example
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


@pytest.fixture(scope="module")
def workspace(nmnist_small_root):
    return fuzz.Workspace(nmnist_small_root)


def _mutants(seeds_of):
    """Strategy: a seed input of the target, mutated 1-8 times by eggroll_snn.tools.fuzz's operator."""
    return st.builds(lambda rng, data: fuzz.mutate(data, rng), st.randoms(use_true_random=False), seeds_of)


def _assert_documented(outcomes: list[str], errors: tuple[str, ...], count: int) -> None:
    """``count`` outcomes, each an ``ok`` kind or the kind of one of the documented ``errors``."""
    assert len(outcomes) == count, outcomes
    for outcome in outcomes:
        kind = outcome.removeprefix("skip_bad ").removeprefix("load_tree ")
        assert kind in ("ok", "no valid checkpoint") or kind.startswith(tuple(f"{name}: " for name in errors)), outcome


_DATA_ERRORS = ("DataFormatError", "ArchiveError")


# --------------------------------------------------------------------------------------------
# Event decoder


@FUZZ
@given(data=st.binary(max_size=4000))
def test_decode_events_random_bytes(workspace, data):
    (outcome,) = fuzz.run_events(data, workspace)
    assert outcome == "ok" or outcome.startswith("DataFormatError: ")


@FUZZ
@given(
    events=st.lists(
        st.tuples(st.integers(0, 33), st.integers(0, 33), st.integers(0, 2**23 - 1), st.integers(0, 1)), max_size=300
    )
)
def test_decode_events_reads_back_every_valid_event(events):
    data = b"".join(bytes([x, y, p << 7 | t >> 16, t >> 8 & 0xFF, t & 0xFF]) for x, y, t, p in events)
    decoded = decode_events(data)
    assert decoded.dtype == EVENT_DTYPE and len(decoded) == len(events)
    assert [tuple(int(v) for v in event) for event in decoded[["x", "y", "t", "p"]]] == [tuple(e) for e in events]


def test_a_broken_round_trip_raises_property_violation_not_a_bare_assert(workspace, monkeypatch):
    # An explicit exception, so the check also holds under ``python -O`` (which strips asserts).
    monkeypatch.setattr("eggroll_snn.data.events.encode_events", lambda events: b"")
    with pytest.raises(fuzz.PropertyViolation, match="differs from data"):
        fuzz.run_events(bytes([1, 2, 0, 0, 9]), workspace)


# --------------------------------------------------------------------------------------------
# N-MNIST zip reader


@FUZZ
@given(data=st.binary(max_size=2000))
def test_nmnist_zip_of_random_bytes(workspace, data):
    outcomes = fuzz.run_nmnist_zip(data, workspace)
    assert all("Error: " in outcome or outcome == "ok" for outcome in outcomes)


@settings(FUZZ, max_examples=400)
@given(data=st.data())
def test_nmnist_mutated_zip(workspace, data):
    seeds = fuzz.seeds_nmnist_zip(workspace)
    zipped = data.draw(_mutants(st.sampled_from(seeds)))
    _assert_documented(fuzz.run_nmnist_zip(zipped, workspace), _DATA_ERRORS, 2)  # strict, then skip_bad


_VALID_NAME = re.compile(r"^(NMNIST/)?Train/[0-9]/[a-z]{1,6}\.bin$")
_NAMES = st.one_of(
    st.from_regex(_VALID_NAME, fullmatch=True),
    st.sampled_from(["Train/x/a.bin", "../Train/1/a.bin", "/Train/1/a.bin", "Train/1/a.txt", "Train/1/", "",
                     "Train/2/a:b.bin", "Train/3/\x01.bin", "Train\\4\\a.bin", "C:Train/5/a.bin", "Test/1/a.bin"]),
    st.text(st.characters(blacklist_characters="\x00", codec="utf-8"), max_size=20),  # zipfile cuts names at NUL
)
_EVENT_BYTES = st.lists(
    st.tuples(st.integers(0, 33), st.integers(0, 33), st.integers(0, 255), st.integers(0, 255), st.integers(0, 255)),
    min_size=1, max_size=20,
).map(lambda events: b"".join(bytes(event) for event in events))
_SORTED_EVENT_BYTES = st.lists(  # in time order, as the official recordings are
    st.tuples(st.integers(0, 33), st.integers(0, 33), st.integers(0, 255), st.integers(0, 255), st.integers(0, 255)),
    min_size=1, max_size=20,
).map(lambda events: b"".join(bytes(e) for e in sorted(events, key=lambda e: ((e[2] & 0x7F) << 16) | (e[3] << 8) | e[4])))
_GOOD_MEMBER = st.fixed_dictionaries({
    "name": st.from_regex(_VALID_NAME, fullmatch=True),
    "content": _SORTED_EVENT_BYTES,
    "compression": st.sampled_from([zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED]),
    "encrypted": st.just(False),
    "mode": st.sampled_from([0, stat.S_IFREG | 0o644]),
})
_ANY_MEMBER = st.fixed_dictionaries({
    "name": _NAMES,
    "content": st.one_of(_EVENT_BYTES, st.binary(max_size=40)),
    "compression": st.sampled_from([zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED, zipfile.ZIP_BZIP2, zipfile.ZIP_LZMA]),
    "encrypted": st.booleans(),
    "mode": st.sampled_from([0, stat.S_IFREG | 0o644, stat.S_IFLNK | 0o777, stat.S_IFIFO | 0o644]),
})
_MEMBERS = st.lists(
    st.one_of(_GOOD_MEMBER, _ANY_MEMBER),  # half valid, so whole zips are often readable
    # "NMNIST/Train/1/a.bin" and "Train/1/a.bin" are the same recording (a duplicate)
    min_size=1, max_size=5, unique_by=lambda member: member["name"].removeprefix("NMNIST/"),
)


def _member_kind(member) -> str:
    """``"ignored"`` (a folder entry or OS litter), ``"good"`` or ``"bad"``."""
    name, content = member["name"], member["content"]
    if name.endswith("/") or any(part.startswith(".") or part == "__MACOSX" for part in name.split("/")):
        return "ignored"
    events_ok = len(content) % 5 == 0 and len(content) > 0 and all(
        content[i] < 34 and content[i + 1] < 34 for i in range(0, len(content), 5)
    )
    # 23-bit timestamps (bits 22..0 of bytes 2-4) must not go back in time
    times = [((content[i + 2] & 0x7F) << 16) | (content[i + 3] << 8) | content[i + 4] for i in range(0, len(content) - 4, 5)]
    events_ok = events_ok and all(later >= earlier for earlier, later in zip(times, times[1:]))
    good = (
        _VALID_NAME.match(name) and events_ok and not member["encrypted"]
        and member["compression"] in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED)
        and member["mode"] in (0, stat.S_IFREG | 0o644)
    )
    return "good" if good else "bad"


def _set_encrypted_flags(data: bytes, encrypted: list[bool]) -> bytes:
    """Set the "encrypted" flag bit of the chosen members (zipfile never writes it itself)."""
    data = bytearray(data)
    with zipfile.ZipFile(io.BytesIO(bytes(data))) as archive:
        infos = archive.infolist()
        central = archive.start_dir
    for info, flag in zip(infos, encrypted):
        name_length, extra_length, comment_length = struct.unpack("<HHH", data[central + 28 : central + 34])
        if flag:
            data[info.header_offset + 6] |= 0x1  # local header: general purpose flags at +6
            data[central + 8] |= 0x1  # central directory entry: flags at +8
        central += 46 + name_length + extra_length + comment_length
    return bytes(data)


@settings(FUZZ, max_examples=300)
@given(members=_MEMBERS)
def test_nmnist_crafted_zip_members(tmp_path_factory, members):
    """Reads back exactly the valid members' events; any bad member is refused, never half-read."""
    root = tmp_path_factory.mktemp("crafted")
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for member in members:
            info = zipfile.ZipInfo(member["name"] or "x")
            info.filename = member["name"]  # ZipInfo refuses nothing; keep even an empty name
            info.compress_type = member["compression"]
            info.external_attr = member["mode"] << 16
            archive.writestr(info, member["content"])
    (root / "Train.zip").write_bytes(_set_encrypted_flags(buffer.getvalue(), [m["encrypted"] for m in members]))
    good = [m for m in members if _member_kind(m) == "good"]
    bad = [m for m in members if _member_kind(m) == "bad"]
    event(f"members: {'no' if not good else 'some'} good, {'no' if not bad else 'some'} bad")
    if not good and not bad:
        with pytest.raises(DataFormatError, match="holds no usable recordings"):
            NMNIST(root, "train")
        return
    if not bad:
        dataset = NMNIST(root, "train")
        expected = sorted((m["name"].removeprefix("NMNIST/"), m["content"]) for m in good)
        assert sorted(s.split("Train.zip/")[1].removeprefix("NMNIST/") for s in dataset.sources) == [n for n, _ in expected]
        by_source = {s.split("Train.zip/")[1].removeprefix("NMNIST/"): i for i, s in enumerate(dataset.sources)}
        for name, content in expected:
            events, label = dataset[by_source[name]]
            np.testing.assert_array_equal(events, decode_events(content))
            assert label == int(name.split("/")[1])
        dataset.close()
        return
    try:  # at least one bad member: strict mode must refuse it
        dataset = NMNIST(root, "train")
        for index in range(len(dataset)):
            dataset[index]
        dataset.close()
        pytest.fail(f"a zip with bad members was read without error: {members}")
    except DataFormatError:
        pass
    try:  # skip_bad keeps exactly the good ones
        dataset = NMNIST(root, "train", skip_bad=True)
    except DataFormatError as error:
        assert not good and "no usable recordings" in str(error)
        return
    assert len(dataset) == len(good)
    dataset.close()


def test_nmnist_zip_member_with_a_broken_deflate_stream_is_an_archive_error(tmp_path, workspace):
    """Was zlib.error: the zip reader now goes through data/archive.py's checked reads."""
    name, content = workspace.recordings(1, 200)[0]
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(name, content)
    data = bytearray(buffer.getvalue())
    start = 30 + len(name)  # the local header, then the deflate stream
    data[start : start + 8] = b"\xff" * 8
    (tmp_path / "Train.zip").write_bytes(bytes(data))
    dataset = NMNIST(tmp_path, "train")
    with pytest.raises(DataFormatError, match=rf"Train\.zip/{name}: cannot read zip member \((error|BadZipFile)"):
        dataset[0]


@pytest.mark.parametrize("compression", [zipfile.ZIP_BZIP2, zipfile.ZIP_LZMA])
def test_nmnist_refuses_members_inflated_without_bound(tmp_path, compression):
    with zipfile.ZipFile(tmp_path / "Train.zip", "w", compression) as archive:
        archive.writestr("Train/1/a.bin", b"\x01\x01\x00\x00\x01" * 10)
    with pytest.raises(DataFormatError, match=rf"a\.bin: member 'Train/1/a\.bin' uses compression method {compression}"):
        NMNIST(tmp_path, "train")


def test_nmnist_zip_member_with_an_empty_name(tmp_path):
    """Was IndexError from ZipInfo.is_dir()."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        info = zipfile.ZipInfo("x")
        info.filename = ""
        archive.writestr(info, b"12345")
    (tmp_path / "Train.zip").write_bytes(buffer.getvalue())
    with pytest.raises(DataFormatError, match=r"zip member is not at Train/<digit>/<file>\.bin"):
        NMNIST(tmp_path, "train")


# --------------------------------------------------------------------------------------------
# Config parser


@FUZZ
@given(text=st.text(max_size=400))
def test_config_random_text(workspace, text):
    _assert_documented(fuzz.run_config_toml(text.encode("utf-8", errors="surrogatepass"), workspace), ("ConfigError",), 1)


@FUZZ
@given(data=st.data())
def test_config_mutated_files(workspace, data):
    outcomes = fuzz.run_config_toml(data.draw(_mutants(st.sampled_from(fuzz.seeds_config_toml(workspace)))), workspace)
    _assert_documented(outcomes, ("ConfigError",), 1)


@FUZZ
@given(data=st.data())
def test_config_mutated_overrides(workspace, data):
    mutated = data.draw(_mutants(st.sampled_from(fuzz.seeds_config_overrides(workspace))))
    _assert_documented(fuzz.run_config_overrides(mutated, workspace), ("ConfigError",), 1)


_OPTIONS = [f"{section}.{key}" for section, table in TrainConfig().to_dict().items() for key in table]
_VALUES = st.one_of(
    st.none(), st.booleans(), st.integers(), st.integers(-3, 40), st.floats(), st.floats(-2, 2), st.text(max_size=12),
    st.sampled_from(["eggroll", "full_rank", "adam", "zero", "max", "cosine", "accuracy", "zscore", "bfloat16"]),
    st.lists(st.integers(-2, 2000), max_size=3), st.lists(st.floats(), max_size=2),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
)
# Checks across options: the error names the option that the value constrains.
_PARTNERS = {
    "network.hidden_sizes": "strategy.rank", "data.pool": "strategy.rank",
    "strategy.antithetic": "strategy.population_size", "strategy.method": "strategy.rank",
    "network.conv_channels": "data.pool",  # too many inputs for the first dense layer
    "train.time_budget_s": "train.generations",  # unset both and nothing fixes the run's length
}
_ALLOWED = re.compile(r"(is out of range: |has the wrong type: expected |is not allowed: expected )\S")


@settings(FUZZ, max_examples=600)
@given(option=st.sampled_from(_OPTIONS), value=_VALUES)
def test_every_option_error_names_the_option_and_what_is_allowed(option, value):
    try:
        config = apply_overrides(TrainConfig(), {option: value})
    except ConfigError as error:
        message = str(error)
        assert f"option {option}" in message or f"option {_PARTNERS.get(option)}" in message, message
        assert _ALLOWED.search(message), message
        return
    section, key = option.split(".")
    stored = getattr(getattr(config, section), key)
    assert stored == (tuple(value) if isinstance(value, list) else value)


#: One out-of-range (or mistyped) value per option and the allowed range its message must state.
BAD_VALUES = {
    "data.root": (5, "a string"),
    "data.num_time_bins": (0, "1..10000"),
    "data.window_us": (0, "a positive number of microseconds"),
    "data.duration_us": (0, "a positive number of microseconds up to 100000000"),
    "data.include_incomplete": ("yes", "true or false"),
    "data.pool": (3, "1, 2, 17 or 34"),
    "data.binarize": (1, "true or false"),
    "data.first_saccade_only": ("no", "true or false"),
    "data.validation_fraction": (1.0, "strictly between 0 and 1"),
    "data.cache_dir": (1, "a string"),
    "data.skip_bad": ("yes", "true or false"),
    "network.hidden_sizes": ([0], "1..1000000"),
    "network.beta": (1.5, "[0, 1]"),
    "network.threshold": (0.0, "a positive finite number"),
    "network.reset": ("keep", "'subtract', 'zero'"),
    "network.readout": ("last", "'mean', 'max'"),
    "network.readout_beta": (-0.1, "[0, 1]"),
    "network.learn_beta": ("x", "true or false"),
    "network.learn_threshold": (0, "true or false"),
    "network.init_gain": (float("inf"), "a positive finite number"),
    "network.compute_dtype": ("float16", "'float32', 'bfloat16'"),
    "network.weights": ("int2", "'float32', 'int8', 'int4'"),
    "network.conv_channels": ([0], "1..4096"),
    "network.conv_kernel": (0, "1..34"),
    "network.conv_stride": (35, "1..34"),
    "network.conv_pool": (0, "1..34"),
    "network.recurrent": ("x", "true or false"),
    "data.source": ("zarr", "one of 'nmnist', 'tonic'"),
    "data.tonic_dataset": ("SHD", "unset unless data.source = 'tonic'"),
    "data.test_fraction": (0.2, "unset unless data.source = 'tonic'"),
    "data.sensor_size": ([700, 1, 1], "empty unless data.source = 'tonic'"),
    "data.class_names": (["a", "b"], "empty unless data.source = 'tonic'"),
    "network.neuron": ("analog", "one of 'float', 'fixed_point'"),
    "fixed_point.fraction_bits": (17, "an integer 0..16"),
    "fixed_point.weight_bits": (1, "an integer 2..16"),
    "fixed_point.state_bits": (7, "an integer 8..28"),
    "fixed_point.leak": ("exp", "one of 'shift', 'multiplier'"),
    "fixed_point.synapse_beta": (1.0, "a decay factor in [0, 1)"),
    "fixed_point.evaluator": (" ", "a command line"),
    "fixed_point.evaluator_timeout_s": (0, "a positive number of seconds"),
    "strategy.method": ("cma_es", "one of bptt, eggroll, eggroll_integer, full_rank"),
    "strategy.population_size": (1, "2..1000000"),
    "strategy.sigma": (float("nan"), "a positive finite number"),
    "strategy.rank": (0, "a positive integer"),
    "strategy.learning_rate": (-0.1, "a positive finite number"),
    "strategy.optimizer": ("adamw", "'adam', 'sgd'"),
    "strategy.weight_decay": (-1.0, ">= 0"),
    "strategy.antithetic": ("yes", "true or false"),
    "strategy.fitness_shaping": ("raw", "'centered_rank', 'zscore'"),
    "strategy.sigma_schedule": ("step", "'constant', 'linear', 'cosine'"),
    "strategy.sigma_final_fraction": (1.5, "[0, 1]"),
    "strategy.learning_rate_schedule": ("step", "'constant', 'linear', 'cosine'"),
    "strategy.learning_rate_final_fraction": (-0.5, "[0, 1]"),
    "strategy.surrogate": ("relu", "'fast_sigmoid', 'arctan'"),
    "strategy.surrogate_slope": (0.0, "a positive finite number"),
    "train.generations": (0, "1..10000000, or unset"),
    "train.batch_size": (0, "1..1000000"),
    "train.eval_every": (0, "a positive integer"),
    "train.checkpoint_every": (0, "a positive integer"),
    "train.keep_checkpoints": (0, "a positive integer"),
    "train.generations_per_call": (0, "a positive integer"),
    "train.seed": (-1, "0..4294967295"),
    "train.fitness": ("loss", "'cross_entropy', 'accuracy'"),
    "train.augment_shift": (9, "0..8"),
    "train.init_from": ("", "a run folder path, or unset"),
    "train.eval_batch_size": (0, "a positive integer"),
    "train.devices": (-1, "a device count >= 1, or 0 for all devices"),
    "train.max_seconds": (0.0, "a positive finite number of seconds, or unset"),
    "train.time_budget_s": (0.0, "a positive finite number of seconds, or unset"),
    "train.memory_budget_mb": (-1.0, "a positive number of MiB, or unset"),
    "train.population_forward": ("turbo", "one of 'fast', 'reference'"),
    "train.augment_drop_event": (1.0, "a probability in [0, 1)"),
    "train.augment_flip_polarity": (1.5, "a probability in [0, 1]"),
    "train.augment_noise_events": (-1, "an integer 0..100000"),
    "train.augment_drop_bins": (1.0, "a probability in [0, 1)"),
    "train.augment_event_copies": (65, "an integer 0..64"),
    "train.augment_event_transform": ("", "the description of an event transform"),
    "train.evaluate_test": ("yes", "true or false"),
    "data.validation_folds": (1, "0 (off) or a number of folds 2..100"),
    "data.validation_fold": (3, "a fold 0..0 of data.validation_folds = 0"),
}


def test_bad_value_table_covers_every_option():
    assert sorted(set(_OPTIONS) - set(BAD_VALUES)) == []


@pytest.mark.parametrize("option", sorted(BAD_VALUES))
def test_each_option_message_states_the_allowed_range(option):
    if option not in _OPTIONS:
        pytest.skip(f"{option} is not an option of this version")
    value, allowed = BAD_VALUES[option]
    with pytest.raises(ConfigError) as caught:
        apply_overrides(TrainConfig(), {option: value})
    assert f"option {option}" in str(caught.value) and allowed in str(caught.value), str(caught.value)


def test_config_deeply_nested_toml_is_a_config_error():
    """Was RecursionError from tomllib."""
    with pytest.raises(ConfigError, match="fuzz.toml: not valid TOML: RecursionError"):
        loads("x = " + "[" * 5000, source="fuzz.toml")


def test_config_integer_with_too_many_digits_is_a_config_error():
    """Was ValueError: Python refuses to convert integers of over 4300 digits."""
    with pytest.raises(ConfigError, match="fuzz.toml: not valid TOML: ValueError"):
        loads("[train]\nseed = 1" + "0" * 5000, source="fuzz.toml")
    with pytest.raises(ConfigError, match="override train.seed: its value cannot be read"):
        parse_assignment("train.seed=1" + "0" * 5000)


@FUZZ
@given(text=st.text(st.characters(codec="utf-8"), max_size=30))
@example(text="runs\x7f/\x00\t\"\\")
def test_config_string_options_survive_the_toml_round_trip(text):
    """DEL (U+007F) was written raw, which TOML forbids: the run's config.toml could not be read back."""
    config = apply_overrides(TrainConfig(), {"data.cache_dir": text, "data.root": text})
    assert loads(dumps(config)) == config


def test_config_path_with_non_utf8_bytes_is_refused_up_front():
    """Was UnicodeEncodeError while writing the run's config.toml (argv keeps such bytes as surrogates)."""
    with pytest.raises(ConfigError, match=r"option data.root = '/data/\\udcff' is not allowed: expected text that UTF-8"):
        apply_overrides(TrainConfig(), {"data.root": "/data/\udcff"})


@pytest.mark.parametrize("pool", [0, -2])
def test_config_pool_must_be_a_positive_divisor(pool):
    """0 was ZeroDivisionError, -2 was accepted (34 % -2 == 0)."""
    with pytest.raises(ConfigError, match=rf"option data.pool = {pool} is out of range: a divisor of the 34-pixel"):
        apply_overrides(TrainConfig(), {"data.pool": pool})


def test_config_integer_too_large_for_a_float_option_is_a_config_error():
    """Was OverflowError from float(int)."""
    with pytest.raises(ConfigError, match=r"option strategy.sigma = <an integer of 1329 bits> is out of range"):
        loads("[strategy]\nsigma = 1" + "0" * 400)


# --------------------------------------------------------------------------------------------
# Checkpoint loading


@settings(FUZZ, max_examples=300)
@given(data=st.data())
def test_checkpoint_crafted_npz_with_matching_checksum(workspace, data):
    outcomes = fuzz.run_checkpoint_npz(data.draw(_mutants(st.sampled_from(fuzz.seeds_checkpoint_npz(workspace)))), workspace)
    _assert_documented(outcomes, ("CheckpointError",), 2)  # resume's path, then load_tree


@FUZZ
@given(data=st.binary(max_size=3000))
def test_checkpoint_random_npz_bytes(workspace, data):
    outcomes = fuzz.run_checkpoint_npz(data, workspace)
    assert "ok" not in outcomes


@FUZZ
@given(data=st.data())
def test_checkpoint_mutated_description(workspace, data):
    outcomes = fuzz.run_checkpoint_json(data.draw(_mutants(st.sampled_from(fuzz.seeds_checkpoint_json(workspace)))), workspace)
    _assert_documented(outcomes, ("CheckpointError",), 2)


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=10),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=20,
)


@FUZZ
@given(changes=st.dictionaries(
    st.sampled_from(["format", "version", "treedef", "leaves", "npz_bytes", "npz_sha256", "generation", "config"]),
    _JSON, min_size=1, max_size=3,
))
def test_checkpoint_description_with_wrong_values(workspace, changes):
    _, json_text, _ = workspace.checkpoint_template()
    description = {**json.loads(json_text), **changes}
    outcomes = fuzz.run_checkpoint_json(json.dumps(description).encode(), workspace)
    _assert_documented(outcomes, ("CheckpointError",), 2)
    if "format" in changes and changes["format"] != json.loads(json_text)["format"]:
        assert not any(outcome.endswith("ok") for outcome in outcomes)  # another format is never loaded


def _forge_checkpoint(folder: Path, arrays: dict, like, allow_pickle: bool = False) -> Path:
    """A checkpoint whose description matches ``like`` and whose checksum matches the forged .npz.

    ``arrays`` maps leaf names to arrays, or to the raw bytes of a hand-made ``.npy`` member.
    """
    folder.mkdir(parents=True, exist_ok=True)
    npz_path = folder / "gen-00000001.npz"
    with open(npz_path, "wb") as handle:
        with zipfile.ZipFile(handle, "w") as archive:
            for name, array in arrays.items():
                with archive.open(f"{name}.npy", "w") as member:
                    if isinstance(array, bytes):
                        member.write(array)
                    else:
                        np.lib.format.write_array(member, array, allow_pickle=allow_pickle)
    leaves, treedef = checkpoint.describe_tree(like)
    data = npz_path.read_bytes()
    description = {
        "format": checkpoint.FORMAT, "version": checkpoint.VERSION, "generation": 1, "config": {},
        "treedef": str(treedef), "leaves": leaves, "npz_bytes": len(data), "npz_sha256": hashlib.sha256(data).hexdigest(),
    }
    json_path = npz_path.with_suffix(".json")
    json_path.write_text(json.dumps(description))
    return json_path


class _Payload:
    """Unpickling this creates ``path``: proof that code from the file ran."""

    def __init__(self, path):
        self.path = str(path)

    def __reduce__(self):
        return (open, (self.path, "w"))


def test_pickle_in_a_checkpoint_never_runs(tmp_path):
    like = {"w": jnp.zeros(2, jnp.float32)}
    marker = tmp_path / "code-ran"
    payload = np.empty(2, dtype=object)
    payload[:] = [_Payload(marker), 1.0]
    json_path = _forge_checkpoint(tmp_path / "checkpoints", {"w": payload}, like, allow_pickle=True)
    assert not marker.exists()
    # the payload is live: numpy with pickles allowed runs it
    with np.load(json_path.with_suffix(".npz"), allow_pickle=True) as archive:
        archive["w"]
    assert marker.exists()
    marker.unlink()
    # eggroll-snn never unpickles: every way in refuses it and nothing runs
    with pytest.raises(CheckpointError, match=r"array w is object\(2,\), expected float32\(2,\)"):
        checkpoint.load_tree(json_path, jax.eval_shape(lambda: like))
    found = checkpoint.latest_valid_checkpoint(tmp_path / "checkpoints")
    assert found is not None and found.generation == 1  # checksum valid: only loading can refuse it
    with pytest.raises(CheckpointError):
        checkpoint.load_checkpoint(found, jax.eval_shape(lambda: like))
    assert not marker.exists()


def test_checkpoint_header_claiming_a_huge_array_is_refused_before_allocating(tmp_path):
    """Was MemoryError: numpy allocated the claimed 4 TB shape before noticing the data was short."""
    like = {"w": jnp.zeros((2, 3), jnp.float32)}
    member = io.BytesIO()
    np.lib.format.write_array_header_1_0(member, {"descr": "<f4", "fortran_order": False, "shape": (10**12,)})
    member.write(bytes(24))  # the 6 floats the description expects, nowhere near 4 TB
    json_path = _forge_checkpoint(tmp_path, {"w": member.getvalue()}, like)
    with pytest.raises(CheckpointError, match=r"array w is float32\(1000000000000,\), expected float32\(2, 3\)"):
        checkpoint.load_tree(json_path, jax.eval_shape(lambda: like))


def test_checkpoint_deeply_nested_description_is_a_checkpoint_error(tmp_path):
    """Was RecursionError from json.loads."""
    (tmp_path / "gen-00000001.json").write_text("[" * 100_000)
    with pytest.raises(CheckpointError, match="unreadable checkpoint description: RecursionError"):
        checkpoint.verify(tmp_path / "gen-00000001.json")


@pytest.mark.parametrize("compression", [zipfile.ZIP_BZIP2, zipfile.ZIP_LZMA, 99])
def test_checkpoint_member_compressed_without_output_bound_is_refused(tmp_path, compression):
    """Was NotImplementedError for unknown methods; bzip2/LZMA inflate without a bound."""
    like = {"w": jnp.zeros(4, jnp.float32)}
    json_path = _forge_checkpoint(tmp_path, {"w": np.zeros(4, np.float32)}, like)
    npz_path = json_path.with_suffix(".npz")
    data = bytearray(npz_path.read_bytes())
    if compression == 99:  # no such method: patch the method field of both headers
        for signature, offset in ((b"PK\x03\x04", 8), (b"PK\x01\x02", 10)):
            at = data.index(signature) + offset
            data[at : at + 2] = struct.pack("<H", 99)
    else:
        with zipfile.ZipFile(npz_path, "w", compression) as archive:
            with archive.open("w.npy", "w") as member:
                np.lib.format.write_array(member, np.zeros(4, np.float32))
        data = bytearray(npz_path.read_bytes())
    npz_path.write_bytes(bytes(data))
    description = json.loads(json_path.read_text())
    description["npz_bytes"], description["npz_sha256"] = len(data), hashlib.sha256(data).hexdigest()
    json_path.write_text(json.dumps(description))
    with pytest.raises(CheckpointError, match=rf"member w\.npy is encrypted or compressed with method {compression}"):
        checkpoint.load_tree(json_path, jax.eval_shape(lambda: like))
