"""``eggroll-snn compare``: EGGROLL ranks, full-rank ES and BPTT side by side, as tables and plots."""

from __future__ import annotations

import argparse


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "compare",
        help="compare EGGROLL ranks, full-rank ES and BPTT on the same data",
        description=(
            "Train every method of a comparison (default: EGGROLL at ranks 1, 4, 16, full-rank ES and "
            "surrogate-gradient BPTT) with several seeds, once with an equal number of generations and once "
            "with an equal wall-clock budget; write runs.csv, summary.csv, summary.md and PNG plots into the "
            "output folder. Running it again with the same --out continues an interrupted comparison."
        ),
    )
    parser.add_argument("--config", metavar="FILE", help="comparison config (TOML, e.g. configs/compare-simulated.toml)")
    parser.add_argument("--data", metavar="ROOT", help="N-MNIST root for every run (data.root); default: built-in simulated N-MNIST")
    parser.add_argument("--seeds", type=int, metavar="N", help="runs per method and budget (seeds train.seed + 0..N-1)")
    parser.add_argument("--generations", type=int, metavar="G", help="equal-generation budget (0: skip it)")
    parser.add_argument("--seconds", type=float, metavar="S", help="equal wall-clock budget in seconds (0: skip it)")
    parser.add_argument("--methods", nargs="+", metavar="LABEL", help="run only these methods of the config, in this order")
    parser.add_argument("--out", metavar="DIR", help="output folder (default: runs/compare-<timestamp>)")
    parser.add_argument(
        "--set", dest="assignments", action="append", default=[], metavar="SECTION.KEY=VALUE",
        help="set a training option for every method, e.g. --set data.num_time_bins=4 (repeatable)",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import time

    from eggroll_snn.compare import CompareConfig, compare, load_compare
    from eggroll_snn.config import parse_assignment

    config = load_compare(args.config) if args.config is not None else CompareConfig()
    overrides = dict(parse_assignment(text) for text in args.assignments)
    if args.data is not None:
        overrides["data.root"] = args.data
    config = config.with_options(
        overrides=overrides, methods=args.methods, seeds=args.seeds, generations=args.generations, seconds=args.seconds
    )
    out = args.out if args.out is not None else f"runs/compare-{time.strftime('%Y%m%d-%H%M%S')}"
    print(f"comparison folder: {out}")
    result = compare(config, out, log=lambda line: print(line, flush=True))
    print((result.out / "summary.md").read_text(encoding="utf-8"))
    for path in result.files:
        print(path)
    return 0
