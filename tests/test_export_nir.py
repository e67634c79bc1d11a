"""NIR export: write, read back with ``nir.read``, re-simulate independently, compare with the network.

The reference is :func:`eggroll_snn.network.forward_with_state`; the re-simulation is
:func:`eggroll_snn.export.simulate.simulate_nir` (NIR's continuous equations, forward Euler, numpy
float64), run on the graph as read back from the file. Inputs are frames of the 100 real N-MNIST
test recordings. Parameters are drawn with ``init_params`` (no trained model needed): their
activity is checked so that the comparison is not between silent networks.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import jax
import nir
import numpy as np
import pytest

from eggroll_snn import checkpoint, config
from eggroll_snn.data.frames import FrameConfig, events_to_frames
from eggroll_snn.data.nmnist import NMNIST
from eggroll_snn.errors import ConfigError, DataFormatError
from eggroll_snn.export import simulate_nir, to_nir
from eggroll_snn.network import MIN_THRESHOLD, NetworkConfig, forward_with_state, init_params

FRAMES = FrameConfig(num_time_bins=8, pool=2)
FRAME_SHAPE = (8, 2, 17, 17)
INPUT_SIZE = 2 * 17 * 17


@pytest.fixture(scope="module")
def real_inputs(nmnist_small_root) -> np.ndarray:
    """The 100 real test recordings as ``(100, 8, 578)`` float32 event counts."""
    dataset = NMNIST(nmnist_small_root, split="test")
    frames = np.stack([events_to_frames(dataset[index][0], FRAMES) for index in range(len(dataset))])
    assert frames.shape == (100, *FRAME_SHAPE)
    return frames.reshape(len(frames), FRAME_SHAPE[0], -1).astype(np.float32)


def _network(seed: int = 1, **options) -> tuple[NetworkConfig, dict]:
    network_config = NetworkConfig(**{"input_size": INPUT_SIZE, "hidden_sizes": (64, 32), **options})
    params = jax.tree_util.tree_map(np.array, init_params(jax.random.key(seed), network_config))
    return network_config, params


def _write_and_read(graph: nir.NIRGraph, tmp_path) -> nir.NIRGraph:
    path = tmp_path / "model.nir"
    nir.write(path, graph)
    return nir.read(path)


def _chain(graph: nir.NIRGraph) -> list[str]:
    """Node names along the edges from ``input`` (``nir.read`` returns nodes in name order)."""
    successors = dict(graph.edges)
    assert len(successors) == len(graph.edges), "the exported graph must be a chain"
    names = ["input"]
    while names[-1] in successors:
        names.append(successors[names[-1]])
    assert len(names) == len(graph.nodes)
    return names


def _export_quietly(params, network_config, **options) -> nir.NIRGraph:
    """``to_nir`` that fails on any warning (a reset-to-zero export must not warn)."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        return to_nir(params, network_config, **options)


def _assert_spikes_equal(reference: dict, simulated: dict, names: list[str]) -> None:
    assert list(simulated["spikes"]) == names
    for layer, name in enumerate(names):
        expected = np.asarray(reference["spikes"][layer]).astype(bool)
        np.testing.assert_array_equal(simulated["spikes"][name], expected, err_msg=f"spikes of {name}")


