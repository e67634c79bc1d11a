"""``eggroll-snn plot RUN_DIR``: PNG learning curves (fitness, loss, accuracy) of a run."""

from __future__ import annotations

import argparse


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "plot",
        help="plot a run's learning curves as PNG",
        description=(
            "Write plot_generation.png and plot_wall_time.png (fitness, loss, validation accuracy) into RUN_DIR, "
            "or into --out."
        ),
    )
    parser.add_argument("run_dir", metavar="RUN_DIR", help="a run folder written by eggroll-snn train")
    parser.add_argument("--out", metavar="DIR", help="folder for the PNG files (default: RUN_DIR)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from eggroll_snn.plot import plot_run

    for path in plot_run(args.run_dir, args.out):
        print(path)
    return 0
