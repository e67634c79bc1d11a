"""Integer weights: the grid projection, a trained int8 run folder, its NIR export, bad options.

The projection is checked against a numpy reference written from the equations in
:mod:`eggroll_snn.integer.grid`; the trained model against its own recorded scales (weight / scale
must be integers in range) and the real N-MNIST subset (accuracy above a bar).
"""

from __future__ import annotations

import json

import jax
import nir
import numpy as np
import pytest

from eggroll_snn.config import NetworkSection, TrainConfig, apply_overrides
from eggroll_snn.errors import CheckpointError, ConfigError
from eggroll_snn.evaluate import evaluate_run
from eggroll_snn.export import export_run, simulate_nir, to_nir
from eggroll_snn.run_folder import load_model
from eggroll_snn.integer.grid import WeightGrid, integer_form
from eggroll_snn.network import NetworkConfig, forward, init_params

NETWORK = NetworkConfig(input_size=40, hidden_sizes=(24, 12), num_classes=10, threshold=0.8)


def _params(seed: int = 0, spread: float = 3.0) -> dict:
    """Random parameters with non-zero biases (init_params gives zero biases)."""
    params = init_params(jax.random.key(seed), NETWORK)
    rng = np.random.default_rng(seed)
    return {
        "layers": [
            {"weight": spread * np.asarray(layer["weight"]), "bias": rng.normal(0, 0.3, np.shape(layer["bias"])).astype(np.float32)}
            for layer in params["layers"]
        ]
    }


def _reference_projection(weight, bias, scale, q_max):
    """``Q(W) = clip(round(W / s), -q, q) s``, ``Q(b) = round(b / s) s`` in numpy float32."""
    scale = np.float32(scale)
    return (
        np.clip(np.rint(np.float32(weight) / scale), -q_max, q_max).astype(np.float32) * scale,
        np.rint(np.float32(bias) / scale).astype(np.float32) * scale,
    )


@pytest.mark.parametrize("weights, q_max", [("int8", 127), ("int4", 7)])
def test_projection_is_on_the_grid_idempotent_and_matches_the_reference(weights, q_max):
    grid = WeightGrid.for_network(weights, NETWORK)
    assert grid.thresholds == (0.8, 0.8, None)
    params = _params()
    projected, scales = grid.quantize(params)
    for index, (layer, out, scale) in enumerate(zip(params["layers"], projected["layers"], scales)):
        scale = np.float32(scale)
        absmax = np.max(np.abs(layer["weight"]))
        if index < 2:  # hidden layers: the threshold is k + 1/2 steps, the largest weight fits
            whole = int(np.floor(0.8 * q_max / absmax - 0.5))
            assert scale == np.float32(0.8) / np.float32(whole + 0.5)
            assert abs(0.8 / scale - (whole + 0.5)) < 1e-4
        else:  # read-out: max|W| / q_max
            assert scale == np.float32(absmax) / np.float32(q_max)
        assert absmax / scale <= q_max + 1e-4  # nothing is clipped when the scale is set
        expected_weight, expected_bias = _reference_projection(layer["weight"], layer["bias"], scale, q_max)
        np.testing.assert_array_equal(np.asarray(out["weight"]), expected_weight)
        np.testing.assert_array_equal(np.asarray(out["bias"]), expected_bias)
        assert np.max(np.abs(np.asarray(out["weight"]) - layer["weight"])) <= scale / 2 * (1 + 1e-5)
    integers = integer_form(projected, scales, weights)
    for layer, out in zip(integers, projected["layers"]):
        assert layer["weight"].dtype == np.int8 and layer["bias"].dtype == np.int32
        np.testing.assert_array_equal(layer["weight"].astype(np.float32) * layer["scale"], np.asarray(out["weight"]))
        np.testing.assert_array_equal(layer["bias"].astype(np.float32) * layer["scale"], np.asarray(out["bias"]))
    assert np.abs(integers[-1]["weight"]).max() == q_max  # the read-out's largest weight is exactly +-q_max
    again = grid.project(projected, scales)
    for first, second in zip(jax.tree_util.tree_leaves(projected), jax.tree_util.tree_leaves(again)):
        np.testing.assert_array_equal(np.asarray(first), np.asarray(second))
    # The network runs on the grid: the forward pass of Q(params) is the forward pass of W_int * s.
    inputs = np.random.default_rng(1).poisson(0.5, (3, 5, 40)).astype(np.float32)
    rebuilt = {"layers": [{"weight": l["weight"] * l["scale"], "bias": l["bias"] * l["scale"]} for l in integers]}
    np.testing.assert_array_equal(np.asarray(forward(projected, inputs, NETWORK)), np.asarray(forward(rebuilt, inputs, NETWORK)))


