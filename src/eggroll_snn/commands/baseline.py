"""``eggroll-snn baseline``: the linear read-out that every spiking result must beat."""

from __future__ import annotations

import argparse
import json


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "baseline",
        help="logistic regression on spike counts, on the splits a training run would use",
        description=(
            "Fit multinomial logistic regression on log(1 + count) features of the same frames and splits "
            "that `eggroll-snn train` with the same options uses; the L2 strength is chosen on the validation "
            "split, then the test split is scored once."
        ),
    )
    parser.add_argument("--config", metavar="FILE", help="TOML config file (see configs/default.toml)")
    parser.add_argument("--data", metavar="ROOT", help="N-MNIST root or tonic:<DatasetName>:<folder>; default: the config's, else the built-in simulated N-MNIST")
    parser.add_argument("--time-groups", type=int, default=3, metavar="K", help="sum the time bins into K groups (default 3)")
    parser.add_argument(
        "--set", dest="assignments", action="append", default=[], metavar="SECTION.KEY=VALUE",
        help="set a config option, e.g. --set data.pool=1 (repeatable)",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from eggroll_snn import config as config_module
    from eggroll_snn.baselines import linear_baseline_for_config

    overrides = dict(config_module.parse_assignment(text) for text in args.assignments)
    if args.data is not None:  # as data.root, so that tonic:<Name>:<folder> and a tonic config file work too
        overrides = {"data.root": args.data, **overrides}
    config = config_module.load(args.config, overrides) if args.config else config_module.TrainConfig()
    config = config_module.apply_overrides(config, overrides)
    result = linear_baseline_for_config(config, None, args.time_groups, progress=not args.json)
    if args.json:
        print(json.dumps(result))
        return 0
    print(
        f"linear baseline: test accuracy {result['test_accuracy']:.4f} on {result['test_count']} recordings "
        f"(validation {result['validation_accuracy']:.4f} at l2={result['l2']:g}; {result['features']} features, "
        f"{result['train_count']} training recordings)"
    )
    return 0
