"""``eggroll-snn crossval --folds K [train options]``: an option set's validation accuracy over K folds."""

from __future__ import annotations

import argparse
import json

from eggroll_snn.commands.train import OPTION_FLAGS, overrides_from_args


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "crossval",
        help="k-fold validation accuracy of a configuration (the test split is not read)",
        description=(
            "Train the configuration once per fold of a seeded, class-stratified k-fold partition of the "
            "training split, each fold held out once as the validation part, and print each fold's best "
            "validation accuracy, their mean and standard deviation. The test split is not read: use this to "
            "choose options on small data sets, then train the chosen one with eggroll-snn train."
        ),
    )
    parser.add_argument("--folds", type=int, default=5, metavar="K", help="number of folds (default 5)")
    parser.add_argument("--config", metavar="FILE", help="TOML config file (see configs/default.toml)")
    for flag, metavar, option, kind, text in OPTION_FLAGS:
        parser.add_argument(flag, metavar=metavar, type=kind, default=None, help=f"{text} ({option})")
    parser.add_argument("--hidden", type=int, nargs="+", metavar="N", help="hidden layer sizes (network.hidden_sizes)")
    parser.add_argument("--set", dest="assignments", action="append", default=[], metavar="SECTION.KEY=VALUE",
                        help="set any config option (repeatable)")
    parser.add_argument("--out", metavar="DIR", required=True, help="folder for the folds' run folders and crossval.json")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from eggroll_snn.config import TrainConfig, apply_overrides, load
    from eggroll_snn.errors import ConfigError
    from eggroll_snn.training.crossval import cross_validate

    if not 2 <= args.folds <= 100:
        raise ConfigError(f"--folds {args.folds} is out of range: a number of folds 2..100")
    overrides = overrides_from_args(args)
    config = load(args.config, overrides) if args.config else TrainConfig()
    config = apply_overrides(config, overrides)
    result = cross_validate(config, args.folds, args.out, progress=not args.no_progress)
    if args.json:
        print(json.dumps(result))
        return 0
    for fold, accuracy in enumerate(result["validation_accuracies"]):
        print(f"fold {fold}: validation accuracy {accuracy:.4f} ({result['validation_recordings'][fold]} recordings)")
    print(
        f"mean {100 * result['mean']:.1f} % +- {100 * result['std']:.1f} % over {args.folds} folds "
        f"(one validation recording is {result['one_recording_points']:.2f} points); results in {args.out}"
    )
    return 0
