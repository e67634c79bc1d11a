"""The simulator's parameters: one frozen :class:`SimulatorConfig` and the output version.

Every other module of the simulator reads its settings from here; :meth:`SimulatorConfig.key`
names cached data sets, so a changed parameter or :data:`SIMULATOR_VERSION` builds a new one.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json

from eggroll_snn.errors import ConfigError

#: Bump when the simulator's output changes for the same config, so cached data sets rebuild.
SIMULATOR_VERSION = 1


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
