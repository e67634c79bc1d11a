"""``eggroll-snn data {info,simulate,download}``: each action lives in its own module."""

from __future__ import annotations

import importlib

DATA_ACTIONS = ("data_info", "data_simulate", "data_download")


def register(subparsers) -> None:
    parser = subparsers.add_parser("data", help="inspect, simulate or download N-MNIST data")
    actions = parser.add_subparsers(dest="data_command", metavar="ACTION")
    for name in DATA_ACTIONS:
        importlib.import_module(f"eggroll_snn.commands.{name}").register(actions)
    parser.set_defaults(func=lambda args: parser.print_help() or 2)
