"""Training methods side by side on the same data: EGGROLL at several ranks, full-rank ES, BPTT.

A comparison trains every method of a list with every seed, under two separate budgets:

* ``generations``: the same number of generations for every method (a BPTT generation is one
  optimiser step on a minibatch of the same size);
* ``seconds``: the same wall-clock training time (``train.max_seconds``; a run stops at the end
  of the compiled call that passes it; compilation and validation count as training time).

Each run is an ordinary run folder written by :func:`eggroll_snn.train.train` in a fresh Python
process (so its peak memory is its own), under ``<out>/runs/<budget>/<method>/seed-<seed>/``.
Its test accuracy is the trainer's: the test split is read once, for the model selected on the
validation split. Hyper-parameters therefore come from the comparison's config, chosen before on
validation accuracy only.

Written into ``<out>``: ``runs.csv`` (one row per run), ``summary.csv`` and ``summary.md``
(mean ± sample standard deviation over seeds per budget and method), ``accuracy_vs_time-<budget>.png``
(validation accuracy against training time, every run) and ``rank.png`` (test accuracy and time
per generation against the EGGROLL rank, full-rank ES at the right end, BPTT as a reference line).
An interrupted comparison continues where it stopped when run again with the same ``out``:
finished runs are reused, unfinished ones resumed from their newest checkpoint.

The comparison config is a TOML file (see ``configs/compare-simulated.toml``)::

    [compare]
    seeds = 3                 # seeds train.seed + 0 .. train.seed + seeds - 1
    generations = 300         # the equal-generation budget (0 or absent: skip it)
    seconds = 120.0           # the equal-wall-clock budget (0 or absent: skip it)
    methods = ["eggroll-r4"]  # optional: which of [methods] to run, in this order

    [base.data]               # a training config (sections data, network, strategy, train)
    pool = 2

    [methods.eggroll-r4]      # per method: options that differ from [base]
    strategy.method = "eggroll"
    strategy.rank = 4
"""

from __future__ import annotations

import csv
import dataclasses
import json
import math
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python 3.10 only
    import tomli as tomllib

from eggroll_snn import config as config_module
from eggroll_snn.config import TrainConfig
from eggroll_snn.errors import ConfigError, TrainingError

BUDGETS = ("generations", "seconds")
#: ``train.generations`` of a wall-clock run: a cap it should never reach. Decaying schedules
#: stretch over this many generations, so wall-clock comparisons want constant ones.
SECONDS_BUDGET_GENERATIONS = 10_000_000
#: The methods of the built-in comparison: label -> options over the base config. At rank 16 the
#: 10-class read-out's 10 x H weight uses its full rank 10 (each weight uses min(r, m, n)).
DEFAULT_METHODS: dict[str, dict[str, Any]] = {
    "eggroll-r1": {"strategy.method": "eggroll", "strategy.rank": 1},
    "eggroll-r4": {"strategy.method": "eggroll", "strategy.rank": 4},
    "eggroll-r16": {"strategy.method": "eggroll", "strategy.rank": 16},
    "full-rank-es": {"strategy.method": "full_rank"},
    "bptt": {"strategy.method": "bptt", "strategy.learning_rate": 0.003, "strategy.surrogate_slope": 2.0},
}
#: Columns of ``runs.csv``.
RUN_FIELDS = (
    "budget", "method", "seed", "strategy", "rank", "generations", "test_accuracy", "best_validation_accuracy",
    "best_generation", "seconds_per_generation", "wall_time_s", "peak_rss_mib", "load_average", "run_dir", "error",
)
#: Columns of ``summary.csv``.
SUMMARY_FIELDS = (
    "budget", "method", "strategy", "rank", "runs", "failed", "test_accuracy_mean", "test_accuracy_std",
    "validation_accuracy_mean", "generations_mean", "seconds_per_generation_mean", "wall_time_s_mean",
    "peak_rss_mib_max",
)


