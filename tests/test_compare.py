"""The comparison: config parsing, one tiny comparison end to end (tables, plots, reuse), bad input."""

from __future__ import annotations

import csv
import math
import subprocess
from pathlib import Path

import pytest

from eggroll_snn import compare as compare_module
from eggroll_snn.compare import running
from eggroll_snn.compare import CompareConfig, compare, load_compare, loads_compare, summarise
from eggroll_snn.config import TrainConfig
from eggroll_snn.data.nmnist import NUM_CLASSES
from eggroll_snn.errors import ConfigError

CONFIGS = Path(__file__).resolve().parents[1] / "configs"

TINY = """
[compare]
seeds = 2
generations = 5
seconds = 1e-6            # spent by the end of the first compiled call: 5 generations
methods = ["eggroll-r2", "bptt"]

[base.data]
num_time_bins = 4

[base.network]
hidden_sizes = [16]

[base.strategy]
population_size = 16
sigma = 0.05
learning_rate = 0.02

[base.train]
batch_size = 32
eval_every = 5
checkpoint_every = 5
generations_per_call = 5
eval_batch_size = 128

[methods.eggroll-r2]
strategy.method = "eggroll"
strategy.rank = 2

[methods.full-rank-es]
strategy.method = "full_rank"

[methods.bptt]
strategy.method = "bptt"
strategy.learning_rate = 0.003
"""


