"""The event sensor: log-luminance change -> ON/OFF events, refractory period, background noise.

Given the moving scene of :mod:`.motion`, each of the 34 x 34 pixels works as follows.

1. Pixels. Each pixel compares its log luminance with a reference ``r`` (the log luminance at its
   last event). When ``log L - r >= theta_on`` it emits an ON event (p = 1); when
   ``r - log L >= theta_off`` an OFF event (p = 0). Event times are the linearly interpolated
   threshold crossings inside a time step, in microseconds. The thresholds carry a per-pixel
   mismatch, ``theta = theta_0 * (1 + mismatch * N(0, 1))``.
2. Refractory period. After an event the pixel is held in reset for ``refractory_us``: its
   reference follows the input and it cannot fire, so the change seen while blind is lost. This is
   what limits how many events one edge crossing makes, as in the real sensor (whose same-pixel,
   same-polarity intervals in nmnist-small start at about 1.7-2 ms).
3. Background noise: a Poisson process of ``noise_rate_hz`` events per pixel per second at uniform
   positions and times, ON with probability ``noise_on_fraction`` (in nmnist-small the sensor's
   border pixels see about 0.4 events/s, 93 % of them ON).

The event array has :data:`~eggroll_snn.data.events.EVENT_DTYPE` (``x, y, t, p``, ``t`` in
microseconds), sorted by time. Polarity convention, measured on the real recordings: in N-MNIST
files the ON events lie at the *trailing* edge of a moving stroke and the OFF events at the leading
edge. The default luminances therefore render dark strokes on a bright background
(``stroke_luminance < background_luminance``), which gives the same event stream.
"""

from __future__ import annotations

import math

import numpy as np

from eggroll_snn.data.events import EVENT_DTYPE, SENSOR_HEIGHT, SENSOR_WIDTH
from eggroll_snn.data.simulate.images import _check_images
from eggroll_snn.data.simulate.motion import _luminance_canvas, _shifted, saccade_displacement
from eggroll_snn.data.simulate.parameters import SimulatorConfig


def _draw_pixel_thresholds(rng: np.random.Generator, config: SimulatorConfig) -> np.ndarray:
    """``(2, 34 * 34)`` ON/OFF thresholds of one recording (log units), with mismatch."""
    base = np.array([[config.contrast_threshold], [config.contrast_threshold * config.off_threshold_ratio]])
    spread = 1.0 + config.threshold_mismatch * rng.standard_normal((2, SENSOR_HEIGHT * SENSOR_WIDTH))
    # A threshold near zero would fire on every step; keep at least a fifth of the nominal value.
    return base * np.maximum(spread, 0.2)


def _draw_noise(rng: np.random.Generator, config: SimulatorConfig) -> np.ndarray:
    """Background events of one recording (unsorted, :data:`EVENT_DTYPE`)."""
    pixels = SENSOR_HEIGHT * SENSOR_WIDTH
    count = rng.poisson(config.noise_rate_hz * pixels * config.duration_us * 1e-6)
    noise = np.empty(count, dtype=EVENT_DTYPE)
    noise["x"] = rng.integers(0, SENSOR_WIDTH, count)
    noise["y"] = rng.integers(0, SENSOR_HEIGHT, count)
    noise["t"] = rng.integers(0, config.duration_us, count)
    noise["p"] = rng.random(count) < config.noise_on_fraction
    return noise


