"""eggroll-snn: gradient-free training of spiking neural networks with EGGROLL.

EGGROLL is an evolution strategy whose per-member weight perturbations are low rank,
``E = A B^T / sqrt(r)``; the noise is regenerated from keys and never stored.

What a user imports, from the top of the package::

    import eggroll_snn as es

    config = es.TrainConfig()                       # or es.load_config("configs/default.toml")
    result = es.train(config, "runs/first")         # a run folder: metrics, checkpoints, model
    report = es.evaluate_run("runs/first")          # its model on a split

    network = es.NetworkConfig(input_size=578, hidden_sizes=(128,))
    params = es.init_params(jax.random.key(0), network)
    logits = es.forward(params, inputs, network)    # inputs (B, T, 578)

    strategy = es.make_strategy("eggroll", population_size=1024, rank=4)
    state = strategy.init(key, params)              # then ask / tell, or generation(...)

    dataset = es.NMNIST("data/nmnist", "train")     # events as (x, y, t, p) records
    frames = es.events_to_frames(dataset[0][0], es.FrameConfig(num_time_bins=4, pool=2))
    es.export_run("runs/first", "model.nir")        # NIR graph, re-simulated before it is written

The names load on first use, so ``import eggroll_snn`` stays cheap; the modules behind them are
listed in docs/design.md.
"""

from __future__ import annotations

import importlib

__version__ = "0.2.0"

#: Public name -> (module, attribute).
_PUBLIC = {
    # training and its configuration
    "train": ("eggroll_snn.training", "train"),
    "TrainResult": ("eggroll_snn.training", "TrainResult"),
    "TrainConfig": ("eggroll_snn.config", "TrainConfig"),
    "load_config": ("eggroll_snn.config", "load"),
    "apply_overrides": ("eggroll_snn.config", "apply_overrides"),
    "evaluate_run": ("eggroll_snn.evaluate", "evaluate_run"),
    "load_model": ("eggroll_snn.run_folder", "load_model"),
    # the network
    "NetworkConfig": ("eggroll_snn.network", "NetworkConfig"),
    "init_params": ("eggroll_snn.network", "init_params"),
    "forward": ("eggroll_snn.network", "forward"),
    "forward_with_state": ("eggroll_snn.network", "forward_with_state"),
    "population_logits": ("eggroll_snn.population", "population_logits"),
    "LowRank": ("eggroll_snn.perturbation", "LowRank"),
    # the methods
    "METHODS": ("eggroll_snn.strategies", "METHODS"),
    "make_strategy": ("eggroll_snn.strategies", "make_strategy"),
    "EggrollStrategy": ("eggroll_snn.strategies", "EggrollStrategy"),
    "FullRankStrategy": ("eggroll_snn.strategies", "FullRankStrategy"),
    "IntegerEggrollStrategy": ("eggroll_snn.strategies", "IntegerEggrollStrategy"),
    "SurrogateGradient": ("eggroll_snn.strategies", "SurrogateGradient"),
    # data
    "NMNIST": ("eggroll_snn.data", "NMNIST"),
    "FrameConfig": ("eggroll_snn.data", "FrameConfig"),
    "events_to_frames": ("eggroll_snn.data", "events_to_frames"),
    "load_frames": ("eggroll_snn.data.source", "load_frames"),
    # export
    "to_nir": ("eggroll_snn.export", "to_nir"),
    "export_run": ("eggroll_snn.export", "export_run"),
    # errors
    "EggrollSNNError": ("eggroll_snn.errors", "EggrollSNNError"),
    "ConfigError": ("eggroll_snn.errors", "ConfigError"),
    "DataFormatError": ("eggroll_snn.errors", "DataFormatError"),
}

__all__ = ["__version__", *_PUBLIC]


def __getattr__(name: str):
    if name not in _PUBLIC:
        raise AttributeError(f"module 'eggroll_snn' has no attribute {name!r}")
    module, attribute = _PUBLIC[name]
    value = getattr(importlib.import_module(module), attribute)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_PUBLIC))
