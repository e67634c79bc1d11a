"""The per-generation benchmark: what each method computes, the reported figures, sweeps, the CLI."""

from __future__ import annotations

import dataclasses
import importlib.util
import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from eggroll_snn import bench
from eggroll_snn.network import forward
from eggroll_snn.bench.measure import compile_method, xla_buffer_bytes
from eggroll_snn.bench.methods import data_key, strategy_and_state
from eggroll_snn.config import TrainConfig, TrainSection
from eggroll_snn.training.step import minibatch
from eggroll_snn.cli import main
from eggroll_snn.errors import ConfigError
from eggroll_snn.perturbation import is_low_rank, materialise
from eggroll_snn.population import member_losses

TINY = bench.BenchConfig(
    population_size=8, batch_size=4, time_bins=3, input_shape=(2, 4, 4), hidden_sizes=(8,), ranks=(1, 2), repeats=3
)
TINY_FLAGS = [
    "--population-size", "8", "--batch-size", "4", "--time-bins", "3", "--input-shape", "2", "4", "4",
    "--hidden", "8", "--repeats", "2", "--no-rss",
]


@pytest.fixture(scope="module")
def result():
    return bench.run_benchmark(TINY, rss=False)


# -- the reported figures ---------------------------------------------------------------------
def test_every_method_is_reported_with_positive_medians_of_its_repeats(result):
    assert tuple(result["methods"]) == TINY.method_names()
    assert TINY.method_names()[:4] == ("eggroll_r1", "eggroll_r2", "reference_r1", "reference_r2")
    for name, entry in result["methods"].items():
        if not entry["available"]:
            assert entry["seconds_per_generation"] is None and entry["reason"]
            continue
        assert len(entry["seconds_all"]) == TINY.repeats
        assert entry["seconds_per_generation"] == np.median(entry["seconds_all"]) > 0
        assert entry["compile_seconds"] > 0 and entry["xla_buffer_bytes"] > 0
    expected_available = {
        "eggroll_r1", "eggroll_r2", "reference_r1", "reference_r2", "full_rank", "inference", "population_sigma0", "bptt", "matmul",
    }
    if importlib.util.find_spec("evosax") is not None:
        expected_available.add("evosax_open_es")
    else:
        assert "evosax is not installed" in result["methods"]["evosax_open_es"]["reason"]
    assert {name for name, entry in result["methods"].items() if entry["available"]} == expected_available


#: Known per-generation costs (seconds) of fake timings: every figure below follows from them.
FAKE_SECONDS = {
    "eggroll_r1": 0.1, "eggroll_r2": 0.15, "reference_r1": 0.4, "reference_r2": 0.6, "full_rank": 1.0, "evosax_open_es": 2.0,
    "inference": 0.5, "population_sigma0": 0.08, "bptt": 0.05, "matmul": 0.002,
}


def _fake_time_methods(config, methods):
    return {
        method: {
            "seconds_per_generation": FAKE_SECONDS[method], "seconds_all": [FAKE_SECONDS[method]],
            "seconds_min": FAKE_SECONDS[method], "compile_seconds": 1.0, "xla_buffer_bytes": 1,
        }
        for method in methods
    }


def test_ratios_and_throughput_from_known_fake_timings(monkeypatch):
    monkeypatch.setattr("eggroll_snn.bench.run.time_methods", _fake_time_methods)
    result = bench.run_benchmark(TINY, rss=False)
    entries = result["methods"]
    assert entries["eggroll_r1"]["ratio_to_eggroll_r1"] == 1.0
    assert entries["eggroll_r2"]["ratio_to_eggroll_r1"] == pytest.approx(1.5)
    assert entries["full_rank"]["ratio_to_eggroll_r1"] == pytest.approx(10.0)
    assert result["speedup_full_rank_over_eggroll_r1"] == pytest.approx(10.0)
    # eggroll_r1 does the ceiling's N*B = 32 evaluations in a fifth of its time: 500 % of its throughput
    assert result["throughput_fraction_of_inference"] == pytest.approx(5.0)
    assert entries["eggroll_r1"]["member_evaluations_per_second"] == pytest.approx(320.0)  # 32 / 0.1 s
    assert entries["bptt"]["member_evaluations_per_second"] == pytest.approx(80.0)  # B = 4 samples / 0.05 s
    table = bench.markdown_table(result)
    assert table.count("\n| ") == len(entries) + 1  # header + one row per method
    assert "full_rank / eggroll_r1 = 10.0x" in table and "= 500 % of batched inference" in table
    assert "| full_rank | 1.0000 | 10.00 |" in table
    # The fast forward against the reference, side by side, and both against the matrix product.
    assert result["speedup_fast_over_reference"] == pytest.approx({"eggroll_r1": 4.0, "eggroll_r2": 4.0})
    assert "eggroll_r1: fast population forward 4.00x the reference's speed" in table
    assert entries["matmul"]["gflops_per_second"] == pytest.approx(2 * 1024**3 / 0.002 / 1e9)
    flops = TINY.forward_flops(1)
    assert entries["eggroll_r1"]["gflops_per_second"] == pytest.approx(flops / 0.1 / 1e9)
    assert entries["reference_r1"]["fraction_of_matmul"] == pytest.approx((flops / 0.4) / (2 * 1024**3 / 0.002))
    assert entries["eggroll_r1"]["member_sample_bins_per_second"] == pytest.approx(32 * 3 / 0.1)  # N*B*T / s


