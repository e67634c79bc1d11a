"""The scene the sensor sees: the digit on the canvas, blurred, moved along the saccade path.

N-MNIST's camera made three saccades, so on the 34 x 34 sensor the digit travels along the
closed triangle (0, 0) -> (+3.5, +7) -> (+7, 0) -> (0, 0) pixels (x, y), one edge per 105 ms.

The digit is placed on a 34 x 34 canvas (top-left corner near ``digit_offset_px``, plus a random
sub-pixel phase per recording), blurred by the optics, and shifted by the saccade displacement
``d(t) = (dx, dy)``; sub-pixel shifts use bilinear interpolation. Within each 105 ms slot the
camera moves after ``saccade_onset_us`` for ``saccade_motion_us`` with a raised-cosine speed
profile, ``s(u) = (1 - cos(pi u)) / 2``; the pan and tilt axes move at the same speed, so the
shorter move ends first. Luminance is ``L = L_bg + (L_stroke - L_bg) * image / 255``.

The pixels that turn this luminance into events are :mod:`.sensor`'s.
"""

from __future__ import annotations

import math

import numpy as np

from eggroll_snn.data.events import SENSOR_HEIGHT, SENSOR_WIDTH
from eggroll_snn.data.simulate.images import IMAGE_SIZE
from eggroll_snn.data.simulate.parameters import SimulatorConfig


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
