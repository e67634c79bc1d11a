"""The checks every configuration section uses, and the rules that tie a section to its data set.

The option check itself is :func:`eggroll_snn.options.check`; the data rules here size a network to the sensor of the data it reads (N-MNIST's, or a tonic data set's).
"""

from __future__ import annotations

from eggroll_snn.data.tonic_source import describe, parse_source
from eggroll_snn.errors import ConfigError
from eggroll_snn.options import check as _check

MAX_DENSE_INPUTS = 16_384
"""Most inputs per time bin a dense layer takes (the first dense layer after any conv blocks): a
larger sensor needs more pooling or conv blocks first (N-MNIST's largest is 2 x 34 x 34 = 2312)."""


def check_dense_inputs(data, network) -> None:
    """Refuse a sensor too large for the network's first dense layer, saying what to change."""
    fan_in = network.weight_shapes[len(network.conv_channels)][1]
    if fan_in <= MAX_DENSE_INPUTS:
        return
    width, height, polarities = data.sensor
    where = "after the conv blocks" if network.conv_channels else f"with data.pool = {data.pool}"
    raise ConfigError(
        f"option data.pool = {data.pool} is out of range: the {width} x {height} x {polarities} sensor gives {fan_in} inputs per time "
        f"bin to the first dense layer {where}, more than the {MAX_DENSE_INPUTS} it takes; raise data.pool, or put "
        "conv blocks in front (network.conv_channels, conv_stride, conv_pool)"
    )


def resolve_tonic(data) -> None:
    """Expand ``root = "tonic:<Name>:<folder>"`` and fill a tonic section's sensor size and class names.

    Reads the data set only when ``sensor_size`` or ``class_names`` is empty (a run's saved
    config.toml records both, so reloading it reads nothing).
    """
    if isinstance(data.root, str) and data.root.startswith("tonic:"):
        name, root = parse_source(data.root)
        for key, value in (("source", "tonic"), ("tonic_dataset", name), ("root", root), ("sensor_size", ()), ("class_names", ())):
            object.__setattr__(data, key, value)
    if data.source != "tonic":
        for key in ("tonic_dataset", "test_fraction"):
            _check(getattr(data, key) is None, f"data.{key}", getattr(data, key), "unset unless data.source = 'tonic'")
        for key in ("sensor_size", "class_names"):
            _check(getattr(data, key) == (), f"data.{key}", getattr(data, key), "empty unless data.source = 'tonic'")
        return
    _check(data.tonic_dataset is not None, "data.tonic_dataset", None, "a tonic data set name, e.g. DVSGesture or SHD")
    _check(data.root is not None, "data.root", None, f"the folder that holds {data.tonic_dataset}/ (tonic's save_to)")
    _check(not data.first_saccade_only, "data.first_saccade_only", True, "false for a tonic data set (N-MNIST only)")
    if data.test_fraction is not None:
        _check(0.0 < data.test_fraction < 1.0, "data.test_fraction", data.test_fraction, "a fraction strictly between 0 and 1, or unset")
    if not data.sensor_size or not data.class_names:
        sensor_size, class_names = describe(data.tonic_dataset, data.root)
        object.__setattr__(data, "sensor_size", sensor_size)
        object.__setattr__(data, "class_names", class_names)
    _check(
        len(data.sensor_size) == 3 and all(size >= 1 for size in data.sensor_size), "data.sensor_size", data.sensor_size,
        "(W, H, P), three positive integers",
    )
    _check(len(data.class_names) >= 2, "data.class_names", data.class_names, "at least two class names")