def test_forward_flops_count_the_shared_product_once_and_every_members_rank_terms():
    # TINY: N=8, B=4, T=3, network 32-8-10; rows per member = B*T = 12.
    shared = 2 * 12 * 32 * 8
    later = 2 * 8 * 12 * 8 * 10
    rank1 = 2 * 8 * 12 * (1 * (32 + 8) + 1 * (8 + 10))
    neurons = 6 * 8 * 12 * 8
    assert TINY.forward_flops(1) == shared + later + rank1 + neurons
    assert TINY.forward_flops(None) == shared + later + neurons


def test_measured_ratios_of_the_real_run_refer_to_eggroll_r1(result):
    entries = result["methods"]
    assert entries["eggroll_r1"]["ratio_to_eggroll_r1"] == 1.0
    for entry in entries.values():
        if entry["available"]:
            assert entry["ratio_to_eggroll_r1"] > 0
            assert entry["member_evaluations_per_second"] is None or entry["member_evaluations_per_second"] > 0
    assert entries["matmul"]["member_evaluations_per_second"] is None and entries["matmul"]["gflops_per_second"] > 1


# -- what each method computes ---------------------------------------------------------------
def _run_once(method: str):
    prepared = bench.prepare(TINY, method)
    return prepared, jax.jit(prepared.step)(prepared.carry, *prepared.operands)


def test_eggroll_generation_equals_ask_dense_member_forward_tell():
    prepared, (new_state, _) = _run_once("eggroll_r2")
    strategy = bench.make_strategy_for(TINY, "eggroll_r2")
    state = prepared.carry
    # The trainer's step draws its minibatch (here a permutation of the B recordings) inside the call.
    frames, labels = minibatch(*prepared.operands, state.generation, data_key(TINY), TrainSection(batch_size=TINY.batch_size))

    @jax.jit
    def reference(state):
        def member_fitness(perturbation):  # member's weights W + E materialised, plain forward
            dense = jax.tree_util.tree_map(materialise, state.params, perturbation, is_leaf=is_low_rank)
            logits = forward(dense, frames.astype(jnp.float32), TINY.network())
            return -member_losses(logits[None], labels)[0][0]

        return strategy.tell(state, jax.lax.map(member_fitness, strategy.ask(state)))[0]

    expected_state = reference(state)
    updated = (new_state.params, new_state.opt_state)
    for got, want in zip(jax.tree_util.tree_leaves(updated), jax.tree_util.tree_leaves((expected_state.params, expected_state.opt_state))):
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-6)
    assert int(new_state.generation) == 1


def test_sigma0_forward_gives_every_member_the_unperturbed_fitness():
    prepared, (state, fitness) = _run_once("population_sigma0")
    frames, labels = prepared.operands
    logits = forward(state.params, frames.astype(jnp.float32), TINY.network())
    unperturbed = -member_losses(logits[None], labels)[0][0]
    np.testing.assert_allclose(fitness, np.full(TINY.population_size, unperturbed), rtol=1e-5)


def test_inference_evaluates_n_times_b_distinct_samples():
    prepared, (params, losses) = _run_once("inference")
    frames, labels = prepared.operands
    assert frames.shape == (8 * 4, 3, 32) and losses.shape == (8,)  # mean loss of each block of B samples
    assert len(np.unique(np.asarray(frames).reshape(32, -1), axis=0)) == 32
    logits = forward(params, frames.astype(jnp.float32), TINY.network())
    per_sample = -jax.nn.log_softmax(logits)[jnp.arange(32), labels]
    np.testing.assert_allclose(losses, per_sample.reshape(8, 4).mean(axis=1), rtol=1e-5)