def test_scale_rule_on_hand_made_weights():
    params = {
        "layers": [
            {"weight": np.array([[0.75, -0.2], [0.1, 0.0]], np.float32), "bias": np.zeros(2, np.float32)},
            {"weight": np.array([[0.5, -0.25]], np.float32), "bias": np.array([0.3], np.float32)},
        ]
    }
    grid = WeightGrid("int4", (1.0, None))
    hidden, readout = (np.float32(s) for s in grid.scales(params))
    assert hidden == np.float32(1.0 / 8.5)  # k = floor(1.0 * 7 / 0.75 - 1/2) = 8: threshold = 8.5 steps
    assert readout == np.float32(0.5 / 7)
    projected = grid.project(params, (hidden, readout))
    # 0.75 / (1 / 8.5) = 6.375, -0.2 * 8.5 = -1.7, 0.1 * 8.5 = 0.85
    np.testing.assert_array_equal(integer_form(projected, (hidden, readout), "int4")[0]["weight"], [[6, -2], [1, 0]])
    np.testing.assert_array_equal(integer_form(projected, (hidden, readout), "int4")[1]["bias"], [4])  # 0.3 / (0.5/7) = 4.2
    # an all-zero matrix gets a finite scale and stays zero
    zero = {"layers": [{"weight": np.zeros((2, 2), np.float32), "bias": np.zeros(2, np.float32)}]}
    projected, scales = WeightGrid("int8", (None,)).quantize(zero)
    assert np.isfinite(np.float32(scales[0])) and not np.any(np.asarray(projected["layers"][0]["weight"]))


def test_float32_grid_is_the_identity_and_off_grid_parameters_are_refused():
    params = _params()
    grid = WeightGrid.for_network("float32", NETWORK)
    assert grid.apply(params) is params and grid.quantize(params) == (params, None)
    with pytest.raises(CheckpointError, match="not integer multiples of the scale"):
        integer_form(params, [0.01, 0.01, 0.01], "int8")
    projected, scales = WeightGrid.for_network("int8", NETWORK).quantize(params)
    with pytest.raises(CheckpointError, match="exceed 7, the range of int4"):
        integer_form(projected, scales, "int4")


def test_bad_weights_option_names_it():
    with pytest.raises(ConfigError, match="network.weights"):
        apply_overrides(TrainConfig(), {"network.weights": "int3"})
    with pytest.raises(ConfigError, match=r"network\.weights = 'int16'.*float32, int8, int4"):
        NetworkSection(weights="int16")
    with pytest.raises(ConfigError, match="network.weights"):
        WeightGrid("bfloat16")
    assert apply_overrides(TrainConfig(), {"network.weights": "int4"}).network.weights == "int4"


# ---------------------------------------------------------------------------------------------
# A trained int8 run folder on the real subset


def _tiny_int8_config(root) -> TrainConfig:
    """17 x 17 frames, 4 bins, 32 hidden neurons, 32 members, 40 generations (~15 s), reset to zero, constant rate."""
    return apply_overrides(
        TrainConfig(),
        {
            "data.root": str(root), "data.num_time_bins": 4, "data.pool": 2,
            "network.hidden_sizes": [32], "network.reset": "zero", "network.weights": "int8",
            "strategy.population_size": 32, "strategy.rank": 2, "strategy.sigma": 0.05, "strategy.learning_rate": 0.02,
            "strategy.learning_rate_schedule": "constant",
            "train.generations": 40, "train.batch_size": 32, "train.eval_every": 20, "train.checkpoint_every": 40,
            "train.generations_per_call": 20, "train.eval_batch_size": 128,
        },
    )


@pytest.fixture(scope="module")
def int8_run(nmnist_small_root, tmp_path_factory):
    from eggroll_snn.training import train

    run_dir = tmp_path_factory.mktemp("int8") / "run"
    return run_dir, train(_tiny_int8_config(nmnist_small_root), run_dir, progress=False)


