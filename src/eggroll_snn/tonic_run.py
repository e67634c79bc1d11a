"""Train on tonic data set objects from Python: the equivalent of ``--data tonic:<Name>:<folder>``.

::

    import tonic
    from eggroll_snn.tonic_run import train_tonic
    result = train_tonic(tonic.datasets.DVSGesture("/data", train=True), "runs/gesture",
                         config=load("configs/dvsgesture.toml"))

The objects name the data set (their class) and its folder (their ``save_to``); the run records
both in its config.toml (``data.source = "tonic"``), so ``eggroll-snn evaluate`` and ``--resume``
read the same files again through :mod:`eggroll_snn.data.tonic_source`. Our binning replaces
tonic's transforms, so objects with a ``transform`` are refused. Without a ``test_dataset`` the test
split is a stratified ``test_fraction`` of the training split, stated in the run's ``data_splits.json``.
"""

from __future__ import annotations

from pathlib import Path

from eggroll_snn.config import TrainConfig, from_dict, override_tables
from eggroll_snn.data.tonic_source import spec
from eggroll_snn.errors import ConfigError
from eggroll_snn.training import train


def _name_and_root(dataset, role: str, train: bool) -> tuple[str, str]:
    name = type(dataset).__name__
    spec(name)  # an unsupported class: the error lists the supported ones
    for attribute in ("transform", "target_transform", "transforms"):
        if getattr(dataset, attribute, None) is not None:
            raise ConfigError(
                f"{role}: a tonic {name} with a {attribute}; eggroll-snn bins the raw events itself "
                "(data.num_time_bins, duration_us, pool), so pass the data set without transforms "
                "(event-level augmentation: train_tonic(..., event_transform=...))"
            )
    if getattr(dataset, "train", train) is not train:
        raise ConfigError(f"{role}: expected a {name} built with train={train}, got train={not train}")
    return name, str(Path(dataset.location_on_system).parent)


def config_for_tonic(
    train_dataset, test_dataset=None, config: TrainConfig | None = None, test_fraction: float = 0.2,
    overrides: dict | None = None,
) -> TrainConfig:
    """``config`` (default: the defaults) with its data section pointing at ``train_dataset``'s files.

    Args:
      train_dataset: a tonic data set object of a supported class, built with ``train=True``.
      test_dataset: the same class and folder with ``train=False``, or None: the test split is then
        a stratified ``test_fraction`` of the training split.
      config: frame and network options to keep (``data.source`` and friends are replaced).
      overrides: ``{"section.key": value}`` set together with the data set (e.g. ``"data.pool": 4``,
        which N-MNIST's 34 x 34 sensor alone would refuse).

    Raises:
      ConfigError: an unsupported class, transforms, a wrong ``train`` flag, or a test data set
        of another class or folder.
    """
    name, root = _name_and_root(train_dataset, "train_dataset", True)
    if test_dataset is not None:
        test_name, test_root = _name_and_root(test_dataset, "test_dataset", False)
        if (test_name, test_root) != (name, root):
            raise ConfigError(
                f"test_dataset: a {test_name} under {test_root}, but train_dataset is a {name} under {root}; "
                "pass the same data set's test split, or none"
            )
    tables = (config if config is not None else TrainConfig()).to_dict()
    # A "tonic:" root resets the data set's name, sensor size and class names (read from the files).
    data = {"data.root": f"tonic:{name}:{root}", "data.test_fraction": None if test_dataset is not None else test_fraction}
    return from_dict(override_tables(tables, {**(overrides or {}), **data}))


def train_tonic(
    train_dataset, run_dir: str | Path, test_dataset=None, config: TrainConfig | None = None,
    test_fraction: float = 0.2, overrides: dict | None = None, progress: bool = True, event_transform=None,
):
    """Train on tonic data set objects; see :func:`config_for_tonic` and :func:`eggroll_snn.training.train`.

    ``event_transform`` (e.g. ``tonic.transforms.SpatialJitter(...)``) makes
    ``train.augment_event_copies`` transformed copies of each training recording
    (:mod:`eggroll_snn.data.event_augment`): the place for tonic's event-level transforms, which
    the data set objects themselves must not carry.

    Returns:
      :class:`eggroll_snn.training.TrainResult`.
    """
    config = config_for_tonic(train_dataset, test_dataset, config, test_fraction, overrides)
    return train(config, run_dir, progress=progress, event_transform=event_transform)


__all__ = ["config_for_tonic", "train_tonic"]