def test_random_frames_are_clipped_poisson_counts_fixed_by_the_seed():
    config = dataclasses.replace(TINY, event_rate=0.5)
    frames, labels = bench.make_frames(config, 400)
    assert frames.dtype == np.uint8 and frames.shape == (400, 3, 32) and frames.max() == 3
    # P(0) = e^-0.5 = 0.6065, P(>=3) = 1 - e^-0.5 (1 + 0.5 + 0.125) = 0.0144 over 38,400 draws
    assert np.mean(frames == 0) == pytest.approx(0.6065, abs=0.01)
    assert np.mean(frames == 3) == pytest.approx(0.0144, abs=0.003)
    again, again_labels = bench.make_frames(config, 400)
    np.testing.assert_array_equal(frames, again)
    np.testing.assert_array_equal(labels, again_labels)
    assert set(np.unique(labels)) <= set(range(10))


def test_rank_above_every_weight_side_is_reported_not_run():
    config = dataclasses.replace(TINY, ranks=(1, 16))  # weights 8 x 32 and 10 x 8
    reason = bench.unavailable_reason(config, "eggroll_r16")
    assert reason is not None and "32-8-10" in reason and "rank of eggroll_r16 = 16 is out of range: at most 8" in reason
    assert bench.unavailable_reason(config, "eggroll_r1") is None
    # At the headline size rank 16 runs: the 10 x 128 read-out uses rank 10, the hidden weight 16.
    headline = bench.BenchConfig(ranks=(1, 16))
    assert bench.unavailable_reason(headline, "eggroll_r16") is None


# -- memory --------------------------------------------------------------------------------------
def test_memory_is_measured_in_a_fresh_process():
    memory = bench.isolated_memory(TINY, "eggroll_r1")
    assert memory["peak_rss_bytes"] >= memory["baseline_rss_bytes"] > 10 * 2**20  # an interpreter with JAX
    assert memory["rss_growth_bytes"] == memory["peak_rss_bytes"] - memory["baseline_rss_bytes"]


def test_memory_slope_is_the_least_squares_bytes_per_member():
    results = [
        {"config": {"population_size": n}, "methods": {"a": {"xla_buffer_bytes": 1000 + 7 * n}, "b": {"xla_buffer_bytes": None}}}
        for n in (4, 8, 32)
    ]
    slopes = bench.memory_slopes(results)
    assert slopes["a"]["bytes_per_member"] == pytest.approx(7.0) and slopes["a"]["populations"] == [4, 8, 32]
    assert "b" not in slopes


def test_expected_member_bytes_count_what_ask_draws_per_member():
    # The per-member arrays the strategy really draws (per-member scalars such as a LowRank's
    # scale aside) plus the member's logits (B x C): counted from ask's output shapes.
    config = dataclasses.replace(TINY, input_shape=(2, 8, 8), hidden_sizes=(32,))  # 128-32-10
    for method in ("eggroll_r1", "eggroll_r2", "full_rank"):
        strategy, state = strategy_and_state(config, method)
        leaves = jax.tree_util.tree_leaves(jax.eval_shape(strategy.ask, state))
        per_member = sum(int(np.prod(leaf.shape[1:])) for leaf in leaves if len(leaf.shape) > 1)
        logits = config.batch_size * config.num_classes
        assert bench.expected_member_bytes(config, method) == 4 * (per_member + logits), method


def _xla_slopes(config, method, populations=(8, 32)):
    """XLA's flops and buffer bytes per added member of one generation (compiled, not run)."""
    points = []
    for population in populations:
        compiled = compile_method(bench.prepare(dataclasses.replace(config, population_size=population), method))
        cost = compiled.cost_analysis()
        cost = cost[0] if isinstance(cost, list) else cost
        points.append((cost["flops"], xla_buffer_bytes(compiled)))
    (flops_a, bytes_a), (flops_b, bytes_b) = points
    span = populations[1] - populations[0]
    return (flops_b - flops_a) / span, (bytes_b - bytes_a) / span