def test_int8_training_learns_and_saves_integer_weights(int8_run):
    run_dir, result = int8_run
    # Chance is 0.10 on the 100 real test recordings; 40 generations reach ~0.4 (0.40 when written).
    assert result.test_accuracy >= 0.25
    params, config, metadata = load_model(run_dir)
    assert config.network.weights == "int8"
    record = metadata["weights"]
    assert (record["format"], record["q_max"], record["integer_dtype"]) == ("int8", 127, "int8")
    assert len(record["layers"]) == 2
    integers = integer_form(params, [layer["scale"] for layer in record["layers"]], "int8")
    for layer, saved, integer in zip(params["layers"], record["layers"], integers):
        ratio = np.asarray(layer["weight"]) / np.float32(saved["scale"])
        np.testing.assert_allclose(ratio, np.rint(ratio), atol=1e-4)
        assert np.abs(np.rint(ratio)).max() <= 127
        assert (saved["weight_int_min"], saved["weight_int_max"]) == (integer["weight"].min(), integer["weight"].max())
    hidden = record["layers"][0]
    assert hidden["threshold"] == 1.0 and abs(1.0 / hidden["scale"] - hidden["threshold_steps"]) < 1e-4
    assert hidden["threshold_steps"] % 1 == 0.5 and hidden["integer_spike_level"] == hidden["threshold_steps"] + 0.5
    assert record["layers"][1]["threshold_steps"] is None and record["layers"][1]["integer_spike_level"] is None
    # The saved integer arrays give the model back exactly.
    integer_metadata = json.loads((run_dir / "model_integer.json").read_text())
    assert integer_metadata["weights"] == record
    with np.load(run_dir / "model_integer.npz") as archive:
        for index, layer in enumerate(params["layers"]):
            weight, scale = archive[f"layers/{index}/weight"], archive[f"layers/{index}/scale"]
            assert weight.dtype == np.int8 and archive[f"layers/{index}/bias"].dtype == np.int32
            np.testing.assert_array_equal(weight.astype(np.float32) * scale, np.asarray(layer["weight"]))
    # Re-evaluating the saved (on-grid) model reproduces the trainer's test figure.
    assert evaluate_run(run_dir)["accuracy"] == pytest.approx(result.test_accuracy)
    np.testing.assert_array_equal(np.asarray(result.params["layers"][0]["weight"]), np.asarray(params["layers"][0]["weight"]))


def test_nir_export_of_an_int8_run_holds_integer_times_scale(int8_run, tmp_path):
    run_dir, _ = int8_run
    params, config, metadata = load_model(run_dir)
    export_run(run_dir, tmp_path / "model.nir")
    graph = nir.read(tmp_path / "model.nir")
    scales = [np.float32(layer["scale"]) for layer in metadata["weights"]["layers"]]
    assert graph.metadata["weight_format"] == "int8" and int(graph.metadata["weight_q_max"]) == 127
    assert "weight / scale is integral" in graph.metadata["weight_representation"]
    hidden_level = metadata["weights"]["layers"][0]["integer_spike_level"]
    assert list(graph.metadata["integer_spike_levels"]) == [hidden_level, -1]
    np.testing.assert_array_equal(graph.metadata["weight_scales"], np.asarray(scales, np.float32))
    for name, layer, scale in zip(("affine_1", "affine_out"), params["layers"], scales):
        node = graph.nodes[name]
        assert node.metadata["weight_int"].dtype == np.int8 and np.float32(node.metadata["scale"]) == scale
        np.testing.assert_array_equal(node.weight, node.metadata["weight_int"].astype(np.float32) * scale)
        np.testing.assert_array_equal(node.bias, node.metadata["bias_int"].astype(np.float32) * scale)
        np.testing.assert_array_equal(node.weight, np.asarray(layer["weight"], np.float32))
    # The read-back graph reproduces the trained network's decisions.
    inputs = np.random.default_rng(0).poisson(0.3, (16, config.data.num_time_bins, config.data.input_size))
    network = config.network_config()
    expected = np.asarray(forward(params, inputs.astype(np.float32), network)).argmax(axis=1)
    np.testing.assert_array_equal(simulate_nir(graph, inputs)["logits"].argmax(axis=1), expected)


def test_nir_export_refuses_weights_off_their_recorded_grid(int8_run):
    run_dir, _ = int8_run
    params, config, metadata = load_model(run_dir)
    params["layers"][0]["weight"] = params["layers"][0]["weight"] * np.float32(1.001)
    with pytest.raises(CheckpointError, match="layer 0 weight: not integer multiples"):
        to_nir(params, config.network_config(), integer_weights=metadata["weights"])


def test_train_command_weights_flag_sets_the_option(tmp_path, capsys):
    from eggroll_snn.cli import build_parser, main
    from eggroll_snn.commands.train import overrides_from_args

    args = build_parser().parse_args(["train", "--weights", "int4"])
    assert overrides_from_args(args)["network.weights"] == "int4"
    assert main(["train", "--weights", "int5", "--out", str(tmp_path / "run"), "--no-progress"]) != 0
    assert "network.weights = 'int5'" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()
