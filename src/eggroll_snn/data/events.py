"""The N-MNIST event format: decode and encode 5-byte events.

Each event of an N-MNIST ``.bin`` file is 5 bytes, big-endian within the timestamp::

    byte 0: x (0..33)
    byte 1: y (0..33)
    byte 2: bit 7 = polarity (1 = ON), bits 6..0 = timestamp bits 22..16
    byte 3: timestamp bits 15..8
    byte 4: timestamp bits 7..0

Timestamps are microseconds. Decoded events are a numpy structured array with tonic's field
names and order ``x, y, t, p`` (:data:`EVENT_DTYPE`).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from eggroll_snn.errors import DataFormatError

EVENT_DTYPE = np.dtype([("x", "<i2"), ("y", "<i2"), ("t", "<i8"), ("p", "<i1")])
BYTES_PER_EVENT = 5
SENSOR_WIDTH = 34
SENSOR_HEIGHT = 34
MAX_TIMESTAMP_US = (1 << 23) - 1


def decode_events(buffer: bytes, source: str = "<bytes>") -> np.ndarray:
    """Decode an N-MNIST byte string into a structured event array.

    Args:
      buffer: the file's bytes; its length must be a multiple of 5.
      source: a name for the data (usually the file path), used in error messages.

    Returns:
      ``(n,)`` array of :data:`EVENT_DTYPE`.

    Raises:
      DataFormatError: truncated data or coordinates outside the 34 x 34 sensor.
    """
    if len(buffer) % BYTES_PER_EVENT:
        raise DataFormatError(
            f"{source}: {len(buffer)} bytes is not a multiple of {BYTES_PER_EVENT}; "
            "the file is truncated or not an N-MNIST recording"
        )
    raw = np.frombuffer(buffer, dtype=np.uint8).reshape(-1, BYTES_PER_EVENT)
    events = np.empty(len(raw), dtype=EVENT_DTYPE)
    events["x"] = raw[:, 0]
    events["y"] = raw[:, 1]
    events["p"] = raw[:, 2] >> 7
    events["t"] = (
        (raw[:, 2].astype(np.int64) & 0x7F) << 16 | raw[:, 3].astype(np.int64) << 8 | raw[:, 4].astype(np.int64)
    )
    bad = (events["x"] >= SENSOR_WIDTH) | (events["y"] >= SENSOR_HEIGHT)
    if bad.any():
        index = int(np.argmax(bad))
        raise DataFormatError(
            f"{source}: event {index} at (x={events['x'][index]}, y={events['y'][index]}) lies outside "
            f"the {SENSOR_WIDTH}x{SENSOR_HEIGHT} sensor; the file is corrupt or not N-MNIST"
        )
    return events


def encode_events(events: np.ndarray) -> bytes:
    """Encode events (fields ``x, y, t, p``) into N-MNIST bytes; the inverse of :func:`decode_events`.

    Raises:
      DataFormatError: a value does not fit the format (coordinates 0..33, polarity 0/1,
        timestamps 0..2^23-1 microseconds).
    """
    x = np.asarray(events["x"], dtype=np.int64)
    y = np.asarray(events["y"], dtype=np.int64)
    t = np.asarray(events["t"], dtype=np.int64)
    p = np.asarray(events["p"], dtype=np.int64)
    checks = (
        ("x", x, 0, SENSOR_WIDTH - 1),
        ("y", y, 0, SENSOR_HEIGHT - 1),
        ("t", t, 0, MAX_TIMESTAMP_US),
        ("p", p, 0, 1),
    )
    for name, values, low, high in checks:
        if values.size and (values.min() < low or values.max() > high):
            raise DataFormatError(f"cannot encode events: field {name!r} must lie in {low}..{high}")
    raw = np.empty((len(x), BYTES_PER_EVENT), dtype=np.uint8)
    raw[:, 0] = x
    raw[:, 1] = y
    raw[:, 2] = (p << 7) | (t >> 16)
    raw[:, 3] = (t >> 8) & 0xFF
    raw[:, 4] = t & 0xFF
    return raw.tobytes()


def check_time_order(times: np.ndarray, source: str, unit: str, advice: str) -> None:
    """The one rule of a recording's timestamps: non-decreasing (a bad recording otherwise).

    Raises:
      DataFormatError: naming ``source``, the first event that goes back in time, and ``advice``.
    """
    backwards = np.flatnonzero(np.diff(times) < 0)
    if len(backwards):
        at = int(backwards[0]) + 1
        raise DataFormatError(
            f"{source}: event {at}'s timestamp {int(times[at])}{unit} precedes the one before it "
            f"({int(times[at - 1])}{unit}); the events are not in time order. {advice}"
        )


def read_events(path: str | os.PathLike) -> np.ndarray:
    """Read one ``.bin`` recording (see :func:`decode_events`)."""
    path = Path(path)
    try:
        buffer = path.read_bytes()
    except OSError as error:
        raise DataFormatError(f"{path}: cannot read recording ({error.strerror or error})") from error
    return decode_events(buffer, source=str(path))


def write_events(path: str | os.PathLike, events: np.ndarray) -> None:
    """Write events as an N-MNIST ``.bin`` file (parent folders are created)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(encode_events(events))