@pytest.mark.parametrize("readout", ["mean", "max"])
def test_zero_reset_export_reproduces_the_network_on_real_recordings(real_inputs, tmp_path, readout):
    network_config, params = _network(reset="zero", readout=readout)
    graph = _write_and_read(_export_quietly(params, network_config, frame_shape=FRAME_SHAPE), tmp_path)

    simulated = simulate_nir(graph, real_inputs)  # dt from the file's metadata
    reference = forward_with_state(params, real_inputs, network_config)

    # Not a comparison of silent or saturated networks: every layer fires, none always.
    for spikes in reference["spikes"]:
        assert 0.02 < float(np.mean(spikes)) < 0.6
    _assert_spikes_equal(reference, simulated, ["lif_1", "lif_2"])
    for layer, name in enumerate(["lif_1", "lif_2"]):
        np.testing.assert_allclose(simulated["membranes"][name], reference["membranes"][layer], rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(simulated["outputs"], reference["readout_membrane"], rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(simulated["logits"], reference["logits"], rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(simulated["logits"].argmax(axis=1), np.asarray(reference["logits"]).argmax(axis=1))


def test_leak_free_readout_exports_as_the_affine_itself(real_inputs, tmp_path):
    """readout_beta = 0 (u[t] = W s[t] + b): no LI node, the logits are the mean of affine_out's output."""
    network_config, params = _network(reset="subtract", readout_beta=0.0)
    graph = _write_and_read(_export_quietly(params, network_config, frame_shape=FRAME_SHAPE), tmp_path)
    assert {type(node).__name__ for node in graph.nodes.values()} == {"Input", "Affine", "CubaLIF", "Linear", "Output"}
    assert graph.metadata["readout_node"] == "affine_out" and ("affine_out", "output") in graph.edges

    simulated = simulate_nir(graph, real_inputs)
    reference = forward_with_state(params, real_inputs, network_config)
    assert 0.02 < float(np.asarray(reference["spikes"][1]).mean()) < 0.6
    np.testing.assert_allclose(simulated["outputs"], reference["readout_membrane"], rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(simulated["logits"], reference["logits"], rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(simulated["logits"].argmax(axis=1), np.asarray(reference["logits"]).argmax(axis=1))


def test_parameter_mapping_per_neuron(real_inputs):
    """Learned per-neuron beta/theta map to tau = dt/(1-beta), r = tau/dt, v_threshold = theta."""
    dt = 1e-4
    network_config, params = _network(seed=2, hidden_sizes=(16,), reset="zero", learn_beta=True, learn_threshold=True)
    rng = np.random.default_rng(0)
    hidden, readout = params["layers"]
    hidden["beta"] = rng.uniform(0.5, 0.95, 16).astype(np.float32)
    hidden["threshold"] = rng.uniform(0.5, 1.5, 16).astype(np.float32)
    hidden["threshold"][3] = -0.2  # the network clips this to MIN_THRESHOLD; so must the export
    readout["beta"] = rng.uniform(0.6, 0.99, 10).astype(np.float32)

    graph = _export_quietly(params, network_config, dt=dt)

    assert [type(graph.nodes[name]).__name__ for name in _chain(graph)] == [
        "Input", "Affine", "LIF", "Affine", "LI", "Output",
    ]
    lif, li = graph.nodes["lif_1"], graph.nodes["li_out"]
    beta = hidden["beta"].astype(np.float64)
    np.testing.assert_allclose(lif.tau, dt / (1 - beta), rtol=1e-12)
    np.testing.assert_allclose(lif.r, lif.tau / dt, rtol=1e-12)
    np.testing.assert_allclose(1 - dt / lif.tau, beta, rtol=1e-12)  # what snnTorch's importer reads
    np.testing.assert_allclose(lif.r * dt / lif.tau, 1.0, rtol=1e-12)  # its input scale must be 1
    expected_threshold = np.maximum(hidden["threshold"].astype(np.float64), MIN_THRESHOLD)
    np.testing.assert_array_equal(lif.v_threshold, expected_threshold)
    np.testing.assert_array_equal(lif.v_leak, np.zeros(16))
    np.testing.assert_array_equal(lif.v_reset, np.zeros(16))
    np.testing.assert_allclose(li.tau, dt / (1 - readout["beta"].astype(np.float64)), rtol=1e-12)
    np.testing.assert_allclose(li.r, li.tau / dt, rtol=1e-12)
    np.testing.assert_array_equal(graph.nodes["affine_1"].weight, hidden["weight"])
    np.testing.assert_array_equal(graph.nodes["affine_out"].bias, readout["bias"])

    # Heterogeneous neurons still reproduce the network (spikes exactly).
    inputs = real_inputs[:20]
    reference = forward_with_state(params, inputs, network_config)
    simulated = simulate_nir(graph, inputs)
    assert float(np.mean(reference["spikes"][0])) > 0.02
    _assert_spikes_equal(reference, simulated, ["lif_1"])
    np.testing.assert_allclose(simulated["logits"], reference["logits"], rtol=1e-5, atol=1e-5)


def test_metadata_survives_the_file(tmp_path):
    network_config, params = _network(reset="zero", readout="max", readout_beta=0.9)
    graph = _write_and_read(_export_quietly(params, network_config, dt=2e-3, frame_shape=FRAME_SHAPE), tmp_path)

    assert _chain(graph) == ["input", "affine_1", "lif_1", "affine_2", "lif_2", "affine_out", "li_out", "output"]
    metadata = graph.metadata
    assert metadata["dt"] == 2e-3
    assert metadata["discretisation"] == "forward_euler"
    assert metadata["reset"] == "zero" and metadata["reset_form"] == "LIF with v_reset = 0"
    assert int(metadata["recurrent_edge_delay_steps"]) == 1
    assert metadata["readout"] == "max" and metadata["readout_node"] == "li_out"
    assert list(metadata["input_shape"]) == list(FRAME_SHAPE)
    assert list(metadata["hidden_sizes"]) == [64, 32]
    assert int(metadata["edge_delay_steps"]) == 0
    assert list(graph.nodes["input"].input_type["input"]) == [INPUT_SIZE]


@pytest.mark.parametrize("readout", ["mean", "spike_count"])
def test_subtraction_reset_export_reproduces_the_network_on_real_recordings(real_inputs, tmp_path, readout):
    """The default reset (v <- v - theta) exports exactly: CubaLIF + a recurrent -beta*theta edge.

    The CubaLIF's synaptic current must be the network's membrane before reset, every spike the
    network's; without the recurrent edges the same graph fires more (so they are what subtracts).
    """
    network_config, params = _network(reset="subtract", readout=readout, readout_beta=0.9)
    graph = _write_and_read(_export_quietly(params, network_config, frame_shape=FRAME_SHAPE), tmp_path)

    kinds = {type(node).__name__ for node in graph.nodes.values()}
    expected_kinds = {"Input", "Affine", "CubaLIF", "Linear", "Output"} | ({"LI"} if readout == "mean" else set())
    assert kinds == expected_kinds
    for number in (1, 2):
        np.testing.assert_array_equal(graph.nodes[f"rec_{number}"].weight, np.diag(np.full(graph.nodes[f"rec_{number}"].weight.shape[0], -0.9)))
        assert (f"cubalif_{number}", f"rec_{number}") in graph.edges and (f"rec_{number}", f"cubalif_{number}") in graph.edges

    simulated = simulate_nir(graph, real_inputs)
    reference = forward_with_state(params, real_inputs, network_config)
    hidden = ["cubalif_1", "cubalif_2"]
    assert sorted(simulated["delayed_edges"]) == sorted([("rec_1", "cubalif_1"), ("rec_2", "cubalif_2")] + (
        [("rec_out", "cubalif_out")] if readout == "spike_count" else []
    ))
    for layer, name in enumerate(hidden):
        spikes = np.asarray(reference["spikes"][layer])
        assert 0.02 < float(spikes.mean()) < 0.6
        np.testing.assert_array_equal(simulated["spikes"][name], spikes.astype(bool), err_msg=f"spikes of {name}")
        before_reset = np.asarray(reference["membranes"][layer]) + network_config.threshold * spikes
        np.testing.assert_allclose(simulated["currents"][name], before_reset, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(simulated["logits"], reference["logits"], rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(simulated["logits"].argmax(axis=1), np.asarray(reference["logits"]).argmax(axis=1))

    without_recurrence = nir.NIRGraph(
        nodes={name: node for name, node in graph.nodes.items() if not name.startswith("rec_")},
        edges=[edge for edge in graph.edges if not any(name.startswith("rec_") for name in edge)],
        metadata=graph.metadata,
    )
    reset_free = simulate_nir(without_recurrence, real_inputs)["spikes"]["cubalif_1"]
    assert reset_free.mean() > simulated["spikes"]["cubalif_1"].mean() + 0.02


def test_subtraction_reset_with_learned_per_neuron_constants(real_inputs):
    network_config, params = _network(seed=5, hidden_sizes=(24,), learn_beta=True, learn_threshold=True, readout="spike_count")
    rng = np.random.default_rng(1)
    for layer, size in zip(params["layers"], (24, 10)):
        layer["beta"] = rng.uniform(0.0, 0.97, size).astype(np.float32)
        layer["threshold"] = rng.uniform(0.4, 1.2, size).astype(np.float32)
    graph = _export_quietly(params, network_config, dt=1e-4)
    beta = params["layers"][0]["beta"].astype(np.float64)
    threshold = params["layers"][0]["threshold"].astype(np.float64)
    cuba = graph.nodes["cubalif_1"]
    np.testing.assert_allclose(cuba.tau_syn, 1e-4 / (1 - beta), rtol=1e-12)
    np.testing.assert_allclose(cuba.w_in * 1e-4 / cuba.tau_syn, 1.0, rtol=1e-12)  # unit input scale
    np.testing.assert_array_equal(cuba.tau_mem, np.full(24, 1e-4))
    np.testing.assert_array_equal(cuba.v_threshold, threshold)
    np.testing.assert_allclose(np.diag(graph.nodes["rec_1"].weight), -beta * threshold, rtol=1e-12)

    inputs = real_inputs[:30]
    reference = forward_with_state(params, inputs, network_config)
    simulated = simulate_nir(graph, inputs)
    assert float(np.mean(reference["spikes"][0])) > 0.02
    np.testing.assert_array_equal(simulated["spikes"]["cubalif_1"], np.asarray(reference["spikes"][0]).astype(bool))
    np.testing.assert_array_equal(simulated["logits"], np.asarray(reference["logits"]))  # spike counts, exactly


def test_recurrent_edges_deliver_one_step_later():
    """A beta = 0 LIF that inhibits itself by 1 per spike, driven by 1 per step, fires every other step."""
    graph = nir.NIRGraph(
        nodes={
            "input": nir.Input(input_type=np.array([1])),
            "lif": nir.LIF(tau=np.array([1e-3]), r=np.array([1.0]), v_leak=np.zeros(1), v_threshold=np.array([0.5])),
            "inhibit": nir.Linear(weight=np.array([[-1.0]])),
            "output": nir.Output(output_type=np.array([1])),
        },
        edges=[("input", "lif"), ("lif", "inhibit"), ("inhibit", "lif"), ("lif", "output")],
        metadata={"dt": 1e-3, "readout": "spike_count"},
    )
    result = simulate_nir(graph, np.ones((1, 6, 1)))
    np.testing.assert_array_equal(result["outputs"][0, :, 0], [1, 0, 1, 0, 1, 0])
    assert result["delayed_edges"] == [("inhibit", "lif")]
    assert result["logits"][0, 0] == 3


def test_leak_free_layers_export_as_if_and_i(real_inputs):
    """beta = 1 has no finite tau: such layers become IF / I nodes with r = 1/dt."""
    dt = 1e-3
    network_config, params = _network(hidden_sizes=(32,), reset="zero", beta=1.0, readout_beta=1.0, threshold=4.0)
    graph = _export_quietly(params, network_config, dt=dt)

    assert [type(graph.nodes[name]).__name__ for name in _chain(graph)] == ["Input", "Affine", "IF", "Affine", "I", "Output"]
    np.testing.assert_allclose(graph.nodes["if_1"].r, np.full(32, 1 / dt))
    np.testing.assert_allclose(graph.nodes["i_out"].r, np.full(10, 1 / dt))
    assert graph.metadata["readout_node"] == "i_out"

    reference = forward_with_state(params, real_inputs, network_config)
    simulated = simulate_nir(graph, real_inputs)
    assert 0.02 < float(np.mean(reference["spikes"][0])) < 0.6
    _assert_spikes_equal(reference, simulated, ["if_1"])
    np.testing.assert_allclose(simulated["logits"], reference["logits"], rtol=1e-5, atol=1e-5)


def test_network_without_hidden_layers(real_inputs, tmp_path):
    network_config, params = _network(hidden_sizes=(), reset="zero", readout_beta=0.9)
    graph = _write_and_read(_export_quietly(params, network_config), tmp_path)
    assert _chain(graph) == ["input", "affine_out", "li_out", "output"]
    reference = forward_with_state(params, real_inputs[:10], network_config)
    np.testing.assert_allclose(simulate_nir(graph, real_inputs[:10])["logits"], reference["logits"], rtol=1e-5, atol=1e-5)


# ---------------------------------------------------------------------------------------------
# Bad input


def test_to_nir_refuses_parameters_of_another_network():
    network_config, params = _network(reset="zero")
    with pytest.raises(ConfigError, match=r"params layer 1: weight \(32, 64\)"):
        to_nir(params, NetworkConfig(input_size=INPUT_SIZE, hidden_sizes=(64, 16), reset="zero"))
    with pytest.raises(ConfigError, match="3 layers, but the network config"):
        to_nir(params, NetworkConfig(input_size=INPUT_SIZE, hidden_sizes=(64,), reset="zero"))


@pytest.mark.parametrize("dt", [0.0, -1e-3, float("nan"), float("inf"), "fast"])
def test_to_nir_refuses_a_bad_time_step(dt):
    network_config, params = _network(reset="zero")
    with pytest.raises(ConfigError, match="dt="):
        to_nir(params, network_config, dt=dt)


def test_to_nir_refuses_a_layer_mixing_leaky_and_leak_free_neurons():
    network_config, params = _network(hidden_sizes=(8,), reset="zero", learn_beta=True)
    params["layers"][0]["beta"][:3] = 1.5  # clipped to 1 by the network: no leak for 3 of 8 neurons
    with pytest.raises(ConfigError, match="hidden layer 1: 3 of 8 neurons have beta = 1"):
        to_nir(params, network_config)


def test_to_nir_refuses_what_nir_cannot_express_exactly():
    network_config, params = _network(hidden_sizes=(8,), reset="subtract", beta=1.0)
    with pytest.raises(ConfigError, match="hidden layer 1: 8 of 8 neurons have beta = 1 .* reset by subtraction"):
        to_nir(params, network_config)


@pytest.mark.parametrize("reset", ["subtract", "zero"])
def test_conv_export_reproduces_the_network_on_real_recordings(real_inputs, tmp_path, reset):
    """Two conv LIF blocks (3 x 3, sum pooling 2) + a dense layer: Conv2d -> LIF/CubaLIF -> SumPool2d -> Flatten."""
    network_config, params = _network(
        seed=7, input_shape=(2, 17, 17), conv_channels=(4, 6), conv_kernel=3, conv_pool=2, hidden_sizes=(16,),
        reset=reset, init_gain=2.0,
    )
    graph = _write_and_read(_export_quietly(params, network_config, frame_shape=FRAME_SHAPE), tmp_path)
    neurons = "cubalif" if reset == "subtract" else "lif"
    assert {type(node).__name__ for node in graph.nodes.values()} >= {"Conv2d", "SumPool2d", "Flatten"}
    assert graph.nodes["conv_1"].weight.shape == (4, 2, 3, 3) and graph.nodes[f"{neurons}_c2"].v_threshold.shape == (6, 5, 5)

    inputs = real_inputs[:40]
    simulated = simulate_nir(graph, inputs)
    reference = forward_with_state(params, inputs, network_config)
    for layer, name in enumerate([f"{neurons}_c1", f"{neurons}_c2", f"{neurons}_1"]):
        expected = np.asarray(reference["spikes"][layer]).astype(bool)
        assert 0.01 < expected.mean() < 0.6, name
        if expected.ndim == 5:  # the network's maps are channels-last, NIR's channels-first
            expected = expected.transpose(0, 1, 4, 2, 3)
        np.testing.assert_array_equal(simulated["spikes"][name], expected, err_msg=f"spikes of {name}")
    np.testing.assert_allclose(simulated["logits"], reference["logits"], rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(simulated["logits"].argmax(axis=1), np.asarray(reference["logits"]).argmax(axis=1))


def test_to_nir_refuses_a_frame_shape_that_does_not_match_the_input():
    network_config, params = _network(reset="zero")
    with pytest.raises(ConfigError, match="frame_shape"):
        to_nir(params, network_config, frame_shape=(8, 2, 34, 34))


def _tiny_graph() -> nir.NIRGraph:
    network_config, params = _network(seed=3, input_size=4, hidden_sizes=(3,), num_classes=2, reset="zero")
    return _export_quietly(params, network_config)


def test_simulate_nir_refuses_what_it_cannot_run():
    graph = _tiny_graph()
    inputs = np.ones((2, 5, 4))

    with pytest.raises(DataFormatError, match=r"inputs of shape \(2, 5, 3\): expected \(B, T, 4\)"):
        simulate_nir(graph, inputs[..., :3])

    graph.metadata = {key: value for key, value in graph.metadata.items() if key != "dt"}
    with pytest.raises(ConfigError, match="dt: not given"):
        simulate_nir(graph, inputs)
    assert simulate_nir(graph, inputs, dt=1e-3)["logits"].shape == (2, 2)

    unsupported = nir.NIRGraph(
        nodes={
            "input": nir.Input(input_type=np.array([4])),
            "step": nir.Threshold(threshold=np.zeros(4)),
            "output": nir.Output(output_type=np.array([4])),
        },
        edges=[("input", "step"), ("step", "output")],
        metadata={"dt": 1e-3},
    )
    with pytest.raises(DataFormatError, match="'step' is a Threshold"):
        simulate_nir(unsupported, inputs)

    island = nir.NIRGraph(
        nodes={**graph.nodes, "a": nir.Linear(weight=np.eye(4)), "b": nir.Linear(weight=np.eye(4))},
        edges=[*graph.edges, ("a", "b"), ("b", "a")],
        metadata={"dt": 1e-3},
    )
    with pytest.raises(DataFormatError, match=r"nodes \['a', 'b'\] cannot be reached"):
        simulate_nir(island, inputs)


# ---------------------------------------------------------------------------------------------
# From a run folder, through the command line


def _fake_run(run_dir, data_root, reset: str = "subtract", readout: str = "mean") -> tuple[dict, NetworkConfig]:
    """A run folder as the trainer leaves it: config.toml, model.npz + model.json (with the config)."""
    run_dir.mkdir()
    train_config = config.from_dict({
        "data": {"root": str(data_root), "num_time_bins": 8, "pool": 2},
        "network": {"hidden_sizes": [32], "reset": reset, "readout": readout, "init_gain": 2.0},
    })
    network_config = train_config.network_config()
    params = init_params(jax.random.key(4), network_config)
    config.dump(train_config, run_dir / "config.toml")
    checkpoint.save_tree(
        run_dir / "model", params, {"config": train_config.to_dict(), "generation": 3, "validation_accuracy": 0.5}
    )
    return params, network_config


@pytest.mark.parametrize(("reset", "readout", "kinds"), [
    ("subtract", "mean", "Input -> Affine -> CubaLIF (+ recurrent Linear) -> Affine -> Output"),
    ("zero", "spike_count", "Input -> Affine -> LIF -> Affine -> LIF -> Output"),
])
def test_export_command_checks_the_graph_and_writes_the_report(
    nmnist_small_root, real_inputs, tmp_path, capsys, reset, readout, kinds
):
    from eggroll_snn.cli import main

    params, network_config = _fake_run(tmp_path / "run", nmnist_small_root, reset=reset, readout=readout)
    out = tmp_path / "model.nir"
    assert main(["export", str(tmp_path / "run"), "--nir", str(out)]) == 0
    printed = capsys.readouterr().out
    assert kinds in printed
    assert "79 / 79 predictions agree (100.00 %)" in printed  # the run's held-out validation recordings

    report = json.loads((tmp_path / "model.agreement.json").read_text())
    assert (report["recordings"], report["agreeing_predictions"], report["split"]) == (79, 79, "validation")
    assert report["max_abs_logit_difference"] < 1e-4 and report["forced"] is False
    assert report["network_accuracy"] == report["nir_accuracy"]
    graph = nir.read(out)
    assert int(graph.metadata["generation"]) == 3
    assert float(graph.metadata["validation_accuracy"]) == 0.5
    assert list(graph.metadata["input_shape"]) == list(FRAME_SHAPE)
    assert int(graph.metadata["frame_config"]["num_time_bins"]) == 8
    reference = forward_with_state(params, real_inputs, network_config)
    simulated = simulate_nir(graph, real_inputs)
    np.testing.assert_array_equal(simulated["logits"].argmax(axis=1), np.asarray(reference["logits"]).argmax(axis=1))

    assert main(["export", str(tmp_path / "run"), "--nir", str(tmp_path / "test.nir"), "--split", "test"]) == 0
    assert "100 / 100 predictions agree" in capsys.readouterr().out


def test_export_refuses_a_graph_that_disagrees_unless_forced(nmnist_small_root, tmp_path, capsys, monkeypatch):
    """A graph whose read-out weights were changed disagrees: nothing is written, --force writes it."""
    from eggroll_snn.cli import main
    from eggroll_snn.export import run as export_module

    real_to_nir = export_module.to_nir

    def tampered(*args, **kwargs):
        graph = real_to_nir(*args, **kwargs)
        graph.nodes["affine_out"].weight = graph.nodes["affine_out"].weight[::-1].copy()
        return graph

    monkeypatch.setattr(export_module, "to_nir", tampered)
    _fake_run(tmp_path / "run", nmnist_small_root)
    out = tmp_path / "model.nir"
    assert main(["export", str(tmp_path / "run"), "--nir", str(out)]) == 1
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and f"NIR output {out}: the exported graph agrees" in error and "--force" in error
    assert sorted(path.name for path in tmp_path.iterdir()) == ["run"]

    assert main(["export", str(tmp_path / "run"), "--nir", str(out), "--force"]) == 0
    report = json.loads((tmp_path / "model.agreement.json").read_text())
    assert report["forced"] is True and report["agreeing_predictions"] < report["recordings"] == 79
    assert len(report["disagreeing_recordings"]) == 79 - report["agreeing_predictions"]


def test_export_bad_input_gives_one_line_naming_the_file(nmnist_small_root, tmp_path, capsys, monkeypatch):
    from eggroll_snn.cli import main

    def fails(run, out, *options):
        assert main(["export", str(run), "--nir", str(out), *options]) == 1
        error = capsys.readouterr().err
        assert error.startswith("eggroll-snn: error: ") and error.count("\n") == 1
        return error

    _fake_run(tmp_path / "run", nmnist_small_root)
    assert "model.json not found" in fails(tmp_path / "missing", tmp_path / "x.nir")
    assert f"{tmp_path / 'no'} does not exist" in fails(tmp_path / "run", tmp_path / "no" / "x.nir")
    assert "is a folder" in fails(tmp_path / "run", tmp_path)

    # A disk that fails while writing: no file, and no temporary file, is left behind.
    def full_disk(path, graph):
        Path(path).write_bytes(b"partial")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(nir, "write", full_disk)
    assert "x.nir: cannot be written (No space left on device)" in fails(tmp_path / "run", tmp_path / "x.nir")
    monkeypatch.undo()
    assert sorted(path.name for path in tmp_path.iterdir()) == ["run"]

    # A model description of an unknown format, or recording an impossible network, is named.
    description = tmp_path / "run" / "model.json"
    original = description.read_text()
    recorded = json.loads(original)
    description.write_text(json.dumps({**recorded, "format": "onnx"}))
    assert "model.json: format 'onnx' version" in fails(tmp_path / "run", tmp_path / "x.nir")
    recorded["config"]["network"]["reset"] = "sometimes"
    description.write_text(json.dumps(recorded))
    assert "model.json: its recorded config is invalid" in fails(tmp_path / "run", tmp_path / "x.nir")
    description.write_text(original)

    # A corrupt model file is named.
    corrupt = tmp_path / "run" / "model.npz"
    corrupt.write_bytes(corrupt.read_bytes()[:100])
    assert "model.npz" in fails(tmp_path / "run", tmp_path / "x.nir")
    assert sorted(path.name for path in tmp_path.iterdir()) == ["run"]


# ---------------------------------------------------------------------------------------------
# Other toolchains' NIR importers (Spyx in the test extra; Norse, snnTorch optional). Their conventions
# are in eggroll_snn.export.toolchains.


def _assert_logits_match(logits: np.ndarray, reference_logits, readout: str) -> None:
    """Spike counts exactly equal; membrane means to float32 rounding; the same predicted classes."""
    reference_logits = np.asarray(reference_logits)
    if readout == "spike_count":
        np.testing.assert_array_equal(logits, reference_logits)
    else:
        np.testing.assert_allclose(logits, reference_logits, rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(logits.argmax(axis=1), reference_logits.argmax(axis=1))


@pytest.mark.parametrize(("readout", "readout_beta"), [("mean", 0.9), ("mean", 0.0), ("spike_count", 0.9)])
def test_spyx_runs_a_default_network_export_like_our_network(real_inputs, readout, readout_beta):
    """Spyx 1.0 imports the default network's export (reset by subtraction, 1 hidden layer)."""
    pytest.importorskip("spyx")
    from eggroll_snn.export.toolchains import run_in_spyx, subgraph_until

    network_config, params = _network(seed=6, hidden_sizes=(128,), readout=readout, readout_beta=readout_beta)
    graph = _export_quietly(params, network_config)
    assert any(isinstance(node, nir.LI) for node in graph.nodes.values()) == (readout == "mean" and readout_beta > 0)
    reference = forward_with_state(params, real_inputs, network_config)
    hidden = np.asarray(reference["spikes"][0]).astype(bool)
    assert 0.02 < hidden.mean() < 0.6

    spiking = run_in_spyx(subgraph_until(graph, "cubalif_1"), real_inputs)["outputs"]
    np.testing.assert_array_equal(spiking.astype(bool), hidden)
    result = run_in_spyx(graph, real_inputs)
    _assert_logits_match(result["logits"], reference["logits"], readout)


def test_spyx_refuses_what_it_cannot_run_exactly():
    pytest.importorskip("spyx")
    from eggroll_snn.export.toolchains import run_in_spyx

    inputs = np.zeros((2, 3, INPUT_SIZE), np.float32)
    network_config, params = _network(reset="zero")
    with pytest.raises(ConfigError, match="Spyx: its neurons always reset by subtraction"):
        run_in_spyx(to_nir(params, network_config), inputs)
    network_config, params = _network()  # two hidden layers
    with pytest.raises(ConfigError, match="Spyx: 2 hidden layers"):
        run_in_spyx(to_nir(params, network_config), inputs)
    network_config, params = _network(
        seed=7, input_shape=(2, 17, 17), conv_channels=(4,), conv_kernel=3, conv_pool=2, hidden_sizes=(16,),
    )
    conv_inputs = np.zeros((2, 3, network_config.input_size), np.float32)
    with pytest.raises(ConfigError, match=r"Spyx: this runner aligns dense graphs only.*conv_1"):
        run_in_spyx(to_nir(params, network_config), conv_inputs)


@pytest.mark.filterwarnings("ignore:nirtorch.load is being deprecated")
@pytest.mark.parametrize(("readout", "readout_beta"), [("mean", 0.0), ("mean", 0.9), ("spike_count", 0.0)])
def test_norse_runs_a_subtraction_export_like_our_network(real_inputs, readout, readout_beta):
    """Norse 1.1 imports the subtraction form (two hidden layers here): spikes and logits as ours."""
    pytest.importorskip("norse")
    from eggroll_snn.export.toolchains import run_in_norse, subgraph_until

    network_config, params = _network(seed=8, readout=readout, readout_beta=readout_beta)
    graph = _export_quietly(params, network_config)
    inputs = real_inputs[:40]
    reference = forward_with_state(params, inputs, network_config)
    hidden = np.asarray(reference["spikes"][1]).astype(bool)
    assert 0.02 < hidden.mean() < 0.6
    np.testing.assert_array_equal(run_in_norse(subgraph_until(graph, "cubalif_2"), inputs)["outputs"].astype(bool), hidden)
    result = run_in_norse(graph, inputs)
    _assert_logits_match(result["logits"], reference["logits"], readout)

    zero_config, zero_params = _network(reset="zero")
    with pytest.raises(ConfigError, match="Norse: its LIF ignores r"):
        run_in_norse(to_nir(zero_params, zero_config), inputs)


@pytest.mark.filterwarnings("ignore:The given NumPy array is not writable")
def test_snntorch_runs_a_zero_reset_spike_count_export(real_inputs):
    """snnTorch 1.0's ``import_from_nir`` runs a reset-to-zero, spike-count export (dt = 1e-4 s)."""
    pytest.importorskip("nirtorch")
    pytest.importorskip("snntorch")
    pytest.importorskip("torch")
    from eggroll_snn.export.toolchains import run_in_snntorch, subgraph_until

    network_config, params = _network(reset="zero", readout="spike_count")
    graph = _export_quietly(params, network_config, dt=1e-4)
    inputs = real_inputs[:40]
    reference = forward_with_state(params, inputs, network_config)
    assert float(np.mean(reference["spikes"][1])) > 0.02
    spikes = run_in_snntorch(subgraph_until(graph, "lif_2"), inputs)["outputs"]
    np.testing.assert_array_equal(spikes.astype(bool), np.asarray(reference["spikes"][1]).astype(bool))
    np.testing.assert_array_equal(run_in_snntorch(graph, inputs)["logits"], np.asarray(reference["logits"]))

    subtracting_config, subtracting_params = _network(readout="spike_count")
    with pytest.raises(ConfigError, match="cannot run reset by subtraction"):
        run_in_snntorch(to_nir(subtracting_params, subtracting_config, dt=1e-4), inputs)
    affine_config, affine_params = _network(reset="zero")  # the default read-out: an Affine, no LI
    affine_reference = np.asarray(forward_with_state(affine_params, inputs, affine_config)["logits"])
    _assert_logits_match(run_in_snntorch(to_nir(affine_params, affine_config, dt=1e-4), inputs)["logits"], affine_reference, "mean")
    li_config, li_params = _network(reset="zero", readout_beta=0.9)
    with pytest.raises(ConfigError, match="no module for nir.LI"):
        run_in_snntorch(to_nir(li_params, li_config, dt=1e-4), inputs)
    with pytest.raises(ConfigError, match="assumes dt = 0.0001 s"):
        run_in_snntorch(to_nir(params, network_config), inputs)
