"""Recurrent LIF layers: the network against a numpy reference written from the equations, the
low-rank perturbed recurrence against the dense one, the population path, and ES through V."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from eggroll_snn import population

from eggroll_snn.network import NetworkConfig, forward, init_params
from eggroll_snn.config import TrainConfig, apply_overrides
from eggroll_snn.errors import ConfigError
from eggroll_snn.perturbation import LowRank, materialise
from eggroll_snn.strategies import make_strategy

CONFIG = NetworkConfig(input_size=12, hidden_sizes=(7, 5), num_classes=3, threshold=0.6, recurrent=True)


def _with_recurrence(params, key, scale=0.6):
    """``params`` with random recurrent weights (they start at zero)."""
    layers = []
    for index, layer in enumerate(params["layers"]):
        layer = dict(layer)
        if "recurrent" in layer:
            size = layer["recurrent"].shape[0]
            layer["recurrent"] = scale * jax.random.normal(jax.random.fold_in(key, index), (size, size))
        layers.append(layer)
    return {"layers": layers}


def _reference_forward(params, inputs, config):
    """Logits (C,) of one recording inputs (T, input_size), step by step from the module docstring."""
    layers = [{name: np.asarray(value, np.float64) for name, value in layer.items()} for layer in params["layers"]]
    hidden = layers[:-1]
    v = [np.zeros(layer["weight"].shape[0]) for layer in hidden]
    s = [np.zeros(layer["weight"].shape[0]) for layer in hidden]
    u, total = np.zeros(config.num_classes), np.zeros(config.num_classes)
    for x in np.asarray(inputs, np.float64):
        activity = x
        for index, layer in enumerate(hidden):
            current = layer["weight"] @ activity + layer["recurrent"] @ s[index] + layer["bias"]
            v[index] = config.beta * v[index] + current
            s[index] = (v[index] >= config.threshold).astype(np.float64)
            v[index] = v[index] - config.threshold * s[index]
            activity = s[index]
        u = config.readout_beta * u + layers[-1]["weight"] @ activity + layers[-1]["bias"]
        total += u
    return total / len(inputs)


@pytest.fixture(scope="module")
def inputs():
    return jax.random.poisson(jax.random.key(1), 0.7, (4, 9, 12)).astype(jnp.float32)


def test_recurrent_layers_start_at_zero_and_then_equal_the_feed_forward_network(inputs):
    params = init_params(jax.random.key(0), CONFIG)
    assert [layer["recurrent"].shape for layer in params["layers"][:-1]] == [(7, 7), (5, 5)]
    assert "recurrent" not in params["layers"][-1]
    assert all(not np.any(np.asarray(layer["recurrent"])) for layer in params["layers"][:-1])
    feed_forward = NetworkConfig(input_size=12, hidden_sizes=(7, 5), num_classes=3, threshold=0.6)
    plain = {"layers": [{k: v for k, v in layer.items() if k != "recurrent"} for layer in params["layers"]]}
    np.testing.assert_array_equal(forward(params, inputs, CONFIG), forward(plain, inputs, feed_forward))
    assert CONFIG.weight_shapes == ((7, 12), (5, 7), (3, 5), (7, 7), (5, 5))


def test_recurrent_forward_equals_the_step_by_step_reference(inputs):
    params = _with_recurrence(init_params(jax.random.key(0), CONFIG), jax.random.key(2))
    logits = np.asarray(forward(params, inputs, CONFIG))
    reference = np.stack([_reference_forward(params, recording, CONFIG) for recording in np.asarray(inputs)])
    np.testing.assert_allclose(logits, reference, rtol=1e-5, atol=1e-5)
    # The recurrence matters: the same weights without it give other logits.
    without = {"layers": [dict(layer, recurrent=jnp.zeros_like(layer["recurrent"])) if "recurrent" in layer else layer
                          for layer in params["layers"]]}
    assert np.max(np.abs(logits - np.asarray(forward(without, inputs, CONFIG)))) > 1e-2


def test_low_rank_perturbed_recurrence_equals_the_dense_materialised_weight(inputs):
    params = _with_recurrence(init_params(jax.random.key(0), CONFIG), jax.random.key(3))
    key_a, key_b = jax.random.split(jax.random.key(4))
    low_rank = LowRank(a=jax.random.normal(key_a, (7, 2)), b=jax.random.normal(key_b, (7, 2)), scale=jnp.float32(0.3))
    perturbation = {"layers": [{"recurrent": low_rank}, {}, {}]}
    dense = {"layers": [dict(params["layers"][0], recurrent=materialise(params["layers"][0]["recurrent"], low_rank)),
                        *params["layers"][1:]]}
    np.testing.assert_allclose(
        forward(params, inputs, CONFIG, perturbation), forward(dense, inputs, CONFIG), rtol=1e-5, atol=1e-5
    )


@pytest.mark.parametrize("name", ["eggroll", "full_rank"])
def test_population_of_a_recurrent_network_equals_each_member_alone(inputs, name):
    params = _with_recurrence(init_params(jax.random.key(0), CONFIG), jax.random.key(5), scale=0.3)
    strategy = make_strategy(name, population_size=6, sigma=0.2, **({"rank": 2} if name == "eggroll" else {}))
    state = strategy.init(jax.random.key(6), params)
    perturbations = strategy.ask(state)
    assert jax.tree_util.tree_structure(perturbations["layers"][0]["recurrent"]) is not None
    logits = population.population_logits(params, perturbations, inputs, CONFIG, antithetic_pairs=strategy.shares_pairs)
    for member in range(6):
        alone = jax.tree_util.tree_map(lambda leaf: leaf[member], perturbations)
        np.testing.assert_allclose(logits[member], forward(params, inputs, CONFIG, alone), rtol=1e-4, atol=1e-5)


def test_eggroll_update_of_the_recurrent_weight_follows_the_true_gradient():
    # f(V) = -||V - V*||^2 of a 6 x 6 recurrent-shaped weight: the smoothed gradient is -2 (V - V*),
    # so EGGROLL's direction must point the same way (cosine near 1 with enough members).
    target = jax.random.normal(jax.random.key(7), (6, 6))
    weight = jnp.zeros((6, 6))
    strategy = make_strategy("eggroll", population_size=2048, sigma=0.05, rank=2, optimizer="sgd")
    state = strategy.init(jax.random.key(8), {"recurrent": weight})
    members = strategy.ask(state)["recurrent"]
    fitness = jax.vmap(lambda member: -jnp.sum((materialise(weight, member) - target) ** 2))(members)
    direction = strategy.ascent_direction(state, fitness)["recurrent"]
    true = -2.0 * (weight - target)
    cosine = float(jnp.vdot(direction, true) / (jnp.linalg.norm(direction) * jnp.linalg.norm(true)))
    assert cosine > 0.9, cosine


def test_recurrent_option_in_the_config_and_its_limits():
    config = apply_overrides(TrainConfig(), {"network.recurrent": True})
    network = config.network_config()
    assert network.recurrent and network.weight_shapes[-1] == (128, 128)
    with pytest.raises(ConfigError, match="network.recurrent"):
        apply_overrides(TrainConfig(), {"network.recurrent": True, "network.weights": "int8"})


def test_recurrent_without_dense_hidden_layers_is_refused():
    with pytest.raises(ConfigError, match="without dense hidden layers"):
        apply_overrides(TrainConfig(), {"network.recurrent": True, "network.hidden_sizes": []})


@pytest.mark.parametrize("method", ["eggroll", "bptt"])
def test_both_training_methods_change_the_recurrent_weight(method):
    from eggroll_snn.training import make_generation_step, strategy_from_config
    from eggroll_snn.training.evaluators import local_objective

    config = apply_overrides(TrainConfig(), {"strategy.method": method, "strategy.population_size": 8, "train.batch_size": 4, "train.generations": 100})
    network = NetworkConfig(input_size=6, hidden_sizes=(8,), num_classes=3, recurrent=True, init_gain=3.0)
    strategy = strategy_from_config(config)
    state = strategy.init(jax.random.key(6), init_params(jax.random.key(7), network))
    before = np.asarray(state.params["layers"][0]["recurrent"])
    frames = jax.random.poisson(jax.random.key(5), 0.8, (12, 5, 1, 1, 6)).astype(jnp.uint8)
    labels = jnp.arange(12, dtype=jnp.int32) % 3
    step = jax.jit(make_generation_step(strategy, local_objective(network, strategy), config.train, jax.random.key(8)))
    for _ in range(2):
        state, metrics = step(state, frames, labels)
    assert np.isfinite(float(metrics.fitness_mean))
    assert not np.allclose(np.asarray(state.params["layers"][0]["recurrent"]), before)