@dataclasses.dataclass(frozen=True)
class CompareConfig:
    """What to compare.

    Attributes:
      base: the training config every method starts from.
      methods: ``{label: {"section.key": value}}``, run in this order; each label's resolved
        config is ``base`` with its options (then the command line's) applied.
      seeds: runs per method and budget, with ``train.seed = base seed + 0, 1, ...``.
      generations: the equal-generation budget, or None to skip it.
      seconds: the equal-wall-clock budget in seconds, or None to skip it.
    """

    base: TrainConfig = dataclasses.field(default_factory=TrainConfig)
    methods: Mapping[str, Mapping[str, Any]] = dataclasses.field(default_factory=lambda: dict(DEFAULT_METHODS))
    seeds: int = 3
    generations: int | None = 300
    seconds: float | None = 120.0

    def __post_init__(self) -> None:
        if not self.methods:
            raise ConfigError("a comparison needs at least one method ([methods.<label>] tables or --methods)")
        for label in self.methods:
            if not label or any(c in label for c in "/\\") or label.startswith("."):
                raise ConfigError(f"method label {label!r} cannot name a folder: use letters, digits, '-' and '_'")
        if isinstance(self.seeds, bool) or not isinstance(self.seeds, int) or self.seeds < 1:
            raise ConfigError(f"option compare.seeds = {self.seeds!r} must be a positive number of seeds")
        if self.generations is not None and (
            isinstance(self.generations, bool) or not isinstance(self.generations, int) or self.generations < 1
        ):
            raise ConfigError(f"option compare.generations = {self.generations!r} must be a positive integer (or 0 to skip)")
        if self.seconds is not None and not (isinstance(self.seconds, (int, float)) and 0 < self.seconds < math.inf):
            raise ConfigError(f"option compare.seconds = {self.seconds!r} must be a positive number of seconds (or 0 to skip)")
        if self.generations is None and self.seconds is None:
            raise ConfigError("both budgets are off (compare.generations and compare.seconds): set at least one")
        for budget in self.budgets():
            for label in self.methods:
                self.run_config(budget, label, 0)  # every run's config is valid before anything runs

    def budgets(self) -> list[str]:
        """The budgets to run, of :data:`BUDGETS`."""
        return [name for name in BUDGETS if getattr(self, name) is not None]

    def seed_values(self) -> list[int]:
        return [self.base.train.seed + index for index in range(self.seeds)]

    def run_config(self, budget: str, label: str, seed_index: int) -> TrainConfig:
        """The training config of one run (ConfigError names the method for a bad option)."""
        overrides = dict(self.methods[label])
        overrides["train.seed"] = self.base.train.seed + seed_index
        if budget == "generations":
            overrides.update({"train.generations": self.generations, "train.max_seconds": None})
        else:
            overrides.update({"train.generations": SECONDS_BUDGET_GENERATIONS, "train.max_seconds": float(self.seconds)})
        try:
            return config_module.apply_overrides(self.base, overrides)
        except ConfigError as error:
            raise ConfigError(f"method {label!r}: {error}") from None

    def with_options(
        self,
        overrides: Mapping[str, Any] | None = None,
        methods: list[str] | None = None,
        seeds: int | None = None,
        generations: int | None = None,
        seconds: float | None = None,
    ) -> "CompareConfig":
        """A copy changed by command-line options.

        ``overrides`` (``{"section.key": value}``, e.g. ``data.root``) apply to every method and
        win over its own options; ``methods`` picks labels; ``generations`` / ``seconds`` of 0
        switch a budget off, None keeps the config's.
        """
        chosen = dict(self.methods)
        if methods is not None:
            unknown = [label for label in methods if label not in self.methods]
            if unknown:
                raise ConfigError(
                    f"--methods: unknown method {unknown[0]!r}; the comparison's methods are: {', '.join(self.methods)}"
                )
            chosen = {label: self.methods[label] for label in methods}
        base = self.base
        if overrides:
            base = config_module.apply_overrides(base, overrides)
            chosen = {label: {**options, **overrides} for label, options in chosen.items()}
        values = {"seeds": self.seeds, "generations": self.generations, "seconds": self.seconds}
        for name, value in (("seeds", seeds), ("generations", generations), ("seconds", seconds)):
            if value is not None:
                values[name] = None if (name != "seeds" and value == 0) else value
        return CompareConfig(base=base, methods=chosen, **values)


