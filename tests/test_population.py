"""The population forward: the fast path equals the readable reference, and member chunks fit a memory budget."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from eggroll_snn.compilation import CPU_OPTIONS, compiler_options
from eggroll_snn.config import TrainConfig, apply_overrides
from eggroll_snn.errors import ConfigError
from eggroll_snn.integer.grid import WeightGrid
from eggroll_snn.network import NetworkConfig, forward, init_params
from eggroll_snn.population import member_bytes, member_chunk, population_logits
from eggroll_snn.strategies import make_strategy
from eggroll_snn.training.step import strategy_from_config

# Each path compiled as the trainer compiles it: the fast one with its XLA options (eggroll_snn.compilation).
_COMPILED = {
    fast: jax.jit(
        population_logits, static_argnames=("config", "member_chunk", "antithetic_pairs", "fast", "memory_budget_mb"),
        compiler_options=compiler_options(fast),
    )
    for fast in (False, True)
}


def logits_of(*args, fast: bool = False, **options):
    return _COMPILED[fast](*args, fast=fast, **options)

DENSE = dict(input_size=12, hidden_sizes=(16,), num_classes=5)
CASES = {
    "default": {},
    "two hidden layers, reset to zero": dict(hidden_sizes=(16, 8), reset="zero"),
    "recurrent": dict(recurrent=True),
    "max read-out": dict(readout="max"),
    "leaky read-out": dict(readout_beta=0.8),
    "spike-count read-out": dict(readout="spike_count"),
    "learned leaks and thresholds": dict(learn_beta=True, learn_threshold=True, readout_beta=0.5),
    "conv block": dict(input_size=2 * 7 * 7, input_shape=(2, 7, 7), conv_channels=(3,), conv_kernel=3, conv_stride=1, conv_pool=2),
    "two conv blocks, no dense layer": dict(
        input_size=2 * 9 * 9, input_shape=(2, 9, 9), conv_channels=(3, 4), conv_kernel=3, conv_pool=1, hidden_sizes=()
    ),
}


def _setup(options: dict, method: str = "eggroll", rank: int = 2, antithetic: bool = True, population: int = 12):
    config = NetworkConfig(**{**DENSE, **options, "init_gain": 3.0})
    params = init_params(jax.random.key(0), config)
    strategy_options = dict(population_size=population, sigma=0.3, antithetic=antithetic)
    if method == "eggroll":
        strategy_options["rank"] = rank
    strategy = make_strategy(method, **strategy_options)
    perturbations = jax.jit(strategy.ask)(strategy.init(jax.random.key(1), params))
    inputs = jax.random.poisson(jax.random.key(2), 0.6, (6, 5, config.input_size)).astype(jnp.float32)
    return config, params, perturbations, inputs


def _assert_equal_up_to_rounding(fast, reference):
    np.testing.assert_allclose(np.asarray(fast), np.asarray(reference), rtol=1e-5, atol=2e-5)


@pytest.mark.parametrize("case", sorted(CASES))
@pytest.mark.parametrize("antithetic", [True, False])
def test_fast_population_equals_the_reference_for_every_layer_kind(case, antithetic):
    config, params, perturbations, inputs = _setup(CASES[case], antithetic=antithetic)
    reference = logits_of(params, perturbations, inputs, config, antithetic_pairs=antithetic)
    fast = logits_of(params, perturbations, inputs, config, antithetic_pairs=antithetic, fast=True)
    assert fast.shape == (12, 6, config.num_classes)
    assert float(jnp.std(reference)) > 0.1  # the members really differ
    _assert_equal_up_to_rounding(fast, reference)


@pytest.mark.parametrize("method, rank", [("eggroll", 1), ("eggroll", 4), ("full_rank", None)])
def test_fast_population_equals_the_reference_for_each_perturbation(method, rank):
    config, params, perturbations, inputs = _setup({}, method=method, rank=rank or 1)
    reference = logits_of(params, perturbations, inputs, config, antithetic_pairs=True)
    for chunk in (2, 4, 12):
        fast = logits_of(params, perturbations, inputs, config, member_chunk=chunk, antithetic_pairs=True, fast=True)
        _assert_equal_up_to_rounding(fast, reference)


def test_fast_population_on_integer_weights_equals_the_reference():
    config, params, perturbations, inputs = _setup({})
    on_grid = WeightGrid.for_network("int8", config).apply(params)
    reference = logits_of(on_grid, perturbations, inputs, config, antithetic_pairs=True)
    _assert_equal_up_to_rounding(logits_of(on_grid, perturbations, inputs, config, antithetic_pairs=True, fast=True), reference)


def test_bfloat16_fast_population_stays_close_to_the_reference():
    config, params, perturbations, inputs = _setup({"compute_dtype": "bfloat16"})
    reference = logits_of(params, perturbations, inputs, config, antithetic_pairs=True)
    fast = logits_of(params, perturbations, inputs, config, antithetic_pairs=True, fast=True)
    agree = np.mean(np.argmax(fast, -1) == np.argmax(reference, -1))
    assert agree >= 0.9 and float(jnp.max(jnp.abs(fast - reference))) < 0.5


def test_fixed_point_population_is_bit_exact_on_either_path():
    config = apply_overrides(
        TrainConfig(), {"network.neuron": "fixed_point", "network.hidden_sizes": [16], "strategy.population_size": 8, "train.generations": 10}
    )
    network = config.network_config()
    params = init_params(jax.random.key(0), network)
    strategy = strategy_from_config(config)
    perturbations = jax.jit(strategy.ask)(strategy.init(jax.random.key(1), params))
    inputs = jax.random.poisson(jax.random.key(2), 0.6, (4, 4, network.input_size)).astype(jnp.float32)
    np.testing.assert_array_equal(
        logits_of(params, perturbations, inputs, network, antithetic_pairs=True, fast=True),
        logits_of(params, perturbations, inputs, network, antithetic_pairs=True),
    )


@pytest.mark.parametrize("readout_beta", [0.0, 0.6, 1.0])
def test_the_summed_read_out_equals_integrating_it_bin_by_bin(readout_beta):
    config = NetworkConfig(**{**DENSE, "readout_beta": readout_beta, "init_gain": 3.0})
    params = init_params(jax.random.key(4), config)
    inputs = jax.random.poisson(jax.random.key(5), 0.6, (6, 7, config.input_size)).astype(jnp.float32)
    reference = forward(params, inputs, config)
    _assert_equal_up_to_rounding(jax.jit(functools.partial(forward, config=config, fast=True))(params, inputs), reference)


def test_compiler_options_apply_to_the_fast_forward_on_cpu_only_and_yield_to_xla_flags(monkeypatch):
    monkeypatch.delenv("XLA_FLAGS", raising=False)
    assert compiler_options(True, backend="cpu") == CPU_OPTIONS == {"xla_cpu_use_fusion_emitters": False}
    assert compiler_options(False, backend="cpu") == {}
    assert compiler_options(True, backend="gpu") == {}
    monkeypatch.setenv("XLA_FLAGS", "--xla_cpu_use_fusion_emitters=true")
    assert compiler_options(True, backend="cpu") == {}


# -- member chunks and the memory budget -----------------------------------------------------------
def test_member_chunks_are_powers_of_two_that_fit_the_budget_and_divide_the_population():
    config = NetworkConfig(**DENSE)
    one = member_bytes(config, batch_size=64, time_bins=4)
    assert one == 4 * 64 * 4 * (3 * 16 + 3 * 5 + 16)
    budget_mb = 5.5 * one / 2**20  # room for 5 members
    assert member_chunk(config, 64, 4, 1024, budget_mb, backend="gpu") == 4
    assert member_chunk(config, 64, 4, 1024, 1e6, backend="gpu") == 1024  # an accelerator takes all that fit
    assert member_chunk(config, 64, 4, 12, budget_mb, backend="gpu") == 4
    assert member_chunk(config, 64, 4, 6, budget_mb, backend="gpu") == 3  # few factors of two: a divisor
    # On CPU a cache's worth, whatever the population: the same chunk on 1 device or on 4.
    assert member_chunk(config, 64, 4, 1024, None) == member_chunk(config, 64, 4, 256, None)


def test_a_budget_too_small_for_one_member_is_refused_in_one_line_naming_the_options():
    config = NetworkConfig(**DENSE)
    with pytest.raises(ConfigError) as caught:
        member_chunk(config, 64, 4, 16, budget_mb=1e-3)
    message = str(caught.value)
    assert "\n" not in message and "train.memory_budget_mb" in message and "train.batch_size" in message


def test_a_forced_small_budget_gives_the_same_logits_in_less_memory():
    options = CASES["conv block"]
    config, params, perturbations, inputs = _setup(options, population=16)
    budget_mb = 3 * member_bytes(config, 6, 5) / 2**20  # three members: chunks of 2
    compiled = {
        budget: jax.jit(
            lambda p, budget=budget: population_logits(params, p, inputs, config, antithetic_pairs=True, fast=True, memory_budget_mb=budget)
        ).lower(perturbations).compile()
        for budget in (budget_mb, 1e6)
    }
    small, whole = (compiled[budget](perturbations) for budget in (budget_mb, 1e6))
    _assert_equal_up_to_rounding(small, whole)
    temp = {budget: executable.memory_analysis().temp_size_in_bytes for budget, executable in compiled.items()}
    assert temp[budget_mb] < temp[1e6] and temp[budget_mb] <= budget_mb * 2**20
