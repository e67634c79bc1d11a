"""Running a comparison: every run trained in its own process, finished runs reused, one row per run.

Each run is an ordinary run folder written by :func:`eggroll_snn.training.train` in a fresh Python
process (``python -m eggroll_snn.compare <run_dir>``, so its peak memory is its own), under
``<out>/runs/<budget>/<method>/seed-<seed>/``. A run folder that holds a finished run of the
same configuration is reused; an unfinished one is resumed from its newest checkpoint.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import statistics
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from eggroll_snn import config as config_module
from eggroll_snn.baselines import linear_baselines_for_seeds
from eggroll_snn.compare.methods import CompareConfig
from eggroll_snn.compare.report import summarise, write_plots, write_tables
from eggroll_snn.config import TrainConfig
from eggroll_snn.errors import ConfigError, EggrollSNNError, TrainingError
from eggroll_snn.process_memory import peak_rss_bytes
from eggroll_snn.run_folder import read_metrics
from eggroll_snn.training import train


def _worker(run_dir: Path) -> int:
    """Train ``run_dir/compare-config.toml`` into ``run_dir`` (resuming when it holds checkpoints).

    Writes ``run_dir/process.json``: this process's peak RSS (MiB), the 1-minute load average at the
    end, and the message of a :class:`~eggroll_snn.errors.EggrollSNNError` that stopped training
    (e.g. a diverged network) or null.
    """
    config = config_module.load(run_dir / "compare-config.toml")
    error = None
    try:
        train(config, run_dir, resume=(run_dir / "checkpoints").exists(), progress=False)
    except EggrollSNNError as failure:
        error = str(failure)
    record = {"peak_rss_mib": peak_rss_bytes() / 2**20, "load_average": os.getloadavg()[0], "error": error}
    (run_dir / "process.json").write_text(json.dumps(record) + "\n", encoding="utf-8")
    return 0


def _median_seconds_per_generation(run_dir: Path) -> float:
    values = [r["seconds_per_generation"] for r in read_metrics(run_dir) if r.get("seconds_per_generation") is not None]
    return statistics.median(values) if values else math.nan


def _run_one(config: TrainConfig, run_dir: Path, isolate: bool) -> dict:
    """Train one run folder (in a fresh process with ``isolate``), or reuse it when finished; the ``runs.csv`` fields."""
    requested = config_module.dumps(config)
    stored = run_dir / "compare-config.toml"
    # Compared as configurations, not as text: an option added since (at its default) changes the
    # file's text but not the run.
    if stored.exists() and config_module.loads(stored.read_text(encoding="utf-8")) != config:
        raise ConfigError(
            f"{run_dir} holds a run of another configuration; choose another --out folder for a changed comparison"
        )
    if not (run_dir / "summary.json").exists() or not (run_dir / "process.json").exists():
        run_dir.mkdir(parents=True, exist_ok=True)
        stored.write_text(requested, encoding="utf-8")
        (run_dir / "process.json").unlink(missing_ok=True)
        if not isolate:
            _worker(run_dir)
        else:
            completed = subprocess.run([sys.executable, "-m", "eggroll_snn.compare", str(run_dir)], check=False)
            if completed.returncode != 0 or not (run_dir / "process.json").exists():
                raise TrainingError(f"the training process of {run_dir} exited with status {completed.returncode}")
    process = json.loads((run_dir / "process.json").read_text(encoding="utf-8"))
    row = {"peak_rss_mib": process["peak_rss_mib"], "load_average": process["load_average"], "error": process["error"]}
    if process["error"] is None:
        summary = json.loads((run_dir / "summary.json").read_text(encoding="utf-8"))
        row.update(
            generations=summary["generations"],
            test_accuracy=summary["test_accuracy"],
            best_validation_accuracy=summary["best_validation_accuracy"],
            best_generation=summary["best_generation"],
            wall_time_s=summary["wall_time_s"],
            seconds_per_generation=_median_seconds_per_generation(run_dir),
        )
    return row



@dataclasses.dataclass(frozen=True)
class CompareResult:
    """What :func:`compare` returns.

    Attributes:
      out: the output folder.
      runs: one dict per run (the :data:`RUN_FIELDS`).
      summary: one dict per budget and method (the :data:`SUMMARY_FIELDS`).
      files: the tables and plots written.
      baseline: the linear read-out on the same splits (:func:`linear_baselines`).
    """

    out: Path
    runs: list[dict]
    summary: list[dict]
    files: list[Path]
    baseline: dict | None = None


def compare(
    config: CompareConfig, out: str | Path, log: Callable[[str], None] | None = None, isolate: bool = True
) -> CompareResult:
    """Train every method of ``config`` with every seed under each budget; write tables and plots.

    Args:
      config: the comparison.
      out: output folder (created; a folder of an earlier, interrupted run of the same comparison
        is continued).
      log: called with one line per finished run (e.g. ``print``).
      isolate: train each run in a fresh Python process, so that its peak memory and its
        compilations are its own; ``False`` trains in this process (faster to start; the peak
        memory reported is then this process's so far).

    Returns:
      :class:`CompareResult`.

    Raises:
      ConfigError: ``out`` holds a comparison of a different configuration.
      TrainingError: a training process crashed (a run that stops with a training error, e.g. a
        diverged network, is recorded in its row instead and the comparison goes on).
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    jobs = [(budget, label, index) for budget in config.budgets() for label in config.methods for index in range(config.seeds)]
    runs = []
    for number, (budget, label, index) in enumerate(jobs, 1):
        run_config = config.run_config(budget, label, index)
        run_dir = out / "runs" / budget / label / f"seed-{run_config.train.seed}"
        row = {
            "budget": budget,
            "method": label,
            "seed": run_config.train.seed,
            "strategy": run_config.strategy.method,
            "rank": run_config.strategy.rank if run_config.strategy.method == "eggroll" else None,
            "run_dir": str(run_dir.relative_to(out)),
            **_run_one(run_config, run_dir, isolate),
        }
        runs.append(row)
        if log is not None:
            log(f"[{number}/{len(jobs)}] {_describe(row)}")
    baseline = linear_baselines(config, out)
    if log is not None:
        log(f"linear read-out (logistic regression on counts): test {100 * baseline['test_accuracy_mean']:.2f} %")
    summary = summarise(runs)
    files = write_tables(out, runs, summary, config, baseline)
    files += write_plots(out, runs, summary)
    return CompareResult(out=out, runs=runs, summary=summary, files=files, baseline=baseline)


def linear_baselines(config: CompareConfig, out: Path) -> dict:
    """The linear read-out of :mod:`eggroll_snn.baselines` on each seed's train/validation split.

    Each seed's fit is stored in ``out/baseline/seed-<s>.json`` and reused by a continued
    comparison. Returns ``{"per_seed": [...], "test_accuracy_mean", "test_accuracy_std",
    "validation_accuracy_mean"}``.
    """
    paths = {seed: out / "baseline" / f"seed-{seed}.json" for seed in config.seed_values()}
    missing = [seed for seed, path in paths.items() if not path.is_file()]
    for result in linear_baselines_for_seeds(config.base, missing) if missing else []:
        path = paths[result["seed"]]
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_suffix(".json.tmp")
        temporary.write_text(json.dumps(result))
        os.replace(temporary, path)
    per_seed = [json.loads(path.read_text()) for path in paths.values()]
    accuracies = [row["test_accuracy"] for row in per_seed]
    return {
        "per_seed": per_seed,
        "test_accuracy_mean": statistics.fmean(accuracies),
        "test_accuracy_std": statistics.stdev(accuracies) if len(accuracies) > 1 else 0.0,
        "validation_accuracy_mean": statistics.fmean(row["validation_accuracy"] for row in per_seed),
    }


def _describe(row: dict) -> str:
    head = f"{row['budget']} budget, {row['method']}, seed {row['seed']}: "
    if row["error"] is not None:
        return head + f"failed: {row['error']}"
    return head + (
        f"test {row['test_accuracy']:.4f} (validation {row['best_validation_accuracy']:.4f}), "
        f"{row['generations']} generations in {row['wall_time_s']:.1f} s, {row['seconds_per_generation']:.4f} s/generation, "
        f"peak RSS {row['peak_rss_mib']:.0f} MiB, load {row['load_average']:.1f}"
    )

