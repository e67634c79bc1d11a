"""The per-generation benchmark: what each method computes, the reported figures, sweeps, the CLI."""

from __future__ import annotations

import dataclasses
import importlib.util
import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from eggroll_snn import bench, snn
from eggroll_snn.cli import main
from eggroll_snn.errors import ConfigError
from eggroll_snn.perturbation import is_low_rank, materialise
from eggroll_snn.train import member_losses

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
    assert TINY.method_names()[:2] == ("eggroll_r1", "eggroll_r2")
    for name, entry in result["methods"].items():
        if not entry["available"]:
            assert entry["seconds_per_generation"] is None and entry["reason"]
            continue
        assert len(entry["seconds_all"]) == TINY.repeats
        assert entry["seconds_per_generation"] == np.median(entry["seconds_all"]) > 0
        assert entry["compile_seconds"] > 0 and entry["xla_buffer_bytes"] > 0
    expected_available = {"eggroll_r1", "eggroll_r2", "full_rank", "inference", "population_sigma0", "bptt"}
    if importlib.util.find_spec("evosax") is not None:
        expected_available.add("evosax_open_es")
    else:
        assert "evosax is not installed" in result["methods"]["evosax_open_es"]["reason"]
    assert {name for name, entry in result["methods"].items() if entry["available"]} == expected_available


def test_ratios_and_throughput_follow_from_the_medians(result):
    entries = result["methods"]
    reference = entries["eggroll_r1"]["seconds_per_generation"]
    for name, entry in entries.items():
        if entry["available"]:
            assert entry["ratio_to_eggroll_r1"] == pytest.approx(entry["seconds_per_generation"] / reference, rel=1e-12)
            samples = 4 if name == "bptt" else 8 * 4  # BPTT steps on the B samples only
            assert entry["member_evaluations_per_second"] == pytest.approx(samples / entry["seconds_per_generation"])
    assert entries["eggroll_r1"]["ratio_to_eggroll_r1"] == 1.0
    assert result["speedup_full_rank_over_eggroll_r1"] == entries["full_rank"]["ratio_to_eggroll_r1"]
    assert result["throughput_fraction_of_inference"] == pytest.approx(
        entries["inference"]["seconds_per_generation"] / reference
    )
    table = bench.markdown_table(result)
    assert table.count("\n| ") == len(entries) + 1  # header + one row per method
    assert f"full_rank / eggroll_r1 = {result['speedup_full_rank_over_eggroll_r1']:.1f}x" in table


# -- what each method computes ---------------------------------------------------------------
def _run_once(method: str):
    prepared = bench.prepare(TINY, method)
    return prepared, jax.jit(prepared.step)(prepared.carry, *prepared.operands)


def test_eggroll_generation_equals_ask_dense_member_forward_tell():
    prepared, (new_state, _) = _run_once("eggroll_r2")
    strategy = bench.make_strategy_for(TINY, "eggroll_r2")
    state = prepared.carry
    frames, labels = prepared.operands

    @jax.jit
    def reference(state):
        def member_fitness(perturbation):  # member's weights W + E materialised, plain forward
            dense = jax.tree_util.tree_map(materialise, state.params, perturbation, is_leaf=is_low_rank)
            logits = snn.forward(dense, frames.astype(jnp.float32), TINY.network())
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
    logits = snn.forward(state.params, frames.astype(jnp.float32), TINY.network())
    unperturbed = -member_losses(logits[None], labels)[0][0]
    np.testing.assert_allclose(fitness, np.full(TINY.population_size, unperturbed), rtol=1e-5)


def test_inference_evaluates_n_times_b_distinct_samples():
    prepared, (params, losses) = _run_once("inference")
    frames, labels = prepared.operands
    assert frames.shape == (8 * 4, 3, 32) and losses.shape == (8,)  # mean loss of each block of B samples
    assert len(np.unique(np.asarray(frames).reshape(32, -1), axis=0)) == 32
    logits = snn.forward(params, frames.astype(jnp.float32), TINY.network())
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
    assert reason is not None and "rank 16 > 8" in reason and "32-8-10" in reason
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


def test_expected_member_bytes_grow_with_rank_by_the_factor_sizes():
    config = bench.BenchConfig()  # 2312-128-10
    step = bench.expected_member_bytes(config, "eggroll_r2") - bench.expected_member_bytes(config, "eggroll_r1")
    assert step == 4 * ((2312 + 128) + (128 + 10))
    dense_minus_low_rank = bench.expected_member_bytes(config, "full_rank") - bench.expected_member_bytes(config, "eggroll_r1")
    assert dense_minus_low_rank == 4 * (2312 * 128 + 128 * 10 - (2312 + 128) - (128 + 10))


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
    points = bench.sweep_configs(bench.BenchConfig())
    axes = [(axis, c.population_size, c.hidden_sizes, c.input_shape) for axis, c in points]
    assert axes == [
        ("population", 64, (128,), (2, 34, 34)),
        ("population", 1024, (128,), (2, 34, 34)),
        ("population", 4096, (128,), (2, 34, 34)),
        ("hidden", 256, (512,), (2, 34, 34)),
        ("hidden", 256, (2048,), (2, 34, 34)),
        ("input", 256, (128,), (2, 17, 17)),
    ]


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
        (["--population-size", "7"], "odd"),
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
