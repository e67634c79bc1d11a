"""``eggroll-snn export RUN_DIR --nir model.nir``: write a run's trained model as a NIR graph."""

from __future__ import annotations

import argparse


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "export",
        help="export a trained model to NIR (neuromorphic intermediate representation)",
        description=(
            "Write the trained model of RUN_DIR (model.npz + model.json) as a NIR graph: "
            "Input -> (Affine -> LIF)* -> Affine -> LI -> Output, with tau = dt/(1-beta), r = tau/dt. "
            "Models trained with reset='subtract' export with reset to zero and a warning."
        ),
    )
    parser.add_argument("run_dir", metavar="RUN_DIR", help="run folder holding model.npz and model.json")
    parser.add_argument("--nir", required=True, metavar="PATH", help="the .nir file to write (HDF5)")
    parser.add_argument(
        "--dt",
        type=float,
        default=1e-3,
        help="seconds per time step (frame bin) for the continuous time constants (default: 1e-3; "
        "snnTorch 1.0's import_from_nir assumes 1e-4)",
    )
    parser.set_defaults(func=run_export)


def run_export(args: argparse.Namespace) -> int:
    import sys
    import warnings

    from eggroll_snn.export.nir import SubtractionResetWarning, export_run

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", SubtractionResetWarning)
        graph = export_run(args.run_dir, args.nir, dt=args.dt)
    for warning in caught:
        if issubclass(warning.category, SubtractionResetWarning):
            print(f"eggroll-snn: warning: {warning.message}", file=sys.stderr)
        else:
            warnings.warn_explicit(warning.message, warning.category, warning.filename, warning.lineno)
    kinds = " -> ".join(type(node).__name__ for node in graph.nodes.values())
    print(f"wrote {args.nir}: {kinds}, dt = {args.dt:g} s, readout = {graph.metadata['readout']} over time")
    return 0
