"""Surrogate-gradient BPTT: the spike's value and derivative, toy training, the trainer's run folder and resume."""

from __future__ import annotations

import json

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from eggroll_snn import checkpoint
from eggroll_snn.strategies import bptt

from eggroll_snn.network import NetworkConfig, forward, forward_with_state, init_params
from eggroll_snn.config import TrainConfig, apply_overrides
from eggroll_snn.errors import ConfigError
from eggroll_snn.run_folder import TIMING_FIELDS, read_metrics
from eggroll_snn.training import train
from eggroll_snn.training.progress import Progress
from test_strategies import GROUP, NUM_CLASSES, _toy_events
from test_train import tiny_config


@pytest.mark.parametrize("surrogate", sorted(bptt.SURROGATES))
def test_surrogate_derivative_is_the_smooth_steps_derivative_and_matches_finite_differences(surrogate):
    step, derivative = bptt.SURROGATES[surrogate]
    slope, threshold = 4.0, 0.7
    v = np.linspace(-1.0, 2.5, 41)
    v = v[np.abs(v - threshold) > 1e-3]  # the kink of |x| (fast sigmoid) is not differentiable
    spike_gradient = jax.jit(jax.vmap(jax.grad(lambda v: bptt.surrogate_spike(v, threshold, surrogate, slope))))(v)
    # (1) the hand-written derivative is the autodiff derivative of the smooth step ...
    np.testing.assert_allclose(spike_gradient, jax.vmap(jax.grad(lambda x: step(x, slope)))(v - threshold), rtol=1e-5)
    # (2) ... and central finite differences of the step agree (float32: h trades rounding for truncation)
    h, x = 3e-3, v - threshold
    finite = (step(x + h, slope) - step(x - h, slope)) / (2 * h)
    np.testing.assert_allclose(spike_gradient, finite, rtol=2e-3, atol=1e-4)
    assert float(derivative(jnp.asarray(0.0), slope)) == pytest.approx(slope / 2)
    # The value stays the Heaviside H(v - theta) with H(0) = 1; a learned threshold gets -derivative.
    np.testing.assert_array_equal(bptt.surrogate_spike(jnp.asarray([0.69, 0.7, 0.71]), threshold, surrogate, slope), [0, 1, 1])
    threshold_gradient = jax.grad(lambda t: bptt.surrogate_spike(jnp.asarray(1.0), t, surrogate, slope))(0.7)
    assert float(threshold_gradient) == pytest.approx(-float(derivative(jnp.asarray(0.3), slope)))


def _random_network():
    config = NetworkConfig(input_size=30, hidden_sizes=(20, 12), num_classes=5, learn_threshold=True, learn_beta=True)
    params = jax.jit(init_params, static_argnums=1)(jax.random.key(0), config)
    inputs = 2.0 * jax.random.bernoulli(jax.random.key(1), 0.4, (16, 9, 30)).astype(jnp.float32)
    labels = jax.random.randint(jax.random.key(2), (16,), 0, 5)
    return config, params, inputs, labels


@pytest.mark.parametrize("surrogate", sorted(bptt.SURROGATES))
def test_surrogate_network_has_the_heaviside_forward_and_a_gradient_for_every_parameter(surrogate):
    config, params, inputs, labels = _random_network()
    spike_fn = bptt.spike_function(surrogate, 5.0)
    exact = jax.jit(lambda p: forward(p, inputs, config))(params)
    np.testing.assert_array_equal(jax.jit(lambda p: forward(p, inputs, config, spike_fn=spike_fn))(params), exact)
    spikes = jax.jit(lambda p: forward_with_state(p, inputs, config))(params)["spikes"]
    assert all(0.02 < float(layer.mean()) < 0.9 for layer in spikes)  # the test exercises real spiking

    method = bptt.SurrogateGradient(surrogate=surrogate, surrogate_slope=5.0)
    gradient = jax.jit(jax.grad(lambda p: method.loss(p, inputs, labels, config)[0]))(params)
    for layer in jax.device_get(gradient)["layers"]:
        for name, leaf in layer.items():
            assert np.all(np.isfinite(leaf)) and np.abs(leaf).max() > 1e-6, name
    # Without the surrogate nothing reaches the hidden layers: the Heaviside's derivative is 0.
    heaviside = jax.jit(jax.grad(
        lambda p: optax.softmax_cross_entropy_with_integer_labels(forward(p, inputs, config), labels).mean()
    ))(params)
    heaviside = jax.device_get(heaviside)["layers"]
    assert np.abs(heaviside[0]["weight"]).max() == 0.0 and np.abs(heaviside[-1]["weight"]).max() > 1e-6


def test_bptt_trains_a_tiny_lif_network_on_the_toy_event_task():
    # The task and network of tests/test_strategies.py's registry test, with 30 gradient steps.
    config = NetworkConfig(input_size=NUM_CLASSES * GROUP, hidden_sizes=(16,), num_classes=NUM_CLASSES)
    method = bptt.SurrogateGradient(learning_rate=0.05)
    state = method.init(jax.random.key(12), init_params(jax.random.key(13), config))
    test_inputs, test_labels = _toy_events(jax.random.key(14), 512)
    accuracy = lambda params: float(  # noqa: E731
        jnp.mean(forward(params, test_inputs, config).argmax(axis=-1) == test_labels)
    )

    @jax.jit
    def generation(state, key):
        inputs, labels = _toy_events(key, 64)
        return method.step(state, inputs, labels, config)

    assert accuracy(state.params) < 0.5
    for step in range(30):
        state, metrics = generation(state, jax.random.fold_in(jax.random.key(15), step))
        assert metrics.fitness_mean == -metrics.train_loss and not bool(metrics.all_fitness_nan)
    assert int(state.generation) == 30
    assert accuracy(state.params) >= 0.95


