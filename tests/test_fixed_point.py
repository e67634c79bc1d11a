"""The fixed-point LIF network: its arithmetic, its integer members, and the independent int64 reference."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from eggroll_snn.integer import reference as integer_reference
from eggroll_snn.integer.arithmetic import decay
from eggroll_snn.integer.spec import FixedPointSpec
from eggroll_snn.network import NetworkConfig, forward_with_state, init_params
from eggroll_snn.config import TrainConfig, apply_overrides
from eggroll_snn.data import NMNIST, events_to_frames
from eggroll_snn.errors import ConfigError
from eggroll_snn.run_folder import export_integer, load_integer
from eggroll_snn.integer.hil.client import request_arrays
from eggroll_snn.integer.hil.reference_evaluator import evaluate_request
from eggroll_snn.population import member_losses, population_logits
from eggroll_snn.training import strategy_from_config as make_strategy


def fixed_config(**changes) -> TrainConfig:
    options = {
        "network.neuron": "fixed_point",
        "network.hidden_sizes": [32],
        "data.num_time_bins": 6,
        "strategy.population_size": 16,
        "strategy.rank": 2,
        "train.generations": 100,
    }
    options.update(changes)
    return apply_overrides(TrainConfig(), options)


def spec_of(**changes) -> FixedPointSpec:
    values = dict(fraction_bits=7, weight_max=127, state_bits=16, threshold=128, leak="shift",
                  membrane_leak=3, synapse_leak=0, readout_leak=3, reset="subtract")
    values.update(changes)
    return FixedPointSpec(**values)


def test_leaks_follow_the_chips_integer_rules():
    z = jnp.asarray([100, -100, 7, -1, 0, 32767, -32768], jnp.int32)
    # Xylo: z - (z >> 3), arithmetic shift (floor): -100 >> 3 = -13.
    assert decay(z, 3, spec_of()).tolist() == [88, -87, 7, 0, 0, 28672, -28672]
    # Loihi: sign(z) * (|z| * (4096 - 410) >> 12), rounding towards zero.
    assert decay(z, 410, spec_of(leak="multiplier")).tolist() == [89, -89, 6, 0, 0, 29487, -29488]
    record = {"leak": "multiplier"}
    assert integer_reference._decay(np.asarray(z, np.int64), 410, record["leak"]).tolist() == [89, -89, 6, 0, 0, 29487, -29488]


def test_leak_parameters_and_threshold_come_from_the_float_network():
    network = fixed_config(**{"fixed_point.leak": "multiplier", "fixed_point.synapse_beta": 0.5, "network.readout_beta": 0.9}).network_config()
    spec = network.fixed_point
    assert (spec.threshold, spec.membrane_leak, spec.readout_leak, spec.synapse_leak) == (128, 410, 410, 2048)
    spec = fixed_config(**{"network.beta": 0.75, "fixed_point.fraction_bits": 5}).network_config().fixed_point
    assert (spec.threshold, spec.membrane_leak, spec.synapse_leak) == (32, 2, 0)


def test_saturation_at_the_register_width_and_both_resets():
    """One input, one neuron: 8-bit registers saturate at 127, then the reset acts on the saturated value."""
    params = {"layers": [{"weight": jnp.asarray([[100 / 128]]), "bias": jnp.zeros(1)},
                         {"weight": jnp.asarray([[1.0]]), "bias": jnp.zeros(1)}]}
    inputs = jnp.asarray([[[3.0], [0.0]]])  # 300 -> saturates at 127 in bin 1, then nothing
    for reset, after in (("subtract", 63), ("zero", 0)):
        spec = spec_of(state_bits=8, threshold=64, reset=reset, membrane_leak=0)
        network = NetworkConfig(
            input_size=1, hidden_sizes=(1,), num_classes=1, reset=reset, neuron="fixed_point", fixed_point=spec
        )
        state = forward_with_state(params, inputs, network)
        assert state["synaptic"][0][0, :, 0].tolist() == [127, 0]
        assert state["spikes"][0][0, :, 0].tolist() == [1, 0]
        # membrane_leak 0 forgets everything: bin 2 is 0 either way; bin 1 is 127 - 64 or 0.
        assert state["membranes"][0][0, :, 0].tolist() == [after, 0]


def _real_frames(root, split: str, count: int, config: TrainConfig) -> tuple[np.ndarray, np.ndarray]:
    dataset = NMNIST(root, split)
    picks = np.linspace(0, len(dataset) - 1, count).astype(int)
    frames, labels = [], []
    for index in picks:
        events, label = dataset[int(index)]
        frames.append(events_to_frames(events, config.data.frame_config()))
        labels.append(label)
    frames = np.stack(frames)
    return frames.reshape(frames.shape[0], frames.shape[1], -1).astype(np.float32), np.asarray(labels)


def _train_a_little(config: TrainConfig, inputs, labels, generations: int = 6):
    network = config.network_config()
    strategy = make_strategy(config)
    state = strategy.init(jax.random.key(3), init_params(jax.random.key(2), network))

    @jax.jit
    def step(state):
        perturbations = strategy.ask(state)
        losses, _ = member_losses(population_logits(state.params, perturbations, inputs, network), labels)
        return strategy.tell(state, -losses)[0]

    for _ in range(generations):
        state = step(state)
    return network, strategy, state


ARITHMETICS = {
    "xylo": {},
    "loihi": {"fixed_point.leak": "multiplier", "network.reset": "zero", "fixed_point.state_bits": 24},
    "synaptic_state": {"fixed_point.synapse_beta": 0.5, "fixed_point.state_bits": 12},
}


@pytest.fixture(scope="module")
def trained(nmnist_small_root):
    """A fixed-point network trained for 6 generations on 32 real recordings, and 24 real test recordings."""
    config = fixed_config()
    train_inputs, train_labels = _real_frames(nmnist_small_root, "train", 32, config)
    network, strategy, state = _train_a_little(config, jnp.asarray(train_inputs), jnp.asarray(train_labels))
    test_inputs, _ = _real_frames(nmnist_small_root, "test", 24, config)
    return {"strategy": strategy, "state": state, "train_inputs": train_inputs, "test_inputs": test_inputs}


@pytest.mark.parametrize("arithmetic", ARITHMETICS)
def test_int64_reference_reproduces_every_spike_and_readout_of_a_trained_network(arithmetic, trained, tmp_path):
    """The trained weights run under each chip's arithmetic; the reference reads only the exported files."""
    network = fixed_config(**ARITHMETICS[arithmetic]).network_config()
    params, test_inputs = trained["state"].params, trained["test_inputs"]
    expected = jax.tree_util.tree_map(np.asarray, forward_with_state(params, jnp.asarray(test_inputs), network))
    export_integer(params, network.fixed_point, tmp_path / "model")
    arrays, record = load_integer(tmp_path / "model")
    assert arrays["layer0_weight"].dtype == np.int8 and arrays["layer0_bias"].dtype == np.int32
    weights, biases = integer_reference.load_model(arrays)
    reference = integer_reference.run(weights, biases, record, test_inputs.astype(np.int64))
    spikes = expected["spikes"][0]
    assert 0.01 < spikes.mean() < 0.6  # a network that does something: the comparison can fail
    for name in ("spikes", "membranes", "synaptic"):
        np.testing.assert_array_equal(reference[name][0][0], expected[name][0])
    np.testing.assert_array_equal(reference["readout_membrane"][0], expected["readout_membrane"])
    np.testing.assert_array_equal(reference["readout"][0], expected["readout"])
    np.testing.assert_array_equal(expected["logits"], expected["readout"].astype(np.float32) * np.float32(1 / (6 * 128)))


