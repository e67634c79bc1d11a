"""The spiking network: LIF equations, read-out, perturbed forward == dense reference, config checks."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from eggroll_snn import population
from eggroll_snn.network import MIN_THRESHOLD, NetworkConfig, forward, forward_with_state, init_params
from eggroll_snn.errors import ConfigError
from eggroll_snn.perturbation import LowRank, materialise, scaled

# A hand-computed trace (theta = 1, beta = 0.5) of one LIF neuron with weight 1 and bias 0, read
# out by one integrator with weight 2, bias 0.25 and beta_out = 0.5: u[t] = 0.5 u[t-1] + 2 s[t] + 0.25.
# Compiled once per config: eager op-by-op dispatch would dominate the test time.
forward = jax.jit(forward, static_argnames="config")
forward_with_state = jax.jit(forward_with_state, static_argnames="config")
population_logits = jax.jit(population.population_logits, static_argnames=("config", "member_chunk", "antithetic_pairs"))

CURRENTS = [0.75, 0.75, 0.25, 1.5, 0.0, 0.9]
HAND_TRACES = {
    #  v[t] = 0.5 v'[t-1] + I[t]: 0.75, 1.125 (spike), 0.3125, 1.65625 (spike), 0.328125, 1.0640625 (spike)
    "subtract": {
        "spikes": [0, 1, 0, 1, 0, 1],
        "membranes": [0.75, 0.125, 0.3125, 0.65625, 0.328125, 0.0640625],
        "readout": [0.25, 2.375, 1.4375, 2.96875, 1.734375, 3.1171875],
    },
    #  v[t]: 0.75, 1.125 (spike -> 0), 0.25, 1.625 (spike -> 0), 0.0, 0.9 (no spike: the reset lost the overshoot)
    "zero": {
        "spikes": [0, 1, 0, 1, 0, 0],
        "membranes": [0.75, 0.0, 0.25, 0.0, 0.0, 0.9],
        "readout": [0.25, 2.375, 1.4375, 2.96875, 1.734375, 1.1171875],
    },
}


def _one_neuron(reset: str, readout: str = "mean"):
    config = NetworkConfig(
        input_size=1, hidden_sizes=(1,), num_classes=1, beta=0.5, threshold=1.0, reset=reset,
        readout=readout, readout_beta=0.5,
    )
    params = {
        "layers": [
            {"weight": jnp.ones((1, 1)), "bias": jnp.zeros((1,))},
            {"weight": jnp.full((1, 1), 2.0), "bias": jnp.full((1,), 0.25)},
        ]
    }
    inputs = jnp.asarray(CURRENTS, jnp.float32).reshape(1, -1, 1)
    return config, params, inputs


@pytest.mark.parametrize("reset", ["subtract", "zero"])
def test_lif_and_readout_match_hand_computed_trace(reset):
    config, params, inputs = _one_neuron(reset)
    state = forward_with_state(params, inputs, config)
    expected = HAND_TRACES[reset]
    np.testing.assert_array_equal(np.asarray(state["spikes"][0])[0, :, 0], expected["spikes"])
    np.testing.assert_allclose(np.asarray(state["membranes"][0])[0, :, 0], expected["membranes"], atol=1e-6)
    np.testing.assert_allclose(np.asarray(state["readout_membrane"])[0, :, 0], expected["readout"], atol=1e-6)
    np.testing.assert_allclose(float(state["logits"][0, 0]), np.mean(expected["readout"]), atol=1e-6)


def test_max_readout_takes_the_largest_membrane():
    config, params, inputs = _one_neuron("subtract", readout="max")
    np.testing.assert_allclose(float(forward(params, inputs, config)[0, 0]), 3.1171875, atol=1e-6)


def test_membrane_exactly_at_threshold_spikes():
    config, params, _ = _one_neuron("subtract")
    state = forward_with_state(params, jnp.ones((1, 2, 1)), config)
    np.testing.assert_array_equal(np.asarray(state["spikes"][0])[0, :, 0], [1, 1])


def _random_network(key, learn: bool = False):
    config = NetworkConfig(
        input_size=12, hidden_sizes=(10, 8), num_classes=3, learn_beta=learn, learn_threshold=learn, init_gain=2.0
    )
    params = init_params(key, config)
    return config, params


def _random_perturbation(key, params, rank: int, scale: float):
    """LowRank on every weight, dense on every vector, for one member."""
    leaves, treedef = jax.tree_util.tree_flatten(params)
    keys = jax.random.split(key, len(leaves))
    perturbation = []
    for leaf_key, leaf in zip(keys, leaves):
        if leaf.ndim == 2:
            a_key, b_key = jax.random.split(leaf_key)
            perturbation.append(
                LowRank(
                    a=jax.random.normal(a_key, (leaf.shape[0], rank)),
                    b=jax.random.normal(b_key, (leaf.shape[1], rank)),
                    scale=jnp.asarray(scale / np.sqrt(rank)),
                )
            )
        else:
            perturbation.append(scale * jax.random.normal(leaf_key, leaf.shape))
    return jax.tree_util.tree_unflatten(treedef, perturbation)


def _dense_params(params, perturbation):
    """The parameters with every perturbation added as a dense array (``W + sigma A B^T / sqrt(r)``)."""
    return jax.tree_util.tree_map(materialise, params, perturbation, is_leaf=lambda node: isinstance(node, LowRank))


def _spiky_inputs(key, batch=5, time_bins=7, size=12):
    return jax.random.poisson(key, 0.8, (batch, time_bins, size)).astype(jnp.float32)


@pytest.mark.parametrize("learn", [False, True])
def test_low_rank_perturbed_forward_equals_dense_materialised_forward(learn):
    config, params = _random_network(jax.random.key(0), learn)
    perturbation = _random_perturbation(jax.random.key(1), params, rank=2, scale=0.3)
    inputs = _spiky_inputs(jax.random.key(2))
    perturbed = forward_with_state(params, inputs, config, perturbation)
    dense = forward_with_state(_dense_params(params, perturbation), inputs, config)
    # Same spikes in every layer and equal membranes/logits: the rank-r path is the dense map.
    for layer in range(2):
        np.testing.assert_array_equal(perturbed["spikes"][layer], dense["spikes"][layer])
        np.testing.assert_allclose(perturbed["membranes"][layer], dense["membranes"][layer], atol=1e-5)
    np.testing.assert_allclose(perturbed["logits"], dense["logits"], atol=1e-5)
    # The perturbation matters (the test would catch a perturbation that is silently ignored).
    unperturbed = forward(params, inputs, config)
    assert np.abs(np.asarray(perturbed["logits"] - unperturbed)).max() > 1e-2
    assert 0.02 < float(np.mean(dense["spikes"][0])) < 0.98


@pytest.mark.parametrize("member_chunk", [None, 1, 3, 100])
def test_population_logits_equal_each_member_dense_forward(member_chunk):
    config, params = _random_network(jax.random.key(3))
    members = [_random_perturbation(jax.random.key(10 + i), params, rank=1, scale=0.3) for i in range(7)]
    stacked = jax.tree_util.tree_map(lambda *leaves: jnp.stack(leaves), *members)
    inputs = _spiky_inputs(jax.random.key(4))
    logits = population_logits(params, stacked, inputs, config, member_chunk=member_chunk)
    assert logits.shape == (7, 5, 3)
    for index, member in enumerate(members):
        np.testing.assert_allclose(
            logits[index], forward(_dense_params(params, member), inputs, config), atol=1e-5
        )


@pytest.mark.parametrize("learn", [False, True])
@pytest.mark.parametrize("dense", [False, True])
@pytest.mark.parametrize("member_chunk", [None, 2, 3, 100])
def test_antithetic_pair_evaluation_equals_each_member_dense_forward(member_chunk, dense, learn):
    config, params = _random_network(jax.random.key(3), learn)
    plus = [_random_perturbation(jax.random.key(20 + i), params, rank=2, scale=0.3) for i in range(3)]
    if dense:  # full-rank ES: dense noise on the weights too
        plus = [jax.tree_util.tree_map(lambda w, p: materialise(jnp.zeros_like(w), p), params, member,
                                       is_leaf=lambda node: isinstance(node, LowRank)) for member in plus]
    members = [member for pair in plus for member in (pair, scaled(pair, -1.0))]  # 2k: +E_k, 2k + 1: -E_k
    stacked = jax.tree_util.tree_map(lambda *leaves: jnp.stack(leaves), *members)
    inputs = _spiky_inputs(jax.random.key(4))
    logits = population_logits(params, stacked, inputs, config, member_chunk=member_chunk, antithetic_pairs=True)
    assert logits.shape == (6, 5, 3)
    for index, member in enumerate(members):
        np.testing.assert_allclose(logits[index], forward(_dense_params(params, member), inputs, config), atol=1e-5)
    assert np.abs(np.asarray(logits[0] - logits[1])).max() > 1e-2  # the partners differ


def test_antithetic_pair_evaluation_needs_an_even_population():
    config, params = _random_network(jax.random.key(3))
    stacked = jax.tree_util.tree_map(lambda leaf: jnp.stack([leaf] * 3), _random_perturbation(jax.random.key(5), params, 1, 0.3))
    with pytest.raises(ConfigError, match="population_logits members = 3 is out of range: an even number"):
        population.population_logits(params, stacked, _spiky_inputs(jax.random.key(4)), config, antithetic_pairs=True)


def test_learned_constants_equal_fixed_ones_and_are_clipped():
    config, params = _random_network(jax.random.key(5), learn=True)
    fixed_config, _ = _random_network(jax.random.key(5), learn=False)
    fixed_params = {"layers": [{"weight": layer["weight"], "bias": layer["bias"]} for layer in params["layers"]]}
    inputs = _spiky_inputs(jax.random.key(6))
    np.testing.assert_allclose(
        forward(params, inputs, config), forward(fixed_params, inputs, fixed_config), atol=1e-6
    )
    # beta above 1 acts as beta = 1; a negative threshold acts as MIN_THRESHOLD.
    hidden = params["layers"][0]
    out_of_range = dict(hidden, beta=jnp.full_like(hidden["beta"], 1.7), threshold=jnp.full_like(hidden["threshold"], -3.0))
    clipped = dict(hidden, beta=jnp.ones_like(hidden["beta"]), threshold=jnp.full_like(hidden["threshold"], MIN_THRESHOLD))
    run = lambda first: forward_with_state({"layers": [first, *params["layers"][1:]]}, inputs, config)  # noqa: E731
    np.testing.assert_array_equal(run(out_of_range)["spikes"][0], run(clipped)["spikes"][0])


def test_default_initialisation_fires_at_a_moderate_rate_on_nmnist_like_frames():
    # N-MNIST-like frames: ~8 % of the 2 x 34 x 34 pixels carry 1..4 events per bin.
    rng = np.random.default_rng(0)
    active = rng.random((32, 10, 2312)) < 0.08
    frames = jnp.asarray(active * rng.integers(1, 5, active.shape), jnp.float32)
    config = NetworkConfig(input_size=2312)
    state = forward_with_state(init_params(jax.random.key(0), config), frames, config)
    spikes = np.asarray(state["spikes"][0])
    assert 0.05 < spikes.mean() < 0.3
    assert spikes.max(axis=1).mean() > 0.3  # a good share of neurons fire at least once per sample
    assert 0.2 < float(np.std(state["logits"])) < 5.0


def test_bfloat16_compute_stays_close_to_float32():
    config, params = _random_network(jax.random.key(7))
    bf16_config = NetworkConfig(**{**config.__dict__, "compute_dtype": "bfloat16"})
    inputs = _spiky_inputs(jax.random.key(8), batch=64)
    full = forward(params, inputs, config)
    half = forward(params, inputs, bf16_config)
    assert half.dtype == jnp.float32
    # Rounding can flip a few spikes near threshold, so compare the logits' overall agreement.
    assert float(jnp.corrcoef(full.ravel(), half.ravel())[0, 1]) > 0.95


@pytest.mark.parametrize(
    ("option", "value"),
    [
        ("input_size", 0),
        ("hidden_sizes", (16, -1)),
        ("num_classes", 1.5),
        ("beta", 1.2),
        ("readout_beta", -0.1),
        ("threshold", 0.0),
        ("reset", "hard"),
        ("readout", "last"),
        ("init_gain", -1.0),
        ("compute_dtype", "float16"),
    ],
)
def test_bad_network_option_names_the_option(option, value):
    options = {"input_size": 4, option: value}
    with pytest.raises(ConfigError, match=option.split("_")[0] if option == "hidden_sizes" else option):
        NetworkConfig(**options)


def test_inputs_of_the_wrong_width_are_refused():
    config, params = _random_network(jax.random.key(9))
    with pytest.raises(ConfigError, match="input_size=12"):
        forward(params, jnp.zeros((2, 3, 13)), config)