def _flatten(table: Mapping, prefix: str = "") -> dict[str, Any]:
    """``{"strategy": {"rank": 4}}`` -> ``{"strategy.rank": 4}``."""
    flat = {}
    for key, value in table.items():
        if isinstance(value, Mapping):
            flat.update(_flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def loads_compare(text: str, source: str = "<string>") -> CompareConfig:
    """Parse a comparison config (TOML; see the module docstring)."""
    try:
        tables = tomllib.loads(text)
    except (tomllib.TOMLDecodeError, ValueError, RecursionError) as error:  # incl. huge integers, deep nesting
        raise ConfigError(f"{source}: not valid TOML: {error}") from None
    try:
        unknown = sorted(set(tables) - {"compare", "base", "methods"})
        if unknown:
            raise ConfigError(f"unknown table [{unknown[0]}]; a comparison config has [compare], [base.*] and [methods.*]")
        settings = dict(tables.get("compare", {}))
        unknown = sorted(set(settings) - {"seeds", "generations", "seconds", "methods"})
        if unknown:
            raise ConfigError(f"unknown option compare.{unknown[0]}; the options are seeds, generations, seconds, methods")
        base = config_module.from_dict(tables.get("base", {}))
        methods = {label: _flatten(options) for label, options in tables.get("methods", {}).items()}
        order = settings.pop("methods", None)
        for name in ("generations", "seconds"):
            if settings.get(name) == 0:
                settings[name] = None
        config = CompareConfig(base=base, methods=methods or dict(DEFAULT_METHODS), **settings)
        return config.with_options(methods=order) if order is not None else config
    except ConfigError as error:
        raise ConfigError(f"{source}: {error}") from None
    except TypeError as error:  # a non-table where a table belongs
        raise ConfigError(f"{source}: malformed comparison config: {error}") from None


def load_compare(path: str | Path) -> CompareConfig:
    """Read a comparison config file (e.g. ``configs/compare-simulated.toml``)."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise ConfigError(f"cannot read comparison config {path}: {error}") from None
    return loads_compare(text, source=str(path))


# --------------------------------------------------------------------------------------------
# One run, in its own process


def _peak_rss_mib() -> float:
    """This process's peak resident memory (VmHWM; ru_maxrss would include an exec'ing parent's)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    import resource

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 1024


def _worker(run_dir: Path) -> int:
    """Train ``run_dir/compare-config.toml`` into ``run_dir`` (resuming when it holds checkpoints).

    Writes ``run_dir/process.json``: this process's peak RSS (MiB), the 1-minute load average at the
    end, and the message of a :class:`~eggroll_snn.errors.EggrollSNNError` that stopped training
    (e.g. a diverged network) or null.
    """
    from eggroll_snn.errors import EggrollSNNError
    from eggroll_snn.train import train

    config = config_module.load(run_dir / "compare-config.toml")
    error = None
    try:
        train(config, run_dir, resume=(run_dir / "checkpoints").exists(), progress=False)
    except EggrollSNNError as failure:
        error = str(failure)
    record = {"peak_rss_mib": _peak_rss_mib(), "load_average": os.getloadavg()[0], "error": error}
    (run_dir / "process.json").write_text(json.dumps(record) + "\n", encoding="utf-8")
    return 0


def _median_seconds_per_generation(run_dir: Path) -> float:
    from eggroll_snn.train import read_metrics

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


# --------------------------------------------------------------------------------------------
# The comparison


@dataclasses.dataclass(frozen=True)
class CompareResult:
    """What :func:`compare` returns.

    Attributes:
      out: the output folder.
      runs: one dict per run (the :data:`RUN_FIELDS`).
      summary: one dict per budget and method (the :data:`SUMMARY_FIELDS`).
      files: the tables and plots written.
    """

    out: Path
    runs: list[dict]
    summary: list[dict]
    files: list[Path]


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
    summary = summarise(runs)
    files = write_tables(out, runs, summary, config)
    files += write_plots(out, runs, summary)
    return CompareResult(out=out, runs=runs, summary=summary, files=files)


def _describe(row: dict) -> str:
    head = f"{row['budget']} budget, {row['method']}, seed {row['seed']}: "
    if row["error"] is not None:
        return head + f"failed: {row['error']}"
    return head + (
        f"test {row['test_accuracy']:.4f} (validation {row['best_validation_accuracy']:.4f}), "
        f"{row['generations']} generations in {row['wall_time_s']:.1f} s, {row['seconds_per_generation']:.4f} s/generation, "
        f"peak RSS {row['peak_rss_mib']:.0f} MiB, load {row['load_average']:.1f}"
    )


def summarise(runs: list[dict]) -> list[dict]:
    """Mean ± sample standard deviation (``ddof = 1``; 0 for one run) over the seeds of each budget and method."""
    groups: dict[tuple[str, str], list[dict]] = {}
    for row in runs:
        groups.setdefault((row["budget"], row["method"]), []).append(row)
    summary = []
    for (budget, label), rows in groups.items():
        done = [row for row in rows if row["error"] is None]

        def mean(name):
            return statistics.fmean(row[name] for row in done) if done else math.nan

        accuracies = [row["test_accuracy"] for row in done]
        summary.append({
            "budget": budget,
            "method": label,
            "strategy": rows[0]["strategy"],
            "rank": rows[0]["rank"],
            "runs": len(done),
            "failed": len(rows) - len(done),
            "test_accuracy_mean": mean("test_accuracy"),
            "test_accuracy_std": statistics.stdev(accuracies) if len(accuracies) > 1 else (0.0 if accuracies else math.nan),
            "validation_accuracy_mean": mean("best_validation_accuracy"),
            "generations_mean": mean("generations"),
            "seconds_per_generation_mean": mean("seconds_per_generation"),
            "wall_time_s_mean": mean("wall_time_s"),
            "peak_rss_mib_max": max((row["peak_rss_mib"] for row in rows), default=math.nan),
        })
    return summary


def _write_csv(path: Path, fields: tuple[str, ...], rows: list[dict]) -> Path:
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=fields, extrasaction="ignore")
        writer.writeheader()
        for row in rows:
            writer.writerow({name: "" if row.get(name) is None else row.get(name) for name in fields})
    return path


