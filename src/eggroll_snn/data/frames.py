"""Events -> frames: per-pixel event counts in time bins, ``frames[t, p, y, x]`` of shape ``(T, P, H, W)``.

A frame counts the events of each polarity at each pixel in one time bin (``P = 2``: 0 = OFF,
1 = ON), the layout of tonic's ``ToFrame``. :class:`FrameConfig` picks how events fall into bins:

* **Fixed time bins** (default: ``window_us=None``, ``event_count=None``, ``duration_us=315_000``):
  the window ``[0, duration_us)`` measured from the start of the recording is cut into
  ``num_time_bins`` equal bins; event ``i`` goes to bin ``floor(t_i * T / duration_us)``. Every
  recording gets the same ``T`` and bin ``k`` covers the same time span in every recording (one
  105 ms saccade is bins ``[0, T/3)`` with the default), which a classifier over a fixed number of
  steps needs. 315 ms is three 105 ms saccades; the rare events at ``t >= duration_us`` (147 of
  3.67 million in the 900 real recordings we test with) are dropped.
* **Fixed time windows** (``window_us=w``, ``duration_us=D``): bins ``[k w, (k + 1) w)`` from
  ``t = 0``, ``T = floor(D / w)`` (``ceil`` with ``include_incomplete``), events at ``t >= T w``
  (or ``>= D``) dropped.
* **tonic-compatible** (``duration_us=None``), the same frames as tonic 1.7.0's
  ``ToFrame(sensor_size=(34, 34, 2), ...)``:

  - ``num_time_bins=n``: ``ToFrame(n_time_bins=n)``: windows of ``(t_last - t_first) // n`` us
    from the first event's time; the last event usually falls outside them and is dropped.
  - ``window_us=w``: ``ToFrame(time_window=w, include_incomplete=...)``: windows of ``w`` us from
    the first event, ``T = floor((t_last - t_first - w) / w) + 1`` (``ceil`` with
    ``include_incomplete``), at least 1.
  - ``event_count=c``: ``ToFrame(event_count=c, include_incomplete=...)``: consecutive runs of
    ``c`` events, ``T = floor((n - c) / c) + 1`` (``ceil`` with ``include_incomplete``).

  Here ``T`` differs between recordings, so these modes serve inspection and comparison with
  tonic; the frame cache (:mod:`eggroll_snn.data.cache`) needs a fixed ``T``.

Where the default differs from tonic's ``ToFrame(n_time_bins=T)``: tonic's bins start at the
first event and span the recording's own ``t_last - t_first`` (rounded down to whole us per bin),
so bin edges move from recording to recording and tonic drops the last event; ours start at
``t = 0`` and span a fixed ``duration_us`` with exact integer edges ``k * duration_us // T``, and
keep every event before ``duration_us``. tonic's ``overlap`` and ``n_event_bins`` options are not
offered. tonic returns int16 counts; so do we (uint8 0/1 with ``binarize``).

After binning, ``pool > 1`` sums ``pool x pool`` pixel blocks (``34 -> 17`` with ``pool=2``), the
same as mapping ``x -> x // pool``, ``y -> y // pool`` before counting (a one-row sensor, ``H = 1``,
pools only along ``x``); ``binarize`` then maps
every count above zero to 1. ``first_saccade_only`` first drops events with ``t >= 100_000`` us.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from eggroll_snn.data.nmnist import FIRST_SACCADE_US, SENSOR_SIZE
from eggroll_snn.errors import ConfigError, DataFormatError


def _check_int(name: str, value, allow_none: bool = False) -> None:
    if value is None and allow_none:
        return
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        expected = "a positive integer or None" if allow_none else "a positive integer"
        raise ConfigError(f"FrameConfig.{name}: expected {expected}, got {value!r}")


@dataclass(frozen=True)
class FrameConfig:
    """How to turn one recording's events into frames (see the module docstring for the modes).

    Attributes:
      num_time_bins: ``T`` in the time-bin modes (unused when ``window_us`` or ``event_count`` is set).
      window_us: bin width in microseconds (time-window mode), or None.
      event_count: events per frame (tonic's event-count mode), or None.
      pool: spatial sum-pooling factor; must divide the sensor size (34: 1, 2, 17 or 34).
      binarize: frames hold 1 where at least one event fell, else 0.
      first_saccade_only: keep only events with ``t < 100_000`` us.
      duration_us: the fixed window ``[0, duration_us)`` of the time-bin and time-window modes;
        None selects the tonic-compatible modes over each recording's own span.
      include_incomplete: time-window and event-count modes keep a last, partial frame (tonic's flag).
    """

    num_time_bins: int = 10
    window_us: int | None = None
    event_count: int | None = None
    pool: int = 1
    binarize: bool = False
    first_saccade_only: bool = False
    duration_us: int | None = 315_000
    include_incomplete: bool = False

    def __post_init__(self):
        _check_int("num_time_bins", self.num_time_bins)
        _check_int("window_us", self.window_us, allow_none=True)
        _check_int("event_count", self.event_count, allow_none=True)
        _check_int("pool", self.pool)
        _check_int("duration_us", self.duration_us, allow_none=True)
        for name in ("binarize", "first_saccade_only", "include_incomplete"):
            if not isinstance(getattr(self, name), bool):
                raise ConfigError(f"FrameConfig.{name}: expected true or false, got {getattr(self, name)!r}")
        if self.window_us is not None and self.event_count is not None:
            raise ConfigError("FrameConfig.event_count: set either window_us or event_count, not both")
        if self.window_us is not None and self.duration_us is not None and self.num_frames == 0:
            raise ConfigError(
                f"FrameConfig.window_us: {self.window_us} us is longer than duration_us={self.duration_us} us, "
                "so no whole window fits; shorten it or set include_incomplete=True"
            )

    @property
    def mode(self) -> str:
        """``"time_bins"``, ``"time_window"`` or ``"event_count"``."""
        if self.window_us is not None:
            return "time_window"
        if self.event_count is not None:
            return "event_count"
        return "time_bins"

    @property
    def num_frames(self) -> int | None:
        """``T`` when every recording gets the same number of frames, else None (tonic modes)."""
        if self.mode == "event_count" or self.duration_us is None:
            return None
        if self.mode == "time_bins":
            return self.num_time_bins
        rounding = math.ceil if self.include_incomplete else math.floor
        return int(rounding(self.duration_us / self.window_us))

    def frame_shape(self, sensor_size: tuple[int, int, int] = SENSOR_SIZE) -> tuple[int, int, int, int]:
        """``(T, P, H // pool, W // pool)`` of every recording's frames.

        Raises:
          ConfigError: ``T`` varies between recordings (tonic modes), or ``pool`` does not divide the sensor.
        """
        if self.num_frames is None:
            raise ConfigError(
                f"FrameConfig: the {self.mode} mode with duration_us=None gives each recording its own number "
                "of frames; set duration_us (and num_time_bins or window_us) for a fixed T"
            )
        return (self.num_frames, *_pooled_plane(sensor_size, self.pool))


def _pooled_plane(sensor_size: tuple[int, int, int], pool: int) -> tuple[int, int, int]:
    """``(P, H // pool, W // pool)``; a one-row sensor (``H = 1``, e.g. a cochlea's channels) keeps its row."""
    width, height, polarities = sensor_size
    if width % pool or (height != 1 and height % pool):
        raise ConfigError(f"FrameConfig.pool: {pool} does not divide the {width}x{height} sensor")
    return polarities, max(height // pool, 1), width // pool


def _slice_bins(t: np.ndarray, config: FrameConfig) -> tuple[np.ndarray, int]:
    """Frame index of each event (``-1`` = dropped) and the number of frames ``T``."""
    n = len(t)
    if config.mode == "event_count":
        if n == 0:
            return np.empty(0, np.int64), 0
        count = min(config.event_count, n)
        rounding = math.ceil if config.include_incomplete else math.floor
        num = int(rounding((n - count) / count)) + 1
        bins = np.arange(n, dtype=np.int64) // count
    elif config.duration_us is not None:
        num = config.num_frames
        if config.mode == "time_bins":
            # Exact integer edges k * D // T: event at t goes to floor(t * T / D).
            bins = t * num // config.duration_us
        else:
            bins = t // config.window_us
        bins = np.where(t < config.duration_us, bins, -1)
    else:
        if n == 0:
            return np.empty(0, np.int64), 0
        start, span = t[0], t[-1] - t[0]
        if config.mode == "time_bins":
            num = config.num_time_bins
            width = span // num
            if width == 0:  # tonic's windows are empty when the span is shorter than T us
                return np.full(n, -1, np.int64), num
        else:
            width = config.window_us
            rounding = math.ceil if config.include_incomplete else math.floor
            num = max(int(rounding((span - width) / width)) + 1, 1)
        bins = (t - start) // width
    return np.where((bins >= 0) & (bins < num), bins, -1), num


def events_to_frames(
    events: np.ndarray, config: FrameConfig = FrameConfig(), sensor_size: tuple[int, int, int] = SENSOR_SIZE
) -> np.ndarray:
    """Count events into frames.

    Args:
      events: ``(n,)`` structured array with fields ``x, y, t, p`` (t in us), sorted by ``t``.
      config: binning, pooling and binarisation (see the module docstring).
      sensor_size: ``(W, H, P)``.

    Returns:
      ``(T, P, H // pool, W // pool)`` int16 counts, or uint8 0/1 with ``config.binarize``;
      ``frames[k, p, y, x]`` counts the events of polarity ``p`` at pooled pixel ``(x, y)`` in frame ``k``.

    Raises:
      DataFormatError: an event lies outside the sensor or has a polarity outside ``0..P-1``.
      ConfigError: ``pool`` does not divide the sensor size.
    """
    polarities, height, width = _pooled_plane(sensor_size, config.pool)
    x, y, t, p = (np.asarray(events[field], dtype=np.int64) for field in ("x", "y", "t", "p"))
    if x.size and (
        min(x.min(), y.min(), p.min()) < 0
        or x.max() >= sensor_size[0]
        or y.max() >= sensor_size[1]
        or p.max() >= polarities
    ):
        raise DataFormatError(
            f"events_to_frames: events must have 0 <= x < {sensor_size[0]}, 0 <= y < {sensor_size[1]} "
            f"and 0 <= p < {polarities}; check the sensor size or the data"
        )
    if config.first_saccade_only:
        keep = t < FIRST_SACCADE_US
        x, y, t, p = x[keep], y[keep], t[keep], p[keep]
    bins, num = _slice_bins(t, config)
    keep = bins >= 0
    plane = polarities * height * width
    flat = bins[keep] * plane + (p[keep] * height + y[keep] // config.pool) * width + x[keep] // config.pool
    counts = np.bincount(flat, minlength=num * plane).reshape(num, polarities, height, width)
    if config.binarize:
        return (counts > 0).astype(np.uint8)
    return counts.astype(np.int16)


def cached_frames(
    events: np.ndarray, config: FrameConfig = FrameConfig(), sensor_size: tuple[int, int, int] = SENSOR_SIZE
) -> np.ndarray:
    """:func:`events_to_frames` as the frame cache and training hold them: uint8, counts capped at 255."""
    frames = events_to_frames(events, config, sensor_size)
    return frames if config.binarize else np.minimum(frames, 255).astype(np.uint8)
