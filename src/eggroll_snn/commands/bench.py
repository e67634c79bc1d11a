"""``eggroll-snn bench``: seconds per generation of EGGROLL ranks, full-rank ES, evosax and the ceiling."""

from __future__ import annotations

import argparse
import json
import sys

#: Timed repeats per method under --quick (the headline alone in about a minute on 2 cores).
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
    parser.add_argument("--population-size", type=int, default=256, metavar="N", help="members per generation (default 256)")
    parser.add_argument("--batch-size", type=int, default=64, metavar="B", help="recordings per minibatch (default 64)")
    parser.add_argument("--time-bins", type=int, default=10, metavar="T", help="time bins per recording (default 10)")
    parser.add_argument("--input-shape", type=int, nargs=3, default=[2, 34, 34], metavar=("P", "H", "W"), help="frame shape (default 2 34 34)")
    parser.add_argument("--hidden", type=int, nargs="+", default=[128], metavar="H", help="hidden layer widths (default 128)")
    parser.add_argument("--ranks", type=int, nargs="+", default=[1, 2, 4, 8, 16], metavar="R", help="EGGROLL ranks (must include 1)")
    parser.add_argument("--methods", nargs="+", metavar="NAME", help="time only these methods (default: all)")
    parser.add_argument("--repeats", type=int, metavar="K", help="timed generations per method (median reported; default 5)")
    parser.add_argument("--warmup", type=int, default=1, metavar="K", help="untimed generations after compiling (default 1)")
    parser.add_argument("--seed", type=int, default=0, help="seed of data, parameters and noise")
    parser.add_argument("--no-rss", action="store_true", help="skip the per-method peak-memory runs in fresh processes")
    sweep = parser.add_argument_group("sweep")
    sweep.add_argument("--populations", type=int, nargs="+", default=[64, 256, 1024, 4096], metavar="N")
    sweep.add_argument("--hidden-widths", type=int, nargs="+", default=[128, 512, 2048], metavar="H")
    sweep.add_argument("--sweep-methods", nargs="+", default=["eggroll_r1", "full_rank", "inference"], metavar="NAME")
    sweep.add_argument(
        "--max-population", type=int, metavar="N",
        help="largest N for full-rank ES, evosax and the inference ceiling in the sweep (default: 1024 on CPU, none on GPU)",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from eggroll_snn import bench

    repeats = args.repeats if args.repeats is not None else (QUICK_REPEATS if args.quick else 5)
    config = bench.BenchConfig(
        population_size=args.population_size,
        batch_size=args.batch_size,
        time_bins=args.time_bins,
        input_shape=tuple(args.input_shape),
        hidden_sizes=tuple(args.hidden),
        ranks=tuple(args.ranks),
        repeats=repeats,
        warmup=args.warmup,
        seed=args.seed,
    )
    report = bench.benchmark_report(
        config,
        methods=None if args.methods is None else tuple(args.methods),
        sweep=args.sweep,
        sweep_methods=tuple(args.sweep_methods),
        max_population=args.max_population,
        rss=not args.no_rss,
        log=lambda line: print(line, file=sys.stderr, flush=True),
        populations=tuple(args.populations),
        hidden_sizes=tuple(args.hidden_widths),
    )
    paths = bench.write_report(report, args.out)
    if args.json:
        print(json.dumps(report))
    else:
        print(bench.markdown_report(report), end="")
        for path in paths:
            print(f"wrote {path}")
    return 0
