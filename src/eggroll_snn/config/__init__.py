"""Training configuration: nested frozen dataclasses, TOML load/dump, command-line overrides.

A :class:`TrainConfig` has five sections, each a frozen dataclass:

* ``data``: where the recordings are and how they become frames (mirrors
  :class:`eggroll_snn.data.frames.FrameConfig`), plus the validation fraction;
* ``network``: the network's own options class, :class:`eggroll_snn.network.NetworkOptions`
  (the sizes the data fixes, inputs per time bin and classes, come from the ``data`` section:
  :meth:`TrainConfig.network_config`);
* ``strategy``: the training method (method, population, sigma, rank, optimiser, schedules);
* ``train``: the generation loop (generations, minibatch, evaluation/checkpoint cadence, seed);
* ``fixed_point``: the integer arithmetic of ``network.neuron = "fixed_point"``.

Every option is checked when the dataclass is built, so an invalid configuration cannot exist:
a bad value raises :class:`~eggroll_snn.errors.ConfigError` naming the option (``section.key``),
the value and the allowed range. Unknown keys in a TOML file or a ``--set`` override are refused
with their name. :func:`dumps` writes a TOML file that :func:`loads` reads back to an equal config.

The sections and their checks are :mod:`.sections`; TOML and overrides are :mod:`.files`.
"""

from eggroll_snn.config.files import (
    apply_overrides,
    dump,
    dumps,
    from_dict,
    load,
    loads,
    options_missing_at_default,
    override_tables,
    parse_assignment,
    section_from_dict,
)
from eggroll_snn.config.sections import (
    MAX_DENSE_INPUTS,
    SECTIONS,
    DataSection,
    NetworkSection,
    StrategySection,
    TrainConfig,
    TrainSection,
)
from eggroll_snn.errors import ConfigError

__all__ = [
    "ConfigError",
    "DataSection",
    "NetworkSection",
    "StrategySection",
    "TrainSection",
    "TrainConfig",
    "SECTIONS",
    "from_dict",
    "section_from_dict",
    "loads",
    "load",
    "dumps",
    "dump",
    "parse_assignment",
    "apply_overrides",
    "override_tables",
    "options_missing_at_default",
    "MAX_DENSE_INPUTS",
]
