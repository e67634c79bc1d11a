"""The comparison's report: mean and spread over seeds, ``runs.csv``, ``summary.csv``, ``summary.md``, plots."""

from __future__ import annotations

import csv
import json
import math
import statistics
from pathlib import Path

from eggroll_snn.compare.methods import CompareConfig
from eggroll_snn.run_folder import read_metrics

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


def markdown_table(summary: list[dict], config: CompareConfig, baseline: dict | None = None) -> str:
    """The summary as a markdown document: settings, then one table per budget, each opened by the
    linear read-out ``baseline`` (see :func:`eggroll_snn.compare.running.linear_baselines`) when given."""
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
        if baseline is not None:
            lines.append(
                f"| linear read-out (logistic regression on log(1+count), no spikes) | - | {len(baseline['per_seed'])} "
                f"| {100 * baseline['test_accuracy_mean']:.2f} ± {100 * baseline['test_accuracy_std']:.2f} % "
                f"| {100 * baseline['validation_accuracy_mean']:.2f} % | - | - | - | - |"
            )
        for row in (row for row in summary if row["budget"] == budget):
            failed = f" ({row['failed']} failed)" if row["failed"] else ""
            lines.append(
                f"| {row['method']} | {row['rank'] if row['rank'] is not None else ('full' if row['strategy'] == 'full_rank' else '-')} "
                f"| {row['runs']}{failed} | {100 * row['test_accuracy_mean']:.2f} ± {100 * row['test_accuracy_std']:.2f} % "
                f"| {100 * row['validation_accuracy_mean']:.2f} % | {row['generations_mean']:.0f} "
                f"| {row['seconds_per_generation_mean']:.4f} | {row['wall_time_s_mean']:.1f} | {row['peak_rss_mib_max']:.0f} |"
            )
    return "\n".join(lines) + "\n"


def write_tables(
    out: Path, runs: list[dict], summary: list[dict], config: CompareConfig, baseline: dict | None = None
) -> list[Path]:
    """``runs.csv``, ``summary.csv``, ``summary.md`` and ``compare-config.json`` in ``out``
    (``baseline``: the linear read-out, the first row of every table of ``summary.md``)."""
    settings = {
        "seeds": config.seed_values(),
        "generations": config.generations,
        "seconds": config.seconds,
        "base": config.base.to_dict(),
        "methods": {label: dict(options) for label, options in config.methods.items()},
    }
    (out / "compare-config.json").write_text(json.dumps(settings, indent=1) + "\n", encoding="utf-8")
    markdown = out / "summary.md"
    markdown.write_text(markdown_table(summary, config, baseline), encoding="utf-8")
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
