"""``eggroll-snn evaluate RUN_DIR``: accuracy, per-class accuracy and confusion matrix of a run's model."""

from __future__ import annotations

import argparse
import json


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "evaluate",
        help="score a run's selected model on a data split",
        description="Evaluate the best-validation model of a run folder (model.npz) on a split of the data.",
    )
    parser.add_argument("run_dir", metavar="RUN_DIR", help="a run folder written by eggroll-snn train")
    parser.add_argument("--data", metavar="ROOT", help="data root (default: the one the run was trained on; for a tonic run, the folder holding <DatasetName>/)")
    parser.add_argument("--split", choices=("test", "train"), default="test", help="split to score (default: test)")
    parser.add_argument(
        "--skip-bad", action="store_true", default=None, help="leave out bad recordings instead of failing"
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object (accuracy, count, per_class, confusion, ...)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from eggroll_snn.evaluate import evaluate_run

    report = evaluate_run(args.run_dir, data_root=args.data, split=args.split, skip_bad=args.skip_bad)
    if args.json:
        print(json.dumps(report))
        return 0
    print(f"{report['split']} accuracy {report['accuracy']:.4f} ({report['correct']}/{report['count']}), loss {report['loss']:.4f}")
    names = report.get("class_names") or []  # a tonic data set's class names; N-MNIST's digits have none
    print("class  count  accuracy" + ("  name" if names else ""))
    for label, accuracy in report["per_class"].items():
        shown = "-" if accuracy is None else f"{accuracy:.4f}"
        name = f"  {names[int(label)]}" if names else ""
        print(f"{label:>5}  {report['per_class_count'][label]:>5}  {shown:>8}{name}")
    print("confusion matrix (rows: true class, columns: predicted class)")
    print("      " + " ".join(f"{c:>5}" for c in range(len(report["confusion"]))))
    for label, row in enumerate(report["confusion"]):
        print(f"{label:>5} " + " ".join(f"{count:>5}" for count in row))
    return 0
