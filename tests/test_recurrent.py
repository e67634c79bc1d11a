"""Recurrent LIF hidden layers (network.recurrent): the equations, and EGGROLL's perturbation of V."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from eggroll_snn import snn
from eggroll_snn.config import TrainConfig, apply_overrides
from eggroll_snn.errors import ConfigError
from eggroll_snn.perturbation import LowRank, materialise


def reference(params, inputs, config):
    """The module docstring's equations step by step in numpy (float64): hidden LIF with V s[t-1], leaky read-out."""
    hidden, readout = params["layers"]
    W, b, V = (np.asarray(hidden[k], np.float64) for k in ("weight", "bias", "recurrent"))
    batch, steps, _ = inputs.shape
    v = np.zeros((batch, W.shape[0]))
    s = np.zeros_like(v)
    u = np.zeros((batch, readout["weight"].shape[0]))
    us = []
    for t in range(steps):
        v = config.beta * v + inputs[:, t] @ W.T + s @ V.T + b
        s = (v >= config.threshold).astype(np.float64)
        v = v - config.threshold * s
        u = config.readout_beta * u + s @ np.asarray(readout["weight"], np.float64).T + np.asarray(readout["bias"])
        us.append(u)
    return np.mean(us, axis=0), s


def test_recurrent_layer_matches_the_equations():
    config = snn.NetworkConfig(input_size=12, hidden_sizes=(16,), num_classes=3, recurrent=True, init_gain=3.0)
    params = snn.init_params(jax.random.key(0), config)
    assert params["layers"][0]["recurrent"].shape == (16, 16) and "recurrent" not in params["layers"][1]
    inputs = np.asarray(jax.random.poisson(jax.random.key(1), 0.6, (4, 9, 12)), np.float32)
    logits = np.asarray(snn.forward(params, jnp.asarray(inputs), config))
    expected, last_spikes = reference(params, inputs, config)
    np.testing.assert_allclose(logits, expected, rtol=1e-4, atol=1e-4)
    assert 0 < last_spikes.mean() < 1  # the feedback path is exercised
    feed_forward = snn.NetworkConfig(input_size=12, hidden_sizes=(16,), num_classes=3, init_gain=3.0)
    without = {"layers": [{k: v for k, v in params["layers"][0].items() if k != "recurrent"}, params["layers"][1]]}
    assert not np.allclose(np.asarray(snn.forward(without, jnp.asarray(inputs), feed_forward)), logits)


def test_low_rank_perturbation_of_the_recurrent_weight_equals_the_dense_one():
    config = snn.NetworkConfig(input_size=10, hidden_sizes=(8,), num_classes=3, recurrent=True, init_gain=3.0)
    params = snn.init_params(jax.random.key(2), config)
    keys = jax.random.split(jax.random.key(3), 2)
    low_rank = LowRank(a=jax.random.normal(keys[0], (8, 2)), b=jax.random.normal(keys[1], (8, 2)), scale=jnp.asarray(0.3))
    inputs = jax.random.poisson(jax.random.key(4), 0.7, (3, 6, 10)).astype(jnp.float32)
    perturbation = jax.tree_util.tree_map(lambda leaf: None, params)
    perturbation["layers"][0]["recurrent"] = low_rank
    perturbed = snn.forward(params, inputs, config, perturbation)
    dense = jax.tree_util.tree_map(lambda leaf: leaf, params)
    dense["layers"][0]["recurrent"] = materialise(params["layers"][0]["recurrent"], low_rank)
    np.testing.assert_allclose(np.asarray(perturbed), np.asarray(snn.forward(dense, inputs, config)), rtol=1e-5, atol=1e-5)
    assert not np.allclose(np.asarray(perturbed), np.asarray(snn.forward(params, inputs, config)))


def test_recurrent_is_refused_with_integer_weights_and_without_hidden_layers():
    with pytest.raises(ConfigError, match=r"network.recurrent = True .* integer weights"):
        apply_overrides(TrainConfig(), {"network.recurrent": True, "network.weights": "int8"})
    with pytest.raises(ConfigError, match=r"without dense hidden layers"):
        apply_overrides(TrainConfig(), {"network.recurrent": True, "network.hidden_sizes": []})


@pytest.mark.parametrize("method", ["eggroll", "bptt"])
def test_the_recurrent_weight_is_trained(method):
    from eggroll_snn.train import make_generation_step, make_strategy

    config = apply_overrides(TrainConfig(), {"strategy.method": method, "strategy.population_size": 8, "train.batch_size": 4})
    network = snn.NetworkConfig(input_size=6, hidden_sizes=(8,), num_classes=3, recurrent=True, init_gain=3.0)
    strategy = make_strategy(config)
    strategy_state = strategy.init(jax.random.key(6), snn.init_params(jax.random.key(7), network))
    recurrent_before = np.asarray(strategy_state.params["layers"][0]["recurrent"])
    frames = jax.random.poisson(jax.random.key(5), 0.8, (12, 5, 1, 1, 6)).astype(jnp.uint8)
    labels = jnp.arange(12, dtype=jnp.int32) % 3
    step = jax.jit(make_generation_step(strategy, network, config.train, jax.random.key(8)))
    for _ in range(2):
        strategy_state, metrics = step(strategy_state, frames, labels)
    assert np.isfinite(float(metrics["fitness_mean"]))
    assert not np.allclose(np.asarray(strategy_state.params["layers"][0]["recurrent"]), recurrent_before)  # V changes
