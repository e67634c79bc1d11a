"""``eggroll-snn bench``: seconds per generation of EGGROLL ranks, full-rank ES, evosax and the ceiling."""

from __future__ import annotations

import argparse
import json
import sys

#: Timed repeats per method under --quick (the headline configuration alone).
QUICK_REPEATS = 3


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "bench",
        help="benchmark seconds per generation of every method side by side",
        description=(
            "Time one generation of EGGROLL (ranks 1-16), full-rank ES, evosax OpenAI-ES (when installed), pure "
            "batched inference on N*B distinct samples and our population forward with sigma=0, on the same network "
            "and random event frames. Writes bench.json, bench.md and PNG plots into --out and prints the table."
        ),
    )
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--quick", action="store_true", help=f"the headline configuration only, {QUICK_REPEATS} timed repeats")
    mode.add_argument("--sweep", action="store_true", help="also sweep N, hidden width and input size; memory-vs-N slopes")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of the markdown table")
    parser.add_argument("--out", metavar="DIR", default="runs/bench", help="output folder (default: runs/bench)")
    # Unset options take the trainer's defaults (BenchConfig reads them from the training config).
    parser.add_argument("--population-size", type=int, metavar="N", help="members per generation (default: strategy.population_size)")
    parser.add_argument("--batch-size", type=int, metavar="B", help="recordings per minibatch (default: train.batch_size)")
    parser.add_argument("--time-bins", type=int, metavar="T", help="time bins per recording (default: data.num_time_bins)")
    parser.add_argument("--input-shape", type=int, nargs=3, metavar=("P", "H", "W"), help="frame shape (default: the default data's pooled frames)")
    parser.add_argument("--hidden", type=int, nargs="+", metavar="H", help="hidden layer widths (default: network.hidden_sizes)")
    parser.add_argument("--ranks", type=int, nargs="+", default=[1, 2, 4, 8, 16], metavar="R", help="EGGROLL ranks (must include 1)")
    parser.add_argument("--methods", nargs="+", metavar="NAME", help="time only these methods (default: all)")
    parser.add_argument("--repeats", type=int, metavar="K", help="timed generations per method (median reported; default 5)")
    parser.add_argument("--warmup", type=int, default=1, metavar="K", help="untimed generations after compiling (default 1)")
    parser.add_argument("--seed", type=int, default=0, help="seed of data, parameters and noise")
    parser.add_argument("--no-rss", action="store_true", help="skip the per-method peak-memory runs in fresh processes")
    sweep = parser.add_argument_group("sweep")
    sweep.add_argument("--populations", type=int, nargs="+", metavar="N", help="population sizes of the sweep (default: bench.config.SWEEP_POPULATIONS)")
    sweep.add_argument("--hidden-widths", type=int, nargs="+", metavar="H", help="hidden widths of the sweep (default: bench.config.SWEEP_HIDDEN_SIZES)")
    sweep.add_argument("--sweep-methods", nargs="+", metavar="NAME", help="methods timed at every sweep point (default: bench.config.SWEEP_METHODS)")
    sweep.add_argument(
        "--max-population", type=int, metavar="N",
        help="largest N for full-rank ES, evosax and the inference ceiling in the sweep (default: 1024 on CPU, none on GPU)",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from eggroll_snn import bench

    repeats = args.repeats if args.repeats is not None else (QUICK_REPEATS if args.quick else 5)
    given = {
        "population_size": args.population_size,
        "batch_size": args.batch_size,
        "time_bins": args.time_bins,
        "input_shape": None if args.input_shape is None else tuple(args.input_shape),
        "hidden_sizes": None if args.hidden is None else tuple(args.hidden),
    }
    config = bench.BenchConfig(
        **{name: value for name, value in given.items() if value is not None},
        ranks=tuple(args.ranks),
        repeats=repeats,
        warmup=args.warmup,
        seed=args.seed,
    )
    # Unset sweep options keep the sweep's own defaults (bench.config's SWEEP_* values).
    sweep_options = {
        name: tuple(value)
        for name, value in (
            ("sweep_methods", args.sweep_methods), ("populations", args.populations), ("hidden_sizes", args.hidden_widths)
        )
        if value is not None
    }
    report = bench.benchmark_report(
        config,
        methods=None if args.methods is None else tuple(args.methods),
        sweep=args.sweep,
        max_population=args.max_population,
        rss=not args.no_rss,
        log=lambda line: print(line, file=sys.stderr, flush=True),
        **sweep_options,
    )
    paths = bench.write_report(report, args.out)
    if args.json:
        print(json.dumps(report))
    else:
        print(bench.markdown_report(report), end="")
        for path in paths:
            print(f"wrote {path}")
    return 0