def test_a_non_finite_loss_keeps_the_state_and_is_reported():
    config, params, inputs, labels = _random_network()
    method = bptt.SurrogateGradient()
    state = method.init(jax.random.key(3), params)
    new_state, metrics = jax.jit(lambda s: method.step(s, inputs.at[0, 0, 0].set(jnp.nan), labels, config))(state)
    assert bool(metrics.all_fitness_nan) and int(metrics.invalid_fitness) == 1
    for old, new in zip(jax.tree_util.tree_leaves(state), jax.tree_util.tree_leaves(new_state)):
        np.testing.assert_array_equal(old, new)


# -- in the trainer ---------------------------------------------------------------------------------
def _bptt_config(root, **changes):
    # The leaky read-out of the BPTT reference runs (benchmarks/*.sh): without read-out leak the
    # logits start ~3x smaller and 40 steps at this learning rate lower the loss by 0.2 only.
    options = {"strategy.method": "bptt", "strategy.learning_rate": 0.003, "strategy.surrogate_slope": 2.0,
               "network.readout_beta": 0.9}
    return tiny_config(root, **{**options, **changes})


def _without_timing(records):
    return [{k: v for k, v in record.items() if k not in TIMING_FIELDS} for record in records]


def test_bptt_run_folder_learns_and_resumes_bit_identically(nmnist_small_root, tmp_path, monkeypatch):
    config = _bptt_config(nmnist_small_root, **{"train.generations": 40})
    full = train(config, tmp_path / "full", progress=False)
    records = read_metrics(tmp_path / "full")
    assert [r["generation"] for r in records] == list(range(1, 41))
    assert all(r["sigma"] == 0 and r["train_loss"] == pytest.approx(-r["fitness_mean"]) for r in records)
    assert np.mean([r["train_loss"] for r in records[-5:]]) < np.mean([r["train_loss"] for r in records[:5]]) - 0.5
    summary = json.loads((tmp_path / "full" / "summary.json").read_text())
    assert summary["method"] == "bptt" and summary["test_count"] == 100
    assert summary["best_validation_accuracy"] >= 0.35  # 40 steps of 32 recordings, 16 neurons; chance is 0.1

    original_update = Progress.update

    def interrupt_at_25(self, generation, *args):
        original_update(self, generation, *args)
        if generation == 25:
            raise KeyboardInterrupt

    monkeypatch.setattr(Progress, "update", interrupt_at_25)
    with pytest.raises(KeyboardInterrupt):
        train(config, tmp_path / "resumed", progress=False)
    monkeypatch.setattr(Progress, "update", original_update)
    assert checkpoint.latest_valid_checkpoint(tmp_path / "resumed" / "checkpoints").generation == 25
    resumed = train(config, tmp_path / "resumed", resume=True, progress=False)
    assert _without_timing(read_metrics(tmp_path / "resumed")) == _without_timing(records)
    for a, b in zip(jax.tree_util.tree_leaves(full.params), jax.tree_util.tree_leaves(resumed.params)):
        np.testing.assert_array_equal(a, b)
    assert resumed.test_accuracy == full.test_accuracy


def test_wall_clock_budget_stops_at_a_chunk_end_with_validation_checkpoint_and_summary(nmnist_small_root, tmp_path):
    # A budget that is spent once the first compiled call (5 generations) returns.
    config = _bptt_config(nmnist_small_root, **{"train.generations": 1000, "train.max_seconds": 1e-6})
    result = train(config, tmp_path / "run", progress=False)
    records = read_metrics(tmp_path / "run")
    assert result.generations == 5 and [r["generation"] for r in records] == [1, 2, 3, 4, 5]
    assert "validation_accuracy" in records[-1] and result.best_generation == 5
    assert checkpoint.latest_valid_checkpoint(tmp_path / "run" / "checkpoints").generation == 5
    assert json.loads((tmp_path / "run" / "summary.json").read_text())["generations"] == 5
    # The budget may change on resume: a larger one continues the run from generation 5.
    longer = apply_overrides(config, {"train.max_seconds": 1e9, "train.generations": 15})
    assert train(longer, tmp_path / "run", resume=True, progress=False).generations == 15
    assert [r["generation"] for r in read_metrics(tmp_path / "run")] == list(range(1, 16))


@pytest.mark.parametrize(
    ("option", "value"),
    [
        ("strategy.surrogate", "sigmoid"),
        ("strategy.surrogate_slope", 0.0),
        ("strategy.surrogate_slope", float("inf")),
        ("train.max_seconds", 0.0),
        ("train.max_seconds", -5.0),
    ],
)
def test_bad_bptt_and_budget_options_name_the_option(option, value):
    with pytest.raises(ConfigError, match=option.replace(".", r"\.")):
        apply_overrides(TrainConfig(), {"strategy.method": "bptt", option: value})


def test_bad_surrogate_is_refused_by_the_library_too():
    with pytest.raises(ConfigError, match="surrogate='step'"):
        bptt.SurrogateGradient(surrogate="step")
    with pytest.raises(ConfigError, match="surrogate_slope"):
        bptt.SurrogateGradient(surrogate_slope=-1.0)
    with pytest.raises(ConfigError, match="surrogate='step'"):
        bptt.spike_function("step", 1.0)
