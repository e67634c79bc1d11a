"""``eggroll-snn export RUN_DIR --nir model.nir``: write a run's trained model as a NIR graph, checked."""

from __future__ import annotations

import argparse


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "export",
        help="export a trained model to NIR (neuromorphic intermediate representation), checked by re-simulation",
        description=(
            "Write the trained model of RUN_DIR (model.npz + model.json) as a NIR graph that runs the same "
            "network: Affine -> LIF (reset to zero) or Affine -> CubaLIF with a recurrent Linear (reset by "
            "subtraction) per layer, Conv2d -> LIF/CubaLIF -> SumPool2d per conv block, and an Affine read-out "
            "(mean/max; followed by LI when network.readout_beta > 0) or a spiking output layer (spike_count). "
            "Before writing, the graph is re-simulated with an independent NIR interpreter on the run's "
            "validation recordings (or --data/--split) and compared with the model; below 100 % prediction "
            "agreement nothing is written unless --force. The report goes beside the .nir file "
            "(NAME.agreement.json)."
        ),
    )
    parser.add_argument("run_dir", metavar="RUN_DIR", help="run folder holding model.npz and model.json")
    parser.add_argument("--nir", required=True, metavar="PATH", help="the .nir file to write (HDF5)")
    parser.add_argument(
        "--dt",
        type=float,
        default=1e-3,
        help="seconds per time step (frame bin) for the continuous time constants (default: 1e-3; "
        "snnTorch 1.0's import_from_nir assumes 1e-4, Spyx's from_nir takes it as an argument)",
    )
    parser.add_argument("--data", metavar="ROOT", default=None, help="N-MNIST root to check on (default: the run's data)")
    parser.add_argument(
        "--split", choices=("validation", "test", "train"), default="validation",
        help="recordings to check on: the run's held-out validation part (default), or a whole split",
    )
    parser.add_argument("--force", action="store_true", help="write even when some predictions disagree")
    parser.set_defaults(func=run_export)


def run_export(args: argparse.Namespace) -> int:
    from eggroll_snn.export.run import describe_graph, export_run

    result = export_run(args.run_dir, args.nir, dt=args.dt, data_root=args.data, split=args.split, force=args.force)
    report = result.report
    print(f"wrote {args.nir}: {describe_graph(result.graph)}, dt = {args.dt:g} s, readout = {result.graph.metadata['readout']} over time")
    print(
        f"re-simulated with the NIR interpreter on {report['recordings']} {report['split']} recordings: "
        f"{report['agreeing_predictions']} / {report['recordings']} predictions agree "
        f"({100 * report['prediction_agreement']:.2f} %), max |logit difference| = "
        f"{report['max_abs_logit_difference']:.3g}; report: {result.report_path}"
    )
    return 0
