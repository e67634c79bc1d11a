"""Event data sets read through tonic (issue 16): files written here in each data set's on-disk
layout (tonic_layouts.py), read by tonic and our adapter, binned, cached, trained on, evaluated."""

from __future__ import annotations

import json

import numpy as np
import pytest

pytest.importorskip("tonic")  # the `test` extra installs it; without it these tests skip

import tonic_layouts  # noqa: E402
from eggroll_snn.config import MAX_DENSE_INPUTS, TrainConfig, apply_overrides, dumps, loads  # noqa: E402
from eggroll_snn.data import tonic_source  # noqa: E402
from eggroll_snn.data.frames import FrameConfig  # noqa: E402
from eggroll_snn.errors import ConfigError, DataFormatError  # noqa: E402

SENSORS = {"DVSGesture": (128, 128, 2), "POKERDVS": (35, 35, 2), "SHD": (700, 1, 1)}
POOLS = {"DVSGesture": 8, "POKERDVS": 5, "SHD": 7}


@pytest.fixture(scope="module")
def roots(tmp_path_factory):
    """One root per data set, each written once: ``{name: (root, written)}``."""
    found = {}
    for name, writer in tonic_layouts.WRITERS.items():
        root = tmp_path_factory.mktemp(name.lower())
        found[name] = (root, writer(root))
    return found


