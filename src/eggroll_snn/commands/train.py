"""``eggroll-snn train``: train a spiking network with EGGROLL (or full-rank ES) into a run folder."""

from __future__ import annotations

import argparse


def device_count(text: str) -> int:
    """``--devices``: ``all`` -> 0 (every device), else a positive integer."""
    if text == "all":
        return 0
    try:
        count = int(text)
    except ValueError:
        count = 0
    if count < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not 'all' or a positive number of devices")
    return count


#: Command-line flags that set a config option: (flag, metavar, option, type, help).
OPTION_FLAGS = (
    ("--data", "ROOT", "data.root", str, "N-MNIST root (NMNIST/Train/<digit>/*.bin or the official zips), or tonic:<DatasetName>:<folder> for a data set tonic reads (DVSGesture, POKERDVS, SHD); default: built-in simulated N-MNIST"),
    ("--method", "NAME", "strategy.method", str, "eggroll, full_rank, or bptt (surrogate-gradient reference)"),
    ("--rank", "R", "strategy.rank", int, "rank r of EGGROLL's perturbations"),
    ("--population-size", "N", "strategy.population_size", int, "members per generation (even)"),
    ("--sigma", "SIGMA", "strategy.sigma", float, "noise scale"),
    ("--learning-rate", "LR", "strategy.learning_rate", float, "optimiser step size"),
    ("--generations", "G", "train.generations", int, "number of generations"),
    ("--batch-size", "B", "train.batch_size", int, "recordings per generation's minibatch"),
    ("--time-bins", "T", "data.num_time_bins", int, "time bins T per recording"),
    ("--seed", "SEED", "train.seed", int, "seed of every random draw of the run"),
    ("--max-seconds", "S", "train.max_seconds", float, "wall-clock budget: stop after the call that passes it"),
    ("--devices", "all|N", "train.devices", device_count, "devices the population is split over (see docs/scale-out.md)"),
    ("--weights", "FORMAT", "network.weights", str, "float32, or int8 / int4: integer weights times a per-layer scale"),
    ("--init-from", "RUN_DIR", "train.init_from", str, "start from a finished run's model (fine-tuning) instead of random weights"),
)


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "train",
        help="train a spiking network without gradients",
        description=(
            "Train a LIF spiking network on N-MNIST frames with an evolution strategy. With no options it "
            "trains on the built-in simulated N-MNIST with the defaults of configs/default.toml and writes "
            "runs/<timestamp>-<method>/."
        ),
    )
    parser.add_argument("--config", metavar="FILE", help="TOML config file (see configs/default.toml)")
    for flag, metavar, option, kind, text in OPTION_FLAGS:
        parser.add_argument(flag, metavar=metavar, type=kind, default=None, help=f"{text} ({option})")
    parser.add_argument(
        "--hidden", type=int, nargs="+", metavar="N", help="hidden layer sizes, e.g. --hidden 128 64 (network.hidden_sizes)"
    )
    parser.add_argument("--out", metavar="DIR", help="run folder (default: runs/<timestamp>-<method>)")
    parser.add_argument("--resume", metavar="RUN_DIR", help="continue the run in RUN_DIR from its newest valid checkpoint")
    parser.add_argument(
        "--set", dest="assignments", action="append", default=[], metavar="SECTION.KEY=VALUE",
        help="set any config option, e.g. --set strategy.sigma=0.03 (repeatable)",
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.add_argument(
        "--skip-bad", action="store_true",
        help="leave out bad recordings and list them in RUN_DIR/skipped_files.json instead of failing (data.skip_bad)",
    )
    group = parser.add_argument_group(
        "multi-process runs", "one process per host or GPU, all started with the same options (see docs/scale-out.md); "
        "under srun (Slurm) JAX finds these itself",
    )
    group.add_argument("--coordinator-address", metavar="HOST:PORT", help="process 0's address (or JAX_COORDINATOR_ADDRESS)")
    group.add_argument("--num-processes", type=int, metavar="P", help="number of processes (or JAX_NUM_PROCESSES)")
    group.add_argument("--process-id", type=int, metavar="I", help="this process's index 0..P-1 (or JAX_PROCESS_ID)")
    parser.set_defaults(func=run)


def overrides_from_args(args: argparse.Namespace) -> dict:
    """``{"section.key": value}`` from the option flags and ``--set`` assignments (later wins)."""
    from eggroll_snn.config import parse_assignment

    overrides = {option: getattr(args, flag[2:].replace("-", "_")) for flag, _, option, _, _ in OPTION_FLAGS}
    overrides = {option: value for option, value in overrides.items() if value is not None}
    if args.hidden is not None:
        overrides["network.hidden_sizes"] = args.hidden
    if getattr(args, "skip_bad", False):
        overrides["data.skip_bad"] = True
    overrides.update(parse_assignment(text) for text in args.assignments)
    return overrides


def run(args: argparse.Namespace) -> int:
    from eggroll_snn import distributed
    from eggroll_snn.errors import ConfigError, EggrollSNNError
    from eggroll_snn.run_folder import resolve_run
    from eggroll_snn.training import train

    options = distributed.DistributedOptions.from_environment(
        coordinator_address=args.coordinator_address, num_processes=args.num_processes, process_id=args.process_id
    )
    if distributed.initialize(options) and args.out is None and args.resume is None:
        raise ConfigError("a multi-process run needs --out DIR (or --resume DIR): the processes must agree on the run folder")
    config, run_dir, resume = resolve_run(args.config, overrides_from_args(args), args.out, args.resume)
    print(f"run folder: {distributed.process_run_dir(run_dir)}")
    try:
        result = train(config, run_dir, resume=resume, progress=not args.no_progress)
    except KeyboardInterrupt:
        print(f"interrupted: a checkpoint was written; continue with: eggroll-snn train --resume {run_dir}")
        return 130
    except OSError as error:
        if error.filename is None and not isinstance(error, EggrollSNNError):
            error.filename = str(run_dir)  # e.g. a zip writer's ENOSPC: name the run folder
        raise
    scored = "test split not read" if result.test_accuracy is None else (
        f"test accuracy {result.test_accuracy:.4f} on {result.test_count} recordings"
    )
    print(
        f"{scored} (model of generation {result.best_generation}, validation accuracy "
        f"{result.best_validation_accuracy:.4f}); {result.generations} generations in {result.wall_time_s:.1f} s"
    )
    return 0
