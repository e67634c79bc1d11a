"""Event-level augmentation from Python: extra training recordings made by any event transform.

The per-minibatch transforms of :mod:`eggroll_snn.data.augment` act on frames inside the compiled
step. Transforms that need the events themselves (tonic's ``SpatialJitter``, ``TimeJitter``,
``RandomTimeReversal``, a user's own function) run here instead, on the host, once per run: each
training recording gets ``copies`` transformed versions, binned like the originals and added to
the training part (the validation and test parts are never transformed).

A transform is any callable from events to events: a structured array with fields ``x, y, t, p``
(t in microseconds) in, one with the same fields out, e.g. a tonic transform or
``tonic.transforms.Compose``. Events it moves off the sensor, or to a negative time, are dropped
(tonic's ``clip_outliers``), and the rest are put back in time order.

Reproducibility: tonic's transforms draw from numpy's global generator, so each call runs with
that generator seeded from ``(train.seed, copy, recording)`` (its state before is restored after),
and the copies of a seed are the same on every start of the run, resume included.
"""

from __future__ import annotations

import contextlib
from typing import Callable

import numpy as np

from eggroll_snn.data.events import EVENT_DTYPE
from eggroll_snn.data.frames import FrameConfig, cached_frames
from eggroll_snn.errors import ConfigError

EventTransform = Callable[[np.ndarray], np.ndarray]


def describe(transform: EventTransform) -> str:
    """What a run records of its transform: its ``repr`` (tonic's transforms print their
    parameters), or its qualified name where the repr holds a memory address (a plain function)."""
    text = repr(transform)
    if " at 0x" in text:
        kind = getattr(transform, "__qualname__", type(transform).__qualname__)
        text = f"{getattr(transform, '__module__', '?')}.{kind}"
    return text


@contextlib.contextmanager
def seeded_numpy(*words: int):
    """numpy's global generator seeded from ``words`` inside the block, its previous state after."""
    saved = np.random.get_state()
    np.random.seed(np.random.SeedSequence([int(word) for word in words]).generate_state(4))
    try:
        yield
    finally:
        np.random.set_state(saved)


def transformed_events(events: np.ndarray, transform: EventTransform, sensor_size: tuple[int, int, int]) -> np.ndarray:
    """``transform(events)`` as :data:`EVENT_DTYPE` in time order, without events off the sensor.

    Raises:
      ConfigError: the transform returned something without the fields ``x, y, t, p``.
    """
    out = transform(events.copy())
    names = getattr(getattr(out, "dtype", None), "names", None) or ()
    if not all(field in names for field in EVENT_DTYPE.names):
        raise ConfigError(
            f"event transform {describe(transform)}: returned {type(out).__name__} "
            f"{getattr(out, 'dtype', '')}, not events with fields x, y, t, p"
        )
    width, height, polarities = sensor_size
    x, y, t, p = (np.asarray(out[field]) for field in EVENT_DTYPE.names)
    kept = (x >= 0) & (x < width) & (y >= 0) & (y < height) & (p >= 0) & (p < polarities) & (t >= 0)
    result = np.empty(int(kept.sum()), EVENT_DTYPE)
    for field, values in zip(EVENT_DTYPE.names, (x, y, t, p)):
        result[field] = np.floor(values[kept]) if np.issubdtype(values.dtype, np.floating) else values[kept]
    return result[np.argsort(result["t"], kind="stable")]


def augmented_copies(
    listing, rows: np.ndarray, transform: EventTransform, copies: int, frame_config: FrameConfig, seed: int,
) -> np.ndarray:
    """Frames ``(copies * len(rows), T, P, H', W')`` uint8: copy ``c`` of recording ``rows[i]`` is row
    ``c * len(rows) + i``, binned from ``transform(listing.read_events(rows[i]))`` under
    :func:`seeded_numpy` ``(seed, c, rows[i])``.

    Args:
      listing: the split's listing (:func:`eggroll_snn.data.source.split_listing`).
      rows: the recordings to copy (positions in ``listing``).
    """
    sensor_size = tuple(listing.sensor_size)
    out = np.empty((copies * len(rows), *frame_config.frame_shape(sensor_size)), np.uint8)
    for index, row in enumerate(np.asarray(rows, np.int64)):
        events = listing.read_events(int(row))
        for copy in range(copies):
            with seeded_numpy(seed, copy, row):
                moved = transformed_events(events, transform, sensor_size)
            out[copy * len(rows) + index] = cached_frames(moved, frame_config, sensor_size)
    return out


__all__ = ["EventTransform", "augmented_copies", "describe", "seeded_numpy", "transformed_events"]
