"""The frames of one split of the data a config's ``[data]`` section names.

:func:`load_frames` is the one entry the trainer, ``evaluate``, ``export`` and the baselines use
to turn ``data.root`` (or the built-in simulated N-MNIST when it is unset, or a data set tonic
reads with ``data.source = "tonic"``) into cached frames.
"""

from __future__ import annotations

from pathlib import Path

from eggroll_snn.data.cache import load_split_frames
from eggroll_snn.data.layout import scan_split
from eggroll_snn.data.simulate import default_data_root
from eggroll_snn.data.tonic_source import list_split, load_tonic_split, parse_source
from eggroll_snn.errors import ConfigError


def load_frames(
    data, split: str, data_root: str | Path | None = None, progress: bool = False, skipped: list | None = None
):
    """Frames and labels of ``split`` as the data section ``data`` describes them.

    Args:
      data: a config's ``[data]`` section (:class:`eggroll_snn.config.DataSection`).
      split: ``"train"`` or ``"test"``.
      data_root: overrides ``data.root``; when both are unset the built-in simulated N-MNIST is
        used (built on first use).
      progress: show the cache build's progress.
      skipped: with ``data.skip_bad`` bad recordings are left out; each one is appended here (when
        given) as ``{"split", "source", "reason"}``.

    Returns:
      ``(frames (N, T, P, H', W') uint8 memory map, labels (N,) int64)``.
    """
    root = data_root_folder(data, data_root)
    if data.source == "tonic":  # any data set tonic reads (data/tonic_source.py)
        return load_tonic_split(
            data.tonic_dataset, root, split, data.frame_config(), data.num_classes,
            data.test_fraction, data.cache_dir, progress, data.skip_bad, skipped,
        )
    return load_split_frames(
        root, split, data.frame_config(), cache_dir=data.cache_dir, progress=progress,
        skip_bad=data.skip_bad, skipped=skipped,
    )


def data_root_folder(data, data_root: str | Path | None = None):
    """The folder the recordings of ``data`` are read from: ``data_root`` (or ``data.root``) with a
    ``tonic:<Name>:`` prefix removed, or the built-in simulated N-MNIST's (built on first use).

    Raises:
      ConfigError: a ``tonic:<Name>:<folder>`` root naming another data set than the run's.
    """
    root = data_root if data_root is not None else data.root
    if data.source == "tonic":
        if str(root).startswith("tonic:"):  # evaluate --data tonic:<Name>:<folder>
            name, root = parse_source(str(root))
            if name != data.tonic_dataset:
                raise ConfigError(
                    f"--data {data_root}: this run was trained on {data.tonic_dataset}, not {name}; "
                    f"give a folder holding {data.tonic_dataset}/"
                )
        return root
    return root if root is not None else default_data_root(cache_dir=data.cache_dir)


def split_listing(data, split: str):
    """The listing of ``split`` that :func:`load_frames` bins (its recordings' events, in the order of
    its frames when no recording was skipped): ``read_events(i)``, ``sensor_size``, ``len``."""
    root = data_root_folder(data)
    if data.source == "tonic":
        return list_split(data.tonic_dataset, root, split, data.test_fraction)
    return scan_split(root, split, skip_bad=data.skip_bad)


__all__ = ["data_root_folder", "load_frames", "split_listing"]