def test_reference_evaluator_reproduces_every_members_readout(trained):
    network = fixed_config().network_config()
    strategy, state, inputs = trained["strategy"], trained["state"], jnp.asarray(trained["train_inputs"][:12])
    perturbations = strategy.ask(state)
    logits = np.asarray(jax.jit(lambda p, e: population_logits(p, e, inputs, network))(state.params, perturbations))
    arrays = jax.tree_util.tree_map(np.asarray, request_arrays(state.params, perturbations, inputs, network.fixed_point))
    readout = evaluate_request({**network.fixed_point.record(), "layers": 2}, arrays)
    assert readout.shape == (16, 12, 10)
    np.testing.assert_array_equal(readout.astype(np.float32) * np.float32(1 / (6 * 128)), logits)
    assert len(np.unique(readout[:, 0, 0])) > 4  # members differ


def test_integer_strategy_puts_every_member_on_the_integer_grid():
    config = fixed_config()
    network = config.network_config()
    strategy = make_strategy(config)
    state = strategy.init(jax.random.key(0), init_params(jax.random.key(1), network))
    perturbations = strategy.ask(state)
    weight = perturbations["layers"][0]["weight"]
    assert np.array_equal(np.asarray(weight.a), np.round(weight.a)) and np.abs(weight.a).max() >= 2
    assert np.asarray(weight.scale).tolist() == [1 / 128, -1 / 128] * 8
    bias_steps = np.asarray(perturbations["layers"][0]["bias"]) * 128
    np.testing.assert_allclose(bias_steps, np.round(bias_steps), atol=1e-4)
    assert np.array_equal(bias_steps[0::2].round(), -bias_steps[1::2].round())
    # The update is EGGROLL's estimator over exactly these integer members.
    fitness = jnp.linspace(-1.0, 1.0, 16)
    direction = jax.jit(strategy.ascent_direction)(state, fitness)["layers"][0]["weight"]
    sigma = strategy.sigma
    expected = sum(
        float(fitness[i]) * np.sign(float(weight.scale[i])) * np.asarray(weight.a[i]) @ np.asarray(weight.b[i]).T
        for i in range(16)
    ) / (16 * sigma * sigma * 128)
    np.testing.assert_allclose(np.asarray(direction), expected, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize(
    "changes, option",
    [
        ({"network.conv_channels": [4]}, "network.conv_channels"),
        ({"network.readout": "max"}, "network.readout"),
        ({"network.weights": "int8"}, "network.weights"),
        ({"strategy.method": "full_rank"}, "strategy.method"),
        ({"network.threshold": 300.0}, "network.threshold"),
        ({"fixed_point.state_bits": 7}, "fixed_point.state_bits"),
    ],
)
def test_options_the_fixed_point_network_cannot_take_are_refused_by_name(changes, option):
    with pytest.raises(ConfigError, match=option.replace(".", r"\.")):
        fixed_config(**changes)


def test_an_evaluator_for_a_float_network_is_refused():
    with pytest.raises(ConfigError, match="fixed_point.evaluator"):
        apply_overrides(TrainConfig(), {"fixed_point.evaluator": "python -m eggroll_snn.integer.hil.reference_evaluator"})