def reference_frames(x, y, t, p, num_bins: int, duration_us: int, pool: int, shape) -> np.ndarray:
    """The binning written out with numpy alone: frame floor(t T / D) for 0 <= t < D, pooled pixels."""
    frames = np.zeros(shape, np.int64)
    keep = (t >= 0) & (t < duration_us)
    bins = t[keep] * num_bins // duration_us
    pool_y = 1 if shape[2] == 1 else pool
    np.add.at(frames, (bins, p[keep], y[keep] // pool_y, x[keep] // pool), 1)
    return np.minimum(frames, 255)


def test_every_registered_data_set_has_a_writer():
    assert set(tonic_layouts.WRITERS) == set(tonic_source.TONIC_DATASETS)


@pytest.mark.parametrize("name", sorted(tonic_source.TONIC_DATASETS))
def test_sensor_size_and_class_names_come_from_the_data_set(roots, name):
    root, _ = roots[name]
    config = apply_overrides(TrainConfig(), {"data.root": f"tonic:{name}:{root}", "data.pool": POOLS[name]})
    data = config.data
    assert (data.source, data.tonic_dataset, data.root) == ("tonic", name, str(root))
    assert data.sensor == SENSORS[name]
    expected_names = {"DVSGesture": 11, "POKERDVS": 4, "SHD": 3}[name]
    assert data.num_classes == expected_names == len(data.class_names)
    if name == "SHD":
        assert data.class_names == tonic_layouts.SHD_CLASSES  # from the file's extra/keys
        assert data.input_shape == (1, 1, 100)  # one row: pooled along the channels only
    width, height, polarities = SENSORS[name]
    assert config.network.network_config(data.input_shape, data.num_classes).weight_shapes[-1][0] == data.num_classes
    assert loads(dumps(config)) == config  # the resolved config.toml reads back without the files


@pytest.mark.parametrize("name", sorted(tonic_source.TONIC_DATASETS))
def test_frames_equal_a_numpy_binning_of_the_written_events(roots, name, tmp_path):
    root, written = roots[name]
    duration_us, bins, pool = 1_000_000, 5, POOLS[name]
    config = FrameConfig(num_time_bins=bins, duration_us=duration_us, pool=pool)
    num_classes = len(tonic_layouts.SHD_CLASSES) if name == "SHD" else 11
    frames, labels = tonic_source.load_tonic_split(name, root, "test", config, num_classes, cache_dir=tmp_path)
    split = tonic_source.list_split(name, root, "test")
    assert len(frames) == len(split) == len(written["test"]) and frames.dtype == np.uint8
    for index in range(len(split)):
        (x, y, t, p), label = _written_recording(name, written["test"], split, index)
        if name != "SHD":
            t = t - t.min()  # camera recordings are binned from their first event
        assert labels[index] == label
        expected = reference_frames(x, y, t, p, bins, duration_us, pool, frames.shape[1:])
        np.testing.assert_array_equal(frames[index], expected)
        assert frames[index].sum() == np.sum(t < duration_us) > 0
    again, _ = tonic_source.load_tonic_split(name, root, "test", config, num_classes, cache_dir=tmp_path)
    assert isinstance(again, np.memmap) and len(list(tmp_path.glob("*.frames.npy"))) == 1  # read back, not rebuilt


def _written_recording(name: str, written, split, index: int):
    """The events the writer wrote for recording ``index`` of ``split`` (tonic's own order)."""
    if name == "SHD":  # one file: recordings in file order
        (x, t), label = written[split.entries[index].index]
        return (x, np.zeros_like(x), t, np.zeros_like(x)), label
    if name == "DVSGesture":  # one file per recording, which tonic names
        return written[split.source(index)]
    # POKERDVS keeps no names: find the written recording by its timestamps (all distinct draws)
    t_read = split.dataset.data[split.entries[index].index][:, 0]
    matches = [entry for entry in written.values() if np.array_equal(entry[0][2], t_read)]
    assert len(matches) == 1
    return matches[0]


def test_holdout_test_split_is_stratified_disjoint_and_fixed():
    labels = np.repeat(np.arange(4), [10, 10, 5, 1])
    kept, held = tonic_source.stratified_holdout(labels, 0.2)
    assert np.intersect1d(kept, held).size == 0 and len(kept) + len(held) == len(labels)
    assert np.bincount(labels[held], minlength=4).tolist() == [2, 2, 1, 0]
    assert np.array_equal(held, tonic_source.stratified_holdout(labels, 0.2)[1])


def test_test_fraction_splits_the_training_split(roots, tmp_path):
    root, written = roots["SHD"]
    config = FrameConfig(num_time_bins=4, duration_us=1_000_000, pool=7)
    train = tonic_source.load_tonic_split("SHD", root, "train", config, 3, 0.25, cache_dir=tmp_path)[1]
    test = tonic_source.load_tonic_split("SHD", root, "test", config, 3, 0.25, cache_dir=tmp_path)[1]
    assert len(train) + len(test) == len(written["train"]) and np.bincount(test).tolist() == [2, 2, 2]


def test_unknown_data_set_name_is_one_line_listing_the_supported_ones(tmp_path):
    with pytest.raises(ConfigError, match=r"'NCARS' is not a supported tonic data set; use one of DVSGesture, POKERDVS, SHD"):
        apply_overrides(TrainConfig(), {"data.root": f"tonic:NCARS:{tmp_path}"})
    with pytest.raises(ConfigError, match=r"tonic:<DatasetName>:<folder>"):
        apply_overrides(TrainConfig(), {"data.root": "tonic:SHD"})


def test_a_root_without_the_files_names_what_is_missing(tmp_path, roots):
    with pytest.raises(DataFormatError, match=r"no SHD/ folder.*point data.root at the folder that holds SHD/"):
        apply_overrides(TrainConfig(), {"data.root": f"tonic:SHD:{tmp_path}"})
    (tmp_path / "DVSGesture" / "ibmGestureTrain").mkdir(parents=True)
    with pytest.raises(DataFormatError, match=r"ibmGestureTrain.tar.gz is missing"):
        apply_overrides(TrainConfig(), {"data.root": f"tonic:DVSGesture:{tmp_path}"})
    (tmp_path / "DVSGesture" / "ibmGestureTrain.tar.gz").write_bytes(b"")
    with pytest.raises(DataFormatError, match=r"holds 0 .npy files; tonic reads it only with at least 100"):
        apply_overrides(TrainConfig(), {"data.root": f"tonic:DVSGesture:{tmp_path}"})


def test_a_sensor_too_large_for_a_dense_layer_says_to_pool_or_add_conv_blocks(roots):
    root, _ = roots["DVSGesture"]
    with pytest.raises(ConfigError, match=rf"128 x 128 x 2 sensor gives 32768 inputs .* more than the {MAX_DENSE_INPUTS}.*raise data.pool"):
        apply_overrides(TrainConfig(), {"data.root": f"tonic:DVSGesture:{root}", "data.pool": 1})
    conv = apply_overrides(
        TrainConfig(),
        {"data.root": f"tonic:DVSGesture:{root}", "data.pool": 1, "network.conv_channels": [4], "network.conv_stride": 4},
    )
    assert conv.network.network_config(conv.data.input_shape, 11).conv_shapes == ((16, 16, 4),)  # conv sized to 128 x 128


def test_a_pool_that_does_not_divide_the_sensor_is_refused(roots):
    root, _ = roots["SHD"]
    with pytest.raises(ConfigError, match=r"data.pool = 3 .* a divisor of the 700 x 1 sensor of SHD"):
        apply_overrides(TrainConfig(), {"data.root": f"tonic:SHD:{root}", "data.pool": 3})


def test_events_outside_the_sensor_name_the_recording():
    raw = np.array([(1, 5, 0, 1), (200, 5, 10, 0)], dtype=[("x", int), ("y", int), ("t", int), ("p", int)])
    with pytest.raises(DataFormatError, match=r"rec.npy: event 1 has x = 200, outside the 128x128x2 sensor"):
        tonic_source.tonic_to_events(raw, (128, 128, 2), "zero", "rec.npy")


@pytest.mark.parametrize(
    "times, message",
    [
        ([0.0, 3e5, 1e5], r"event 2's timestamp 100000 precedes the one before it \(300000\); the events are not in time order"),
        ([0.0, float("nan"), 5.0], r"event 1 has t = nan, not a finite time"),
        ([-4.0, 1.0, 5.0], r"event 0 has the negative time t = -4"),
    ],
)
def test_spike_times_reversed_nan_or_negative_are_a_bad_recording(times, message):
    raw = np.zeros(3, dtype=[("t", float), ("x", int), ("p", int)])  # SHD's fields, times as floats
    raw["t"], raw["x"] = times, [3, 4, 5]
    with pytest.raises(DataFormatError, match=rf"shd-7.h5: {message}[.;] [Tt]he recording is corrupt.*--skip-bad"):
        tonic_source.tonic_to_events(raw, (700, 1, 1), "zero", "shd-7.h5")


def _tiny_run_options(name: str, root) -> list[str]:
    return [
        "--data", f"tonic:{name}:{root}", "--set", f"data.pool={POOLS[name]}", "--time-bins", "4",
        "--set", "data.duration_us=1000000", "--hidden", "16", "--population-size", "16", "--generations", "4",
        "--batch-size", "16", "--set", "train.eval_every=2", "--set", "train.checkpoint_every=2",
        "--set", "data.validation_fraction=0.2", "--no-progress",
    ]


@pytest.mark.parametrize("name", [pytest.param("DVSGesture", marks=pytest.mark.slow), "SHD"])  # 10-30 s each here (shared CPU)
def test_train_evaluate_export_end_to_end_from_the_command_line(roots, name, tmp_path, capsys):
    from eggroll_snn.cli import main

    root, written = roots[name]
    run_dir = tmp_path / "run"
    assert main(["train", *_tiny_run_options(name, root), "--out", str(run_dir)]) == 0
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["test_count"] == len(written["test"]) and summary["generations"] == 4
    splits = json.loads((run_dir / "data_splits.json").read_text())
    assert splits["test_split"] == "the data set's own test split"
    assert splits["counts"]["train"] + splits["counts"]["validation"] == len(written["train"])
    capsys.readouterr()
    assert main(["evaluate", str(run_dir)]) == 0
    shown = capsys.readouterr().out
    class_names = tonic_source.describe(name, root)[1]
    assert all(class_name in shown for class_name in class_names)
    assert f"({round(summary['test_accuracy'] * summary['test_count'])}/{summary['test_count']})" in shown
    assert main(["evaluate", str(run_dir), "--data", f"tonic:{name}:{root}", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["count"] == summary["test_count"]
    graph_path = tmp_path / "model.nir"
    assert main(["export", str(run_dir), "--nir", str(graph_path)]) == 0
    import nir

    graph = nir.read(graph_path)
    width, height, polarities = SENSORS[name]
    inputs = polarities * max(height // POOLS[name], 1) * (width // POOLS[name])
    assert int(np.prod(graph.nodes["input"].input_type["input"])) == inputs
    assert graph.metadata["readout_node"] == "affine_out"  # the default read-out keeps no memory: no LI node
    assert graph.nodes["affine_out"].weight.shape[0] == len(class_names) and ("affine_out", "output") in graph.edges


def test_python_entry_takes_tonic_objects_and_splits_test_from_train(roots, tmp_path):
    import tonic

    from eggroll_snn.evaluate import evaluate_run
    from eggroll_snn.tonic_run import config_for_tonic, train_tonic

    root, written = roots["POKERDVS"]
    options = {
        "data.pool": 5, "data.num_time_bins": 4, "data.duration_us": 20_000, "network.hidden_sizes": [8],
        "strategy.population_size": 8, "train.generations": 2, "train.eval_every": 2, "train.batch_size": 8,
        "data.validation_fraction": 0.25,
    }
    dataset = tonic.datasets.POKERDVS(str(root), train=True)
    result = train_tonic(dataset, tmp_path / "run", test_fraction=0.25, overrides=options, progress=False)
    assert result.test_count == 8  # a quarter of the 24 training recordings, 2 per class
    splits = json.loads((tmp_path / "run" / "data_splits.json").read_text())
    assert splits["test_split"].startswith("a class-stratified 0.25 of the data set's training split")
    assert splits["per_class"]["test"] == {"cl": 2, "he": 2, "di": 2, "sp": 2}
    report = evaluate_run(tmp_path / "run")
    assert report["count"] == 8 and report["class_names"] == ["cl", "he", "di", "sp"]
    assert report["accuracy"] == pytest.approx(result.test_accuracy)
    with pytest.raises(ConfigError, match="without transforms"):
        config_for_tonic(tonic.datasets.POKERDVS(str(root), train=True, transform=lambda events: events))


@pytest.mark.parametrize(("name", "input_shape"), [("DVSGesture", (2, 32, 32)), ("SHD", (1, 1, 350))])
def test_the_shipped_configs_are_completed_by_the_data_folder(roots, name, input_shape):
    from pathlib import Path

    from eggroll_snn.run_folder import resolve_run

    root, _ = roots[name]
    config_file = Path(__file__).resolve().parents[1] / "configs" / f"{name.lower()}.toml"
    config, _, resume = resolve_run(config_file, {"data.root": str(root)}, "unused-run-dir", None)
    assert (config.data.source, config.data.tonic_dataset, resume) == ("tonic", name, False)
    assert config.data.input_shape == input_shape
    with pytest.raises(ConfigError, match=rf"data.root.*the folder that holds {name}/"):
        resolve_run(config_file, {}, "unused-run-dir", None)  # the file alone names no folder


def test_without_tonic_installed_the_error_says_how_to_install_it(roots, monkeypatch):
    import sys

    root, _ = roots["SHD"]
    monkeypatch.setitem(sys.modules, "tonic", None)  # import tonic now raises ImportError
    with pytest.raises(ConfigError, match=r"needs the tonic package, which is not installed; install it with"):
        apply_overrides(TrainConfig(), {"data.root": f"tonic:SHD:{root}"})


def test_recordings_are_listed_in_file_name_order(roots):
    root, _ = roots["DVSGesture"]
    split = tonic_source.list_split("DVSGesture", root, "train")
    sources = [split.source(index) for index in range(len(split))]
    assert sources == sorted(sources) and len(set(sources)) == len(sources) == 110


@pytest.mark.slow  # ~50 s here: the L2 grid's fits compile
def test_linear_baseline_command_reads_a_tonic_data_set(roots, capsys):
    from eggroll_snn.cli import main

    root, written = roots["SHD"]
    options = ["--data", f"tonic:SHD:{root}", "--set", "data.pool=7", "--set", "data.duration_us=1000000",
               "--set", "data.num_time_bins=3", "--set", "data.validation_fraction=0.25", "--json"]
    assert main(["baseline", *options]) == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert result["test_count"] == len(written["test"]) and result["features"] == 3 * 100
    assert result["test_accuracy"] >= 0.9  # each class fires in its own third of the channels


@pytest.mark.slow  # 18-30 s here
def test_recurrent_network_on_shd_trains_evaluates_and_export_says_why_not(roots, tmp_path, capsys):
    from eggroll_snn.cli import main

    root, written = roots["SHD"]
    run_dir = tmp_path / "run"
    options = _tiny_run_options("SHD", root) + ["--set", "network.recurrent=true"]
    assert main(["train", *options, "--out", str(run_dir)]) == 0
    assert json.loads((run_dir / "summary.json").read_text())["test_count"] == len(written["test"])
    assert main(["evaluate", str(run_dir)]) == 0 and "zero" in capsys.readouterr().out
    assert main(["export", str(run_dir), "--nir", str(tmp_path / "model.nir")]) == 1
    error = capsys.readouterr().err.strip()
    assert error.count("\n") == 0 and "recurrent hidden layers (network.recurrent), which the exporter does not write yet" in error
