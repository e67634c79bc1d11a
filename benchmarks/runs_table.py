"""A markdown table of run folders: settings, selected validation, test, time, and time to a bar.

    python benchmarks/runs_table.py RUN_DIR... [--bar 0.942]

Per run: method, N, B, rank, generations, best validation accuracy (and its generation), the mean
validation accuracy over the second half of the run (from metrics.jsonl: less noisy than the best
of many passes, and the curve is flat there on the defaults), test accuracy ("-" when the run did
not read it), training seconds, seconds per generation and, with ``--bar``, the training seconds at
which validation first reached the bar (from metrics.jsonl's wall_time_s), or "-" if never.
"""

from __future__ import annotations

import argparse
import json
import sys
import tomllib
from pathlib import Path


def row(run: Path, bar: float | None) -> str:
    summary = json.loads((run / "summary.json").read_text())
    config = tomllib.loads((run / "config.toml").read_text())
    strategy, train = config["strategy"], config["train"]
    passes = [record for line in (run / "metrics.jsonl").read_text().splitlines() if "validation_accuracy" in (record := json.loads(line))]
    reached = "-"
    if bar is not None:
        reached = next((f"{record['wall_time_s']:.0f}" for record in passes if record["validation_accuracy"] >= bar), "-")
    late = [record["validation_accuracy"] for record in passes if record["generation"] > summary["generations"] / 2]
    test = "-" if summary["test_accuracy"] is None else f"{100 * summary['test_accuracy']:.1f}"
    rank = strategy["rank"] if strategy["method"] == "eggroll" else "-"
    return (
        f"| {run.name} | {strategy['method']} | {strategy['population_size']} | {train['batch_size']} | {rank} | "
        f"{summary['generations']} | {100 * summary['best_validation_accuracy']:.1f} (g {summary['best_generation']}) | "
        f"{100 * sum(late) / max(len(late), 1):.2f} | {test} | {summary['wall_time_s']:.0f} | {summary['seconds_per_generation']:.4f} | {reached} |"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", type=Path)
    parser.add_argument("--bar", type=float, help="validation accuracy whose first crossing is timed")
    args = parser.parse_args()
    print("| run | method | N | B | r | generations | best validation % | mean validation %, 2nd half | test % | training s | s / generation | s to bar |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for run in sorted(args.runs):
        if (run / "summary.json").is_file():
            print(row(run, args.bar))
        else:
            print(f"| {run.name} | no summary.json (unfinished) | | | | | | | | | | |", file=sys.stdout)


if __name__ == "__main__":
    main()