def _simulate_batch(images: np.ndarray, rngs: list[np.random.Generator], config: SimulatorConfig) -> list[np.ndarray]:
    """Simulate ``B`` recordings at once; the pixel loop is vectorised, the time loop is not.

    Each recording's random draws come from its own generator, and the pixel dynamics are
    deterministic, so a recording does not depend on which batch it was simulated in.

    Args:
      images: ``(B, 28, 28)`` intensities 0..255.
      rngs: ``B`` generators (threshold mismatch, noise).

    Returns:
      ``B`` event arrays (:data:`EVENT_DTYPE`, sorted by time).
    """
    batch = images.shape[0]
    pixels = SENSOR_HEIGHT * SENSOR_WIDTH
    # Per-recording draws, in a fixed order so each recording depends only on its own generator.
    offsets = np.empty((batch, 2))
    thresholds = np.empty((batch, 2, pixels), dtype=np.float32)  # ON, OFF
    for b, rng in enumerate(rngs):
        offsets[b] = np.asarray(config.digit_offset_px) + config.position_jitter_px * rng.random(2)
        thresholds[b] = _draw_pixel_thresholds(rng, config)
    path = np.abs(np.array(config.saccade_path_px, dtype=np.float64)).max()
    margin = int(math.ceil(path)) + 2
    canvas = _luminance_canvas(images.astype(np.float32), offsets, config, margin)

    step = config.time_step_us
    times = np.arange(0, config.duration_us + step, step, dtype=np.int64)
    shifts = saccade_displacement(times, config)

    # State is kept flat, (B * 34 * 34,), so that the sparse firing pixels index cheaply.
    log_previous = np.log(_shifted(canvas, *shifts[0], margin)).ravel()
    reference = log_previous.copy()
    ready_at = np.zeros(batch * pixels, dtype=np.int64)  # end of each pixel's refractory period
    theta_on, minus_theta_off = thresholds[:, 0].ravel(), -thresholds[:, 1].ravel()
    chunks = []
    for k in range(1, len(times)):
        t_start, t_end = times[k - 1], times[k]
        log_now = np.log(_shifted(canvas, *shifts[k], margin)).ravel()
        change = log_now - reference
        ready = ready_at <= t_end
        fire_on = change >= theta_on
        fire_on &= ready
        fire_off = change <= minus_theta_off
        fire_off &= ready
        fired = np.flatnonzero(fire_on | fire_off)
        if fired.size:
            on = fire_on[fired]
            level = reference[fired] + np.where(on, theta_on[fired], minus_theta_off[fired])
            # Linear interpolation of the threshold crossing within the step.
            start = log_previous[fired]
            slope = log_now[fired] - start
            with np.errstate(divide="ignore", invalid="ignore"):
                fraction = np.where(slope == 0, 1.0, (level - start) / slope)
            t = np.rint(t_start + np.clip(fraction, 0.0, 1.0) * step).astype(np.int64)
            t = np.maximum(t, ready_at[fired])
            ready_at[fired] = t + config.refractory_us
            chunks.append((fired, t, on))
        # A pixel that fired or is still refractory is held in reset: its reference follows the
        # input. Because time_step_us <= refractory_us, a pixel that fired is blind at t_end.
        np.copyto(reference, log_now, where=ready_at > t_end)
        log_previous = log_now

    if chunks:
        flat, t, on = (np.concatenate(parts) for parts in zip(*chunks))
    else:
        flat, t, on = np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64), np.zeros(0, dtype=bool)
    b, pix = np.divmod(flat, pixels)
    recordings = []
    order = np.argsort(b, kind="stable")
    bounds = np.searchsorted(b[order], np.arange(batch + 1))
    for i, rng in enumerate(rngs):
        sel = order[bounds[i] : bounds[i + 1]]
        noise = _draw_noise(rng, config)
        events = np.empty(len(sel) + len(noise), dtype=EVENT_DTYPE)
        events["x"][: len(sel)] = pix[sel] % SENSOR_WIDTH
        events["y"][: len(sel)] = pix[sel] // SENSOR_WIDTH
        events["t"][: len(sel)] = t[sel]
        events["p"][: len(sel)] = on[sel]
        events[len(sel) :] = noise
        # Sort by time; ties by position and polarity so the order is fully determined.
        events = events[np.lexsort((events["p"], events["x"], events["y"], events["t"]))]
        recordings.append(events)
    return recordings


def simulate_recording(image: np.ndarray, rng: np.random.Generator, params: SimulatorConfig = SimulatorConfig()) -> np.ndarray:
    """Simulate one N-MNIST recording of a 28 x 28 image.

    Args:
      image: ``(28, 28)`` intensities 0..255 (MNIST convention: 255 = stroke).
      rng: generator for the threshold mismatch and the background noise.
      params: simulator parameters.

    Returns:
      ``(n,)`` events of :data:`EVENT_DTYPE`, sorted by ``t`` (microseconds, ``0 <= t <=
      params.duration_us``).
    """
    return _simulate_batch(_check_images(image), [rng], params)[0]
