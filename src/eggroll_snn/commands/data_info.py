"""``eggroll-snn data info ROOT [--json]``: recordings per split and class, and event statistics."""

from __future__ import annotations

import json
from pathlib import Path


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "info",
        help="count recordings per split and class and summarise their events",
        description=(
            "Read every recording under ROOT (NMNIST/Train, Train/ or Train.zip, and the same for Test) "
            "and print counts per split and class and events per recording. Any bad file is an error."
        ),
    )
    parser.add_argument("root", type=Path, metavar="ROOT", help="data root holding the Train and Test splits")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of text")
    parser.add_argument(
        "--skip-bad", action="store_true", help="leave out bad recordings and list them instead of failing"
    )
    parser.set_defaults(func=run)


def run(args) -> int:
    from eggroll_snn.data.stats import data_statistics
    from eggroll_snn.errors import ConfigError

    if str(args.root).startswith("tonic:"):
        raise ConfigError(
            f"data info reads N-MNIST folders only, not tonic data sets ({args.root}); train on it with "
            f"eggroll-snn train --data {args.root}, or inspect it with tonic itself"
        )
    summary = data_statistics(args.root, skip_bad=args.skip_bad)
    if args.json:
        print(json.dumps(summary))
        return 0
    print(f"N-MNIST data in {summary['root']}")
    for split, stats in summary["splits"].items():
        events, duration = stats["events"], stats["duration_us"]
        per_class = "  ".join(f"{digit}: {count}" for digit, count in stats["per_class"].items())
        print(f"{split}: {stats['count']} recordings")
        print(f"  per class   {per_class}")
        print(
            f"  events      {events['total']} in all; per recording mean {events['mean']:.1f}, "
            f"min {events['min']}, max {events['max']}; ON fraction {stats['on_fraction']:.3f}"
        )
        print(
            f"  last event  mean {duration['mean'] / 1000:.1f} ms, "
            f"min {duration['min'] / 1000:.1f} ms, max {duration['max'] / 1000:.1f} ms"
        )
        for item in stats["skipped"]:
            print(f"  skipped     {item['source']}: {item['reason']}")
    return 0