def _budget_text(budget: str, config: CompareConfig) -> str:
    return f"{config.generations} generations" if budget == "generations" else f"{config.seconds:g} s of training"


def markdown_table(summary: list[dict], config: CompareConfig) -> str:
    """The summary as a markdown document: settings, then one table per budget."""
    base = config.base
    lines = [
        "# Comparison",
        "",
        f"Data: {base.data.root or 'built-in simulated N-MNIST'}; frames {base.data.num_time_bins} bins, pool "
        f"{base.data.pool}; network {base.data.input_size}-{'-'.join(map(str, base.network.hidden_sizes))}-10; "
        f"minibatch {base.train.batch_size}; seeds {', '.join(map(str, config.seed_values()))}.",
        "Test accuracy: mean ± sample standard deviation over seeds, of the model selected on the validation "
        "split (test read once per run). s/generation: median compute time of a generation (no compilation, "
        "no validation). Total: training time including compilation and validation. Peak RSS: largest over the "
        "seeds, of the training process.",
    ]
    for budget in config.budgets():
        lines += [
            "",
            f"## Equal budget: {_budget_text(budget, config)}",
            "",
            "| method | rank | runs | test accuracy | validation | generations | s / generation | total s | peak RSS MiB |",
            "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
        ]
        for row in (row for row in summary if row["budget"] == budget):
            failed = f" ({row['failed']} failed)" if row["failed"] else ""
            lines.append(
                f"| {row['method']} | {row['rank'] if row['rank'] is not None else ('full' if row['strategy'] == 'full_rank' else '-')} "
                f"| {row['runs']}{failed} | {100 * row['test_accuracy_mean']:.2f} ± {100 * row['test_accuracy_std']:.2f} % "
                f"| {100 * row['validation_accuracy_mean']:.2f} % | {row['generations_mean']:.0f} "
                f"| {row['seconds_per_generation_mean']:.4f} | {row['wall_time_s_mean']:.1f} | {row['peak_rss_mib_max']:.0f} |"
            )
    return "\n".join(lines) + "\n"


def write_tables(out: Path, runs: list[dict], summary: list[dict], config: CompareConfig) -> list[Path]:
    """``runs.csv``, ``summary.csv``, ``summary.md`` and ``compare-config.json`` in ``out``."""
    settings = {
        "seeds": config.seed_values(),
        "generations": config.generations,
        "seconds": config.seconds,
        "base": config.base.to_dict(),
        "methods": {label: dict(options) for label, options in config.methods.items()},
    }
    (out / "compare-config.json").write_text(json.dumps(settings, indent=1) + "\n", encoding="utf-8")
    markdown = out / "summary.md"
    markdown.write_text(markdown_table(summary, config), encoding="utf-8")
    return [
        _write_csv(out / "runs.csv", RUN_FIELDS, runs),
        _write_csv(out / "summary.csv", SUMMARY_FIELDS, summary),
        markdown,
        out / "compare-config.json",
    ]


