"""The ``eggroll-snn`` command line: a thin shell over the library.

Each subcommand lives in ``eggroll_snn.commands.<name>`` and exposes ``register(subparsers)``,
which adds its parser and sets ``func`` to a handler ``(args) -> int``. Handlers import heavy
libraries (JAX, matplotlib) inside themselves so that ``--help`` stays fast.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from eggroll_snn import __version__
from eggroll_snn.errors import EggrollSNNError

COMMAND_MODULES = ("data", "train", "crossval", "evaluate", "baseline", "plot", "bench", "compare", "export")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="eggroll-snn",
        description="Train spiking neural networks without gradients, using low-rank evolution strategies (EGGROLL).",
    )
    parser.add_argument("--version", action="version", version=f"eggroll-snn {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(f"eggroll_snn.commands.{name}").register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except EggrollSNNError as error:
        print(f"eggroll-snn: error: {error}", file=sys.stderr)
        return 1
    except BrokenPipeError:
        # Output piped into e.g. `head`, which closed early: not an error of ours.
        sys.stderr.close()
        return 0
    except OSError as error:
        # A full or read-only disk, a missing permission: one line naming the path, no traceback.
        print(f"eggroll-snn: error: {_describe_os_error(error)}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("eggroll-snn: interrupted", file=sys.stderr)
        return 130


def _describe_os_error(error: OSError) -> str:
    if error.filename is None:
        return f"{error.strerror or error}; check the disk and the folders the run writes to"
    where = error.filename if error.filename2 is None else f"{error.filename} -> {error.filename2}"
    what = error.strerror or str(error)
    return f"{where}: {what}; free space there or choose a writable folder (--out, EGGROLL_SNN_CACHE)"


if __name__ == "__main__":
    sys.exit(main())
