"""Prediction agreement of NIR exports with the trained model: our interpreter, Spyx, Norse, snnTorch.

For each run folder: export it (as ``eggroll-snn export`` does, checked on the split), then run
the graph with every toolchain that can represent it on the same recordings and compare its
predicted classes with the trained JAX network's. A toolchain that cannot represent the graph
says which node or convention it lacks. Spyx, Norse and snnTorch are optional (``pip install
spyx``; ``pip install torch==2.13.0 snntorch nirtorch norse``).

    python benchmarks/nir_toolchains.py --data ../shared/data/nmnist-small --split test RUN_DIR [RUN_DIR ...]

Prints one Markdown table row per run and toolchain (and ``--json`` one JSON object).
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import nir
import numpy as np

from eggroll_snn.errors import ConfigError
from eggroll_snn.run_folder import load_model
from eggroll_snn.scoring import predict_logits
from eggroll_snn.export.run import check_recordings, export_run
from eggroll_snn.export.toolchains import RUNNERS, SNNTORCH_DT


def measure(run_dir: str, data_root: str | None, split: str) -> list[dict]:
    """Rows ``{run, reset, readout, toolchain, dt, recordings, agreement, max_logit_difference, note}``."""
    params, config, _ = load_model(run_dir)
    network_config = config.network_config()
    frames, _ = check_recordings(config, data_root, split)
    inputs = frames.reshape(frames.shape[0], frames.shape[1], -1).astype(np.float32)
    ours = predict_logits(params, frames, network_config)
    base = {"run": run_dir, "reset": network_config.reset, "readout": network_config.readout, "recordings": len(frames)}
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        for toolchain, dt in (("interpreter", 1e-3), ("spyx", 1e-3), ("norse", 1e-3), ("snntorch", SNNTORCH_DT)):
            path = Path(folder) / f"{toolchain}.nir"
            result = export_run(run_dir, path, dt=dt, data_root=data_root, split=split, force=True)
            row = {**base, "toolchain": toolchain, "dt": dt}
            if toolchain == "interpreter":
                row.update(agreement=result.report["prediction_agreement"], max_logit_difference=result.report["max_abs_logit_difference"], note="")
            else:
                try:
                    logits = RUNNERS[toolchain](nir.read(path), inputs)["logits"]
                except ImportError as error:
                    row.update(agreement=None, max_logit_difference=None, note=f"not installed ({error.name})")
                except ConfigError as error:
                    row.update(agreement=None, max_logit_difference=None, note=f"cannot represent it: {error}")
                else:
                    row.update(
                        agreement=float(np.mean(logits.argmax(axis=1) == ours.argmax(axis=1))),
                        max_logit_difference=float(np.abs(logits - ours).max()), note="",
                    )
            rows.append(row)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("runs", nargs="+", metavar="RUN_DIR")
    parser.add_argument("--data", default=None, help="N-MNIST root (default: each run's data)")
    parser.add_argument("--split", default="test", choices=("validation", "test", "train"))
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    rows = [row for run in args.runs for row in measure(run, args.data, args.split)]
    if args.json:
        print(json.dumps(rows, indent=2))
        return
    print("| run | reset | readout | toolchain | dt (s) | recordings | prediction agreement | max logit difference | note |")
    print("|---|---|---|---|---:|---:|---:|---:|---|")
    for row in rows:
        agreement = "" if row["agreement"] is None else f"{100 * row['agreement']:.1f} %"
        difference = "" if row["max_logit_difference"] is None else f"{row['max_logit_difference']:.2g}"
        print(
            f"| {Path(row['run']).name} | {row['reset']} | {row['readout']} | {row['toolchain']} | {row['dt']:g} | "
            f"{row['recordings']} | {agreement} | {difference} | {row['note']} |"
        )


if __name__ == "__main__":
    main()