def _read_csv(path: Path) -> list[dict]:
    with open(path, newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def test_config_file_resolves_each_method_over_the_base():
    config = loads_compare(TINY)
    assert list(config.methods) == ["eggroll-r2", "bptt"]  # [compare] methods picks and orders
    assert config.seeds == 2 and config.generations == 5 and config.budgets() == ["generations", "seconds"]
    eggroll = config.run_config("generations", "eggroll-r2", 1)
    assert (eggroll.strategy.method, eggroll.strategy.rank, eggroll.strategy.learning_rate) == ("eggroll", 2, 0.02)
    assert (eggroll.train.seed, eggroll.train.generations, eggroll.train.max_seconds) == (1, 5, None)
    assert eggroll.network.hidden_sizes == (16,)
    timed = config.run_config("seconds", "bptt", 0)
    assert (timed.strategy.method, timed.strategy.learning_rate, timed.train.max_seconds) == ("bptt", 0.003, 1e-6)
    assert timed.train.generations == compare_module.SECONDS_BUDGET_GENERATIONS
    # Command-line options: every method gets the override, a budget of 0 is skipped.
    changed = config.with_options(overrides={"strategy.learning_rate": 0.5}, methods=["bptt"], seconds=0, seeds=1)
    assert list(changed.methods) == ["bptt"] and changed.budgets() == ["generations"] and changed.seeds == 1
    assert changed.run_config("generations", "bptt", 0).strategy.learning_rate == 0.5


@pytest.mark.parametrize("name", sorted(path.name for path in CONFIGS.glob("compare-*.toml")))
def test_shipped_comparison_configs_are_valid_and_cover_ranks_full_rank_and_bptt(name):
    config = load_compare(CONFIGS / name)
    strategies = {config.run_config(config.budgets()[0], label, 0).strategy.method for label in config.methods}
    assert strategies == {"eggroll", "full_rank", "bptt"}
    ranks = sorted(
        config.run_config("generations", label, 0).strategy.rank
        for label in config.methods
        if config.run_config("generations", label, 0).strategy.method == "eggroll"
    )
    assert len(ranks) >= 3 and ranks[0] == 1
    assert config.seeds >= 1


def test_summary_is_mean_and_sample_std_over_seeds_and_counts_failures():
    rows = [
        {"budget": "generations", "method": "a", "strategy": "eggroll", "rank": 1, "test_accuracy": 0.9,
         "best_validation_accuracy": 0.8, "generations": 10, "seconds_per_generation": 0.1, "wall_time_s": 2.0,
         "peak_rss_mib": 100.0, "error": None},
        {"budget": "generations", "method": "a", "strategy": "eggroll", "rank": 1, "test_accuracy": 0.7,
         "best_validation_accuracy": 0.6, "generations": 20, "seconds_per_generation": 0.3, "wall_time_s": 4.0,
         "peak_rss_mib": 300.0, "error": None},
        {"budget": "generations", "method": "a", "strategy": "eggroll", "rank": 1, "peak_rss_mib": 50.0,
         "error": "diverged"},
    ]
    (row,) = summarise(rows)
    assert (row["runs"], row["failed"]) == (2, 1)
    assert row["test_accuracy_mean"] == pytest.approx(0.8)
    assert row["test_accuracy_std"] == pytest.approx(math.sqrt(0.02))  # sample std of 0.9, 0.7
    assert row["generations_mean"] == 15 and row["seconds_per_generation_mean"] == pytest.approx(0.2)
    assert row["peak_rss_mib_max"] == 300.0


def test_tiny_comparison_writes_tables_and_plots_with_a_row_per_run(nmnist_small_root, tmp_path, monkeypatch):
    # The equal-generation budget (the wall-clock one is the isolated test's below).
    config = loads_compare(TINY).with_options(overrides={"data.root": str(nmnist_small_root)}, seconds=0)
    lines = []
    result = compare(config, tmp_path / "out", log=lines.append, isolate=False)
    expected = [("generations", method, str(seed)) for method in ("eggroll-r2", "bptt") for seed in (0, 1)]
    runs = _read_csv(tmp_path / "out" / "runs.csv")
    assert [(row["budget"], row["method"], row["seed"]) for row in runs] == expected
    assert len(lines) == 5 and lines[-1].startswith("linear read-out") and all(row["error"] == "" for row in runs)
    for row in runs:
        assert int(row["generations"]) == 5
        assert 0.0 <= float(row["test_accuracy"]) <= 1.0 and float(row["peak_rss_mib"]) > 50
        assert (tmp_path / "out" / row["run_dir"] / "summary.json").is_file()
    assert {(row["strategy"], row["rank"]) for row in runs} == {("eggroll", "2"), ("bptt", "")}
    summary = _read_csv(tmp_path / "out" / "summary.csv")
    assert [(row["budget"], row["method"], row["runs"]) for row in summary] == [
        ("generations", "eggroll-r2", "2"), ("generations", "bptt", "2")
    ]
    markdown = (tmp_path / "out" / "summary.md").read_text()
    assert "| eggroll-r2 | 2 | 2 |" in markdown and "| bptt | - | 2 |" in markdown
    # The linear read-out opens the table, fitted on each seed's own train/validation split.
    baseline = result.baseline
    assert [row["seed"] for row in baseline["per_seed"]] == [0, 1]
    assert all(row["test_count"] == 100 and row["test_accuracy"] > 0.85 for row in baseline["per_seed"]), baseline
    table = markdown[markdown.index("| --- |"):].splitlines()
    assert table[1].startswith("| linear read-out") and f"{100 * baseline['test_accuracy_mean']:.2f} ±" in table[1]
    assert "## Equal budget: 5 generations" in markdown and "s of training" not in markdown
    for name in ("accuracy_vs_time-generations.png", "rank.png"):
        assert (tmp_path / "out" / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert {path.name for path in result.files} >= {"runs.csv", "summary.csv", "summary.md", "rank.png"}

    # Run again: every finished run is reused (no training), and the tables come out the same.
    monkeypatch.setattr(running, "_worker", lambda run_dir: pytest.fail(f"{run_dir} was trained again"))
    again = compare(config, tmp_path / "out", isolate=False)
    assert again.runs == result.runs and again.baseline == result.baseline
    # A run recorded before an option existed (its line missing, the option at its default) is
    # the same configuration and is reused too.
    stored = next((tmp_path / "out" / "runs").rglob("compare-config.toml"))
    stored.write_text("".join(line for line in stored.read_text().splitlines(True) if "init_from" not in line))
    assert "init_from" not in stored.read_text()
    assert compare(config, tmp_path / "out", isolate=False).runs == result.runs
    # A changed comparison into the same folder is refused rather than mixed in.
    changed = config.with_options(overrides={"strategy.learning_rate": 0.01})
    with pytest.raises(ConfigError, match="another configuration"):
        compare(changed, tmp_path / "out", isolate=False)


def test_isolated_wall_clock_run_trains_in_a_fresh_process_and_reports_its_peak_memory(
    nmnist_small_root, tmp_path, monkeypatch
):
    config = loads_compare(TINY).with_options(
        overrides={"data.root": str(nmnist_small_root)}, methods=["bptt"], seeds=1, generations=0
    )
    started = []
    original = subprocess.run
    monkeypatch.setattr(running.subprocess, "run", lambda *a, **k: started.append(a[0]) or original(*a, **k))
    result = compare(config, tmp_path / "out")
    (row,) = result.runs
    assert len(started) == 1 and started[0][1:3] == ["-m", "eggroll_snn.compare"]
    assert row["budget"] == "seconds" and row["error"] is None
    assert row["generations"] == 5  # the budget is spent when the first compiled call returns
    assert 100 < row["peak_rss_mib"] < 4000  # a JAX process, measured in that process
    assert "## Equal budget: 1e-06 s of training" in (tmp_path / "out" / "summary.md").read_text()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[compare]\nseeds = 0\n", "compare.seeds"),
        ("[compare]\nrepeats = 3\n", "compare.repeats"),
        ("[compare]\ngenerations = 0\nseconds = 0\n", "both budgets are off"),
        ("[compare]\nseconds = -1.0\n", "compare.seconds"),
        ("[compare]\nmethods = ['eggroll-r3']\n", "unknown method 'eggroll-r3'"),
        ("[base.strategy]\nsigma = -1.0\n", "strategy.sigma"),
        ("[methods.es]\nstrategy.method = 'cma'\n", "method 'es'.*strategy.method"),
        ("[methods.'a/b']\nstrategy.method = 'bptt'\n", "cannot name a folder"),
        ("[results]\n", r"unknown table \[results\]"),
        ("[compare\n", "not valid TOML"),
    ],
)
def test_bad_comparison_config_names_the_problem(text, message):
    with pytest.raises(ConfigError, match=message):
        loads_compare(text, source="bad.toml")


