"""The reference external evaluator: the numpy integer reference behind the HIL protocol on stdin/stdout.

Run as ``python -m eggroll_snn.integer.hil.reference_evaluator``; the trainer starts it when
``fixed_point.evaluator`` names it. It answers ``hello`` with ``ready``, each ``evaluate`` with the
members' integer read-out values (computed by :mod:`eggroll_snn.integer.reference`, which shares no
code with the JAX path), and stops at ``close`` or at the end of its input. A request it cannot
serve gets an ``error`` reply naming what was wrong.

``--fail-after K --fail-mode crash|hang|garbage`` make it misbehave after K evaluations (for
testing the trainer's failure handling): exit with status 3, stop answering, or send bytes that
are not a message.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np

from eggroll_snn.integer import reference as integer_reference
from eggroll_snn.integer.hil.protocol import ProtocolError, read_message, write_message

ARITHMETIC_KEYS = ("threshold", "state_bits", "leak", "membrane_leak", "synapse_leak", "readout_leak", "reset")


def evaluate_request(record: dict, arrays: dict) -> np.ndarray:
    """Integer read-out values ``(N, B, C)`` int64 of the members described by an ``evaluate`` request."""
    layers = int(record["layers"])
    weights = [arrays[f"layer{i}_weight"] for i in range(layers)]
    biases = [arrays[f"layer{i}_bias"] for i in range(layers)]
    members = [
        {"a": arrays.get(f"layer{i}_a"), "b": arrays.get(f"layer{i}_b"), "sign": arrays.get(f"layer{i}_sign"),
         "bias": arrays.get(f"layer{i}_bias_noise")}
        for i in range(layers)
    ]
    return integer_reference.run(weights, biases, record, arrays["frames"], members)["readout"]


def _misreply(mode: str, header: dict, arrays: dict, record: dict, last: tuple | None) -> tuple[dict, dict]:
    """A wrong reply of the kind ``mode`` names (testing the trainer's checks)."""
    shape = (arrays["layer0_a"].shape[0], arrays["frames"].shape[0], arrays[f"layer{int(record['layers']) - 1}_weight"].shape[0])
    if mode == "stale" and last is not None:
        return last  # the previous reply again: one generation late
    if mode == "huge":
        return {"type": "readout", "request": header.get("request")}, {"readout": np.full(shape, 2**31 - 1, np.int32)}
    return {"type": "readout", "request": header.get("request")}, {"readout": np.full(shape, 2**31 + 5, np.int64)}


def serve(stdin, stdout, fail_after: int | None = None, fail_mode: str = "crash") -> int:
    """Answer requests until ``close`` or the end of ``stdin``; returns the exit status."""
    record, evaluations, last = None, 0, None
    while True:
        try:
            message = read_message(stdin)
        except ProtocolError as error:
            write_message(stdout, {"type": "error", "message": f"unreadable request: {error}"})
            return 2
        if message is None:
            return 0
        header, arrays = message
        kind = header["type"]
        if kind == "close":
            return 0
        if kind == "hello":
            missing = [key for key in (*ARITHMETIC_KEYS, "layers") if key not in header.get("arithmetic", {})]
            if missing:
                write_message(stdout, {"type": "error", "message": f"hello lacks arithmetic entries {missing}"})
                continue
            record = header["arithmetic"]
            write_message(stdout, {"type": "ready", "evaluator": "eggroll-snn numpy int64 reference", "pid": os.getpid()})
            continue
        if kind != "evaluate" or record is None:
            write_message(stdout, {"type": "error", "message": f"unexpected {kind!r} request (send hello first, then evaluate)"})
            continue
        if fail_after is not None and evaluations >= fail_after:
            if fail_mode == "crash":
                os._exit(3)
            if fail_mode == "hang":
                time.sleep(3600)
            if fail_mode in ("stale", "huge", "wide"):
                write_message(stdout, *_misreply(fail_mode, header, arrays, record, last))
                continue
            stdout.write(b"this is not a protocol message at all")
            stdout.flush()
            return 0
        try:
            readout = evaluate_request(record, arrays)
        except (KeyError, ValueError) as error:
            write_message(stdout, {"type": "error", "message": f"bad evaluate request: {type(error).__name__}: {error}"})
            continue
        evaluations += 1
        last = ({"type": "readout", "request": header.get("request")}, {"readout": readout.astype(np.int32)})
        write_message(stdout, *last)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m eggroll_snn.integer.hil.reference_evaluator", description=__doc__.splitlines()[0])
    parser.add_argument("--fail-after", type=int, default=None, help="misbehave after this many evaluations (testing)")
    parser.add_argument(
        "--fail-mode", choices=("crash", "hang", "garbage", "stale", "huge", "wide"), default="crash",
        help="crash, hang, send garbage, repeat the last reply (stale), or reply int32-extreme (huge) or int64 (wide) values",
    )
    args = parser.parse_args(argv)
    return serve(sys.stdin.buffer, sys.stdout.buffer, args.fail_after, args.fail_mode)


if __name__ == "__main__":
    sys.exit(main())