def test_xla_counts_eggroll_cheaper_than_full_rank_per_member():
    config = dataclasses.replace(TINY, input_shape=(2, 8, 8), hidden_sizes=(32,))  # first weight 32 x 128
    slopes = {method: _xla_slopes(config, method) for method in ("eggroll_r1", "eggroll_r2", "full_rank")}
    flops = {method: value[0] for method, value in slopes.items()}
    assert flops["eggroll_r1"] < flops["eggroll_r2"] < flops["full_rank"]
    # Full-rank ES must at least do the first layer's dense x E^T, B*T*m*n multiply-adds per pair
    # (2 flops each, shared by the two members): work EGGROLL's factors never do.
    dense_first_layer = config.batch_size * config.time_bins * 32 * 128
    assert flops["full_rank"] - flops["eggroll_r1"] >= dense_first_layer
    for method, (_, buffer_bytes) in slopes.items():  # a member cannot cost less than what it draws
        assert buffer_bytes >= bench.expected_member_bytes(config, method), method


# -- sweeps and reports ---------------------------------------------------------------------------
def test_sweep_caps_dense_methods_and_writes_plots(result, tmp_path):
    base = dataclasses.replace(TINY, ranks=(1,), repeats=1, warmup=0)
    sweep = bench.run_sweep(
        base, ("eggroll_r1", "full_rank"), max_population=8, rss=False, populations=(16,), hidden_sizes=(), input_shapes=()
    )
    assert [(point["axis"], point["config"]["population_size"]) for point in sweep] == [("population", 16)]
    capped = sweep[0]["methods"]
    assert capped["full_rank"]["available"] is False and "--max-population 8" in capped["full_rank"]["reason"]
    assert capped["eggroll_r1"]["seconds_per_generation"] > 0
    memory = bench.summarise_memory(result, sweep)  # the tiny headline is the N=8 point
    assert memory["eggroll_r1"]["populations"] == [8, 16]
    assert "full_rank" not in memory  # one population only: no slope
    report = {"headline": result, "sweep": sweep, "memory": memory, "methods": {}}
    paths = bench.write_report(report, tmp_path / "out")
    names = {path.name for path in paths}
    assert {"bench.json", "bench.md", "time_vs_rank.png", "time_vs_population.png", "memory_vs_population.png"} <= names
    markdown = (tmp_path / "out" / "bench.md").read_text()
    assert "## Sweep (population)" in markdown and "| eggroll_r1 |" in markdown.split("## Memory")[1]


def test_sweep_points_vary_one_axis_from_the_headline():
    headline = bench.BenchConfig(population_size=256, input_shape=(2, 34, 34))
    points = bench.sweep_configs(headline)
    axes = [(axis, c.population_size, c.hidden_sizes, c.input_shape) for axis, c in points]
    assert axes == [
        ("population", 64, (128,), (2, 34, 34)),
        ("population", 1024, (128,), (2, 34, 34)),
        ("population", 4096, (128,), (2, 34, 34)),
        ("hidden", 256, (512,), (2, 34, 34)),
        ("hidden", 256, (2048,), (2, 34, 34)),
        ("input", 256, (128,), (2, 17, 17)),
    ]


def test_the_default_bench_times_the_trainers_default_network():
    trainer = TrainConfig()
    headline = bench.BenchConfig()
    assert (headline.population_size, headline.batch_size, headline.time_bins) == (
        trainer.strategy.population_size, trainer.train.batch_size, trainer.data.num_time_bins
    )
    assert headline.network().weight_shapes == trainer.network_config().weight_shapes


# -- command line ------------------------------------------------------------------------------
def test_cli_json_is_one_object_with_seconds_per_generation(tmp_path, capsys):
    code = main(["bench", *TINY_FLAGS, "--ranks", "1", "--methods", "eggroll_r1", "--json", "--out", str(tmp_path)])
    assert code == 0
    report = json.loads(capsys.readouterr().out)
    assert set(report["methods"]) == {"eggroll_r1"}
    for name, seconds in report["methods"].items():
        assert seconds == report["headline"]["methods"][name]["seconds_per_generation"] > 0
    assert report["headline"]["config"]["population_size"] == 8
    assert (tmp_path / "bench.md").read_text().startswith("## Headline")


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--population-size", "7"], "--population-size = 7 is out of range: an even number"),
        (["--methods", "simulated_annealing"], "simulated_annealing"),
        (["--ranks", "2"], "must include 1"),
    ],
)
def test_cli_bad_options_exit_1_with_a_message(flags, message, tmp_path, capsys):
    assert main(["bench", *TINY_FLAGS, *flags, "--out", str(tmp_path)]) == 1
    assert message in capsys.readouterr().err


def test_bad_config_values_name_the_option():
    with pytest.raises(ConfigError, match="input shape"):
        bench.BenchConfig(input_shape=(34, 34))
    with pytest.raises(ConfigError, match="repeats"):
        bench.BenchConfig(repeats=0)