def test_default_comparison_sweeps_eggroll_ranks_up_to_the_readouts_full_rank():
    """The built-in study: EGGROLL from rank 1 up to a rank where the read-out's perturbation is
    full rank (a weight's perturbation has rank min(r, m, n)), then full-rank ES, and BPTT, all on
    the default network and under both budgets."""
    config = CompareConfig()
    assert config.base == TrainConfig() and config.budgets() == ["generations", "seconds"]
    methods = [config.run_config("generations", label, 0).strategy for label in config.methods]
    ranks = [s.rank for s in methods if s.method == "eggroll"]
    assert ranks == sorted(set(ranks)) and ranks[0] == 1 and len(ranks) >= 3
    readout_rank = min(NUM_CLASSES, config.base.network.hidden_sizes[-1])
    assert ranks[-2] < readout_rank <= ranks[-1]  # low ranks below it, the sweep's end at it
    assert [s.method for s in methods][len(ranks):] == ["full_rank", "bptt"]


def test_compare_command_runs_the_library_function(nmnist_small_root, tmp_path, monkeypatch, capsys):
    from eggroll_snn.cli import main

    seen = {}

    def fake_compare(config, out, log=None):
        seen.update(config=config, out=out)
        Path(out).mkdir(parents=True)
        (Path(out) / "summary.md").write_text("# Comparison\n")
        return compare_module.CompareResult(out=Path(out), runs=[], summary=[], files=[Path(out) / "summary.md"])

    monkeypatch.setattr(compare_module, "compare", fake_compare)
    config_path = tmp_path / "tiny.toml"
    config_path.write_text(TINY)
    code = main([
        "compare", "--config", str(config_path), "--data", str(nmnist_small_root), "--seeds", "1",
        "--generations", "7", "--seconds", "0", "--methods", "bptt", "--out", str(tmp_path / "out"),
        "--set", "train.batch_size=16",
    ])
    assert code == 0 and "# Comparison" in capsys.readouterr().out
    config = seen["config"]
    assert list(config.methods) == ["bptt"] and (config.seeds, config.generations, config.seconds) == (1, 7, None)
    run = config.run_config("generations", "bptt", 0)
    assert run.data.root == str(nmnist_small_root) and run.train.batch_size == 16 and run.train.generations == 7
