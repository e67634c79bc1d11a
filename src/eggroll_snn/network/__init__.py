"""The spiking network: layers of LIF neurons over discrete time bins, and a read-out.

One module per layer kind, each stating its equations (NIR-style), shapes, initialisation and
dynamics: :mod:`.dense` (dense LIF), :mod:`.recurrent` (recurrent LIF), :mod:`.conv` (conv LIF
block with sum pooling), :mod:`.readout` (leaky integrator with mean/max over time, spike
count); :mod:`.lif` holds the neuron update they share. :mod:`.model` composes them from a
:class:`NetworkConfig` (:mod:`.config`, where every network option is declared once) and runs
them in an arithmetic: float (:mod:`.arithmetic`) or the integers of a neuromorphic chip
(:mod:`eggroll_snn.integer.arithmetic`).

The network knows nothing of evolution strategies: members of a population are perturbations
applied through :mod:`eggroll_snn.perturbation`, the one contract with the strategies.
"""

from eggroll_snn.network.arithmetic import FloatArithmetic, LIFNeuron
from eggroll_snn.network.config import COMPUTE_DTYPES, NEURON_MODELS, NetworkConfig, NetworkOptions
from eggroll_snn.network.conv import ConvGeometry, ConvLIF
from eggroll_snn.network.dense import DenseLIF
from eggroll_snn.network.lif import MIN_THRESHOLD, RESET_MODES
from eggroll_snn.network.model import (
    arithmetic_for,
    build_layers,
    first_layer_currents,
    forward,
    forward_with_state,
    init_params,
    input_features,
    member_numbers,
)
from eggroll_snn.network.readout import READOUT_MODES, LeakyReadout, SpikeCountReadout
from eggroll_snn.network.recurrent import RecurrentLIF

__all__ = [
    "NetworkOptions",
    "NetworkConfig",
    "init_params",
    "forward",
    "forward_with_state",
    "build_layers",
    "arithmetic_for",
    "input_features",
    "first_layer_currents",
    "member_numbers",
    "DenseLIF",
    "RecurrentLIF",
    "ConvLIF",
    "ConvGeometry",
    "LeakyReadout",
    "SpikeCountReadout",
    "LIFNeuron",
    "FloatArithmetic",
    "RESET_MODES",
    "READOUT_MODES",
    "COMPUTE_DTYPES",
    "NEURON_MODELS",
    "MIN_THRESHOLD",
]