def write_plots(out: Path, runs: list[dict], summary: list[dict]) -> list[Path]:
    """``accuracy_vs_time-<budget>.png`` per budget and ``rank.png`` (when EGGROLL ran) in ``out``."""
    import matplotlib

    matplotlib.use("Agg")  # files only, no display needed
    import matplotlib.pyplot as plt

    from eggroll_snn.train import read_metrics

    labels = list(dict.fromkeys(row["method"] for row in runs))
    colours = {label: plt.get_cmap("tab10")(index % 10) for index, label in enumerate(labels)}
    written = []
    for budget in dict.fromkeys(row["budget"] for row in runs):
        figure, axis = plt.subplots(figsize=(8, 5))
        named = set()
        for row in (row for row in runs if row["budget"] == budget and row["error"] is None):
            points = [
                (r["wall_time_s"], r["validation_accuracy"])
                for r in read_metrics(out / row["run_dir"])
                if r.get("validation_accuracy") is not None
            ]
            label = None if row["method"] in named else row["method"]
            named.add(row["method"])
            axis.plot(*zip(*points), ".-", color=colours[row["method"]], alpha=0.8, label=label)
        axis.set_xlabel("training time (s)")
        axis.set_ylabel("validation accuracy")
        axis.set_title(f"validation accuracy against wall-clock time ({budget} budget, every seed)")
        axis.grid(alpha=0.3)
        axis.legend(fontsize="small")
        figure.tight_layout()
        path = out / f"accuracy_vs_time-{budget}.png"
        figure.savefig(path, dpi=100)
        plt.close(figure)
        written.append(path)
    ranked = [row for row in summary if row["strategy"] in ("eggroll", "full_rank") and row["runs"]]
    if not ranked:
        return written
    ranks = sorted({row["rank"] for row in ranked if row["rank"] is not None})
    positions = {rank: index for index, rank in enumerate(ranks)}
    full_position = len(ranks)
    figure, (accuracy_axis, time_axis) = plt.subplots(1, 2, figsize=(12, 4.5))
    for budget_index, budget in enumerate(dict.fromkeys(row["budget"] for row in ranked)):
        rows = sorted(
            (row for row in ranked if row["budget"] == budget),
            key=lambda row: full_position if row["rank"] is None else positions[row["rank"]],
        )
        xs = [full_position if row["rank"] is None else positions[row["rank"]] for row in rows]
        style = ("o-", "s--")[budget_index % 2]
        accuracy_axis.errorbar(
            xs, [row["test_accuracy_mean"] for row in rows], yerr=[row["test_accuracy_std"] for row in rows],
            fmt=style, capsize=3, label=f"{budget} budget",
        )
        time_axis.plot(xs, [row["seconds_per_generation_mean"] for row in rows], style, label=f"{budget} budget")
        for row in summary:
            if row["budget"] == budget and row["strategy"] == "bptt" and row["runs"]:
                accuracy_axis.axhline(row["test_accuracy_mean"], linestyle=":", color="grey")
                accuracy_axis.annotate(f"BPTT ({budget})", (0, row["test_accuracy_mean"]), fontsize="small")
    tick_labels = [str(rank) for rank in ranks] + ["full (ES)"]
    for axis in (accuracy_axis, time_axis):
        axis.set_xticks(range(len(tick_labels)), tick_labels)
        axis.set_xlabel("rank of the perturbations")
        axis.grid(alpha=0.3)
        axis.legend(fontsize="small")
    accuracy_axis.set_ylabel("test accuracy (mean ± std over seeds)")
    time_axis.set_ylabel("seconds per generation")
    time_axis.set_yscale("log")
    figure.suptitle("EGGROLL rank against full-rank ES")
    figure.tight_layout()
    path = out / "rank.png"
    figure.savefig(path, dpi=100)
    plt.close(figure)
    written.append(path)
    return written


__all__ = [
    "BUDGETS",
    "DEFAULT_METHODS",
    "RUN_FIELDS",
    "SUMMARY_FIELDS",
    "CompareConfig",
    "CompareResult",
    "loads_compare",
    "load_compare",
    "compare",
    "summarise",
    "markdown_table",
    "write_tables",
    "write_plots",
]


if __name__ == "__main__":  # the per-run training process of :func:`_run_one`
    sys.exit(_worker(Path(sys.argv[1])))
