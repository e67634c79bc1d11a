"""``eggroll-snn data download --to DIR``: fetch, verify and extract the official N-MNIST archives."""

from __future__ import annotations

from pathlib import Path


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "download",
        help="download the official N-MNIST archives (MD5-checked, resumable) and extract them",
        description=(
            "Download Train.zip and Test.zip, verify their MD5 checksums and extract them safely into "
            "DIR/NMNIST/{Train,Test}. Interrupted downloads resume; finished work is skipped on a rerun."
        ),
    )
    parser.add_argument("--to", required=True, type=Path, metavar="DIR", help="dataset root to create or complete")
    parser.add_argument(
        "--no-extract", action="store_true", help="keep only the verified zips (the reader can use them in place)"
    )
    parser.add_argument(
        "--url-base",
        metavar="URL",
        default=None,
        help="a mirror serving URL/Train.zip and URL/Test.zip (default: the official files; "
        "env EGGROLL_SNN_NMNIST_URL_BASE; checksum overrides in EGGROLL_SNN_NMNIST_{TRAIN,TEST}_MD5)",
    )
    parser.add_argument("--no-progress", action="store_true", help="do not draw progress bars")
    parser.set_defaults(func=run)


def run(args) -> int:
    from eggroll_snn.data.download import download_nmnist

    result = download_nmnist(
        args.to, url_base=args.url_base, extract=not args.no_extract, progress=not args.no_progress
    )
    for name, path in result.archives.items():
        state = "downloaded" if name in result.downloaded else "already present"
        print(f"{name}: {state} ({path})")
    for split, path in result.split_dirs.items():
        state = "extracted" if f"{split}.zip" in result.extracted else "already extracted"
        print(f"{split}: {state} ({path})")
    print(f"dataset root: {result.root}")
    return 0
