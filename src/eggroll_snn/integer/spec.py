"""The options of the fixed-point neuron and the arithmetic they fix (:class:`FixedPointSpec`).

:class:`FixedPointSection` is the ``[fixed_point]`` config section; :func:`make_spec` turns it
and the network section into the integer constants (threshold, leaks, register width) that
:mod:`eggroll_snn.integer.arithmetic` computes with and that the exported model records. The
equations are in :mod:`eggroll_snn.integer.arithmetic`.
"""

from __future__ import annotations

import dataclasses
import math
import shlex
from typing import Literal, Optional

from eggroll_snn.errors import ConfigError

LEAK_MODES = ("shift", "multiplier")
#: Loihi's decay constants are 12-bit: ``D(z) = z * (4096 - delta) / 4096``.
MULTIPLIER_UNITY = 4096
MULTIPLIER_SHIFT = 12
NEURON_MODELS = ("float", "fixed_point")
ARITHMETIC_VERSION = 1


@dataclasses.dataclass(frozen=True)
class FixedPointSection:
    """The ``[fixed_point]`` section of a training config (used when ``network.neuron = "fixed_point"``).

    Attributes:
      fraction_bits: F, fractional bits of weights, biases, states and threshold (integer = float * 2**F).
      weight_bits: bits of a signed weight (8: int8, in [-127, 127]).
      state_bits: bits of the signed synaptic, membrane and read-out registers (saturating).
      leak: ``"shift"`` (Xylo: ``z - (z >> d)``) or ``"multiplier"`` (Loihi: ``z * (4096 - delta) >> 12``).
      synapse_beta: decay of the synaptic current per bin, in [0, 1); 0 = no synaptic memory.
      evaluator: a command line that starts an external fitness evaluator (see
        :mod:`eggroll_snn.integer.hil`), e.g. ``"python -m eggroll_snn.integer.hil.reference_evaluator"``; unset =
        members are evaluated in this process.
      evaluator_timeout_s: seconds an evaluator may take to answer one request.
    """

    fraction_bits: int = 7
    weight_bits: int = 8
    state_bits: int = 16
    leak: Literal["shift", "multiplier"] = "shift"
    synapse_beta: float = 0.0
    evaluator: Optional[str] = None
    evaluator_timeout_s: float = 60.0

    def __post_init__(self) -> None:
        def check(condition, name, allowed):
            if not condition:
                raise ConfigError(f"option fixed_point.{name} = {getattr(self, name)!r} is out of range: {allowed}")

        check(0 <= self.fraction_bits <= 16, "fraction_bits", "an integer 0..16")
        check(2 <= self.weight_bits <= 16, "weight_bits", "an integer 2..16")
        check(8 <= self.state_bits <= 28, "state_bits", "an integer 8..28")
        check(self.leak in LEAK_MODES, "leak", f"one of {', '.join(LEAK_MODES)}")
        check(0.0 <= self.synapse_beta < 1.0, "synapse_beta", "a decay factor in [0, 1)")
        check(
            self.evaluator is None or _splits(self.evaluator), "evaluator",
            "a command line with balanced quotes (e.g. 'python -m eggroll_snn.integer.hil.reference_evaluator'), or unset",
        )
        check(
            math.isfinite(self.evaluator_timeout_s) and self.evaluator_timeout_s > 0, "evaluator_timeout_s",
            "a positive number of seconds",
        )


def _splits(command: str) -> bool:
    """``command`` is a non-empty command line that splits like a shell would (balanced quotes)."""
    try:
        return len(shlex.split(command)) > 0
    except ValueError:
        return False


@dataclasses.dataclass(frozen=True)
class FixedPointSpec:
    """The integer arithmetic of a network (hashable: part of :class:`eggroll_snn.network.NetworkConfig`).

    Attributes:
      fraction_bits: F.
      weight_max: largest weight magnitude ``2**(weight_bits-1) - 1``.
      state_bits: register width; states saturate to ``[-2**(state_bits-1), 2**(state_bits-1) - 1]``.
      threshold: integer firing threshold of the hidden layers.
      leak: ``"shift"`` or ``"multiplier"``.
      membrane_leak, synapse_leak, readout_leak: the shift ``d`` or the multiplier's ``delta``.
      reset: ``"subtract"`` or ``"zero"``.
    """

    fraction_bits: int
    weight_max: int
    state_bits: int
    threshold: int
    leak: str
    membrane_leak: int
    synapse_leak: int
    readout_leak: int
    reset: str

    @property
    def state_min(self) -> int:
        return -(2 ** (self.state_bits - 1))

    @property
    def state_max(self) -> int:
        return 2 ** (self.state_bits - 1) - 1

    @property
    def unit(self) -> float:
        """``2**-F``: the float value of one integer step."""
        return 2.0**-self.fraction_bits

    def effective_beta(self, leak: int) -> float:
        """The decay factor a leak parameter amounts to (ignoring rounding)."""
        if self.leak == "shift":
            return 1.0 - 2.0**-leak
        return (MULTIPLIER_UNITY - leak) / MULTIPLIER_UNITY

    def record(self) -> dict:
        """JSON description of the arithmetic (what export writes and the reference reads)."""
        return {
            "arithmetic_version": ARITHMETIC_VERSION,
            **dataclasses.asdict(self),
            "state_min": self.state_min,
            "state_max": self.state_max,
            "effective_membrane_beta": self.effective_beta(self.membrane_leak),
            "effective_synapse_beta": self.effective_beta(self.synapse_leak),
            "effective_readout_beta": self.effective_beta(self.readout_leak),
            "chip": "SynSense Xylo (bit-shift leak)" if self.leak == "shift" else "Intel Loihi (12-bit multiplier leak)",
            "equations": EQUATIONS,
        }


EQUATIONS = (
    "I[t] = sat(D_syn(I[t-1]) + W x[t]); V[t] = sat(D_mem(V'[t-1]) + I[t] + b); s[t] = V[t] >= threshold; "
    "V'[t] = V[t] - threshold*s[t] (subtract) or V[t]*(1-s[t]) (zero); read-out U[t] = sat(D_out(U[t-1]) + W x[t] + b), "
    "readout = sum_t U[t]; sat = clip to [state_min, state_max]; shift: D(z) = z - (z >> d) (arithmetic shift); "
    "multiplier: D(z) = sign(z) * ((|z| * (4096 - d)) >> 12); states start at 0"
)


def leak_parameter(beta: float, leak: str, option: str) -> int:
    """The shift ``d`` (``"shift"``) or the multiplier's ``delta`` for a decay factor ``beta``."""
    if leak == "shift":
        if beta >= 1.0:
            raise ConfigError(
                f"option {option} = {beta!r}: a bit-shift leak z - (z >> d) cannot keep a state without decay; "
                "use a beta below 1 or fixed_point.leak = 'multiplier'"
            )
        return 0 if beta <= 0.0 else int(round(-math.log2(1.0 - beta)))
    return int(round(MULTIPLIER_UNITY * (1.0 - beta)))


def make_spec(section: FixedPointSection, network_section) -> FixedPointSpec:
    """The arithmetic of ``network_section`` (a config ``NetworkSection``) under ``section``.

    Raises:
      ConfigError: the network uses something the fixed-point model does not have (conv blocks,
        learned constants, another read-out or weight grid), or a threshold outside the registers.
    """
    unsupported = {
        "network.conv_channels": (bool(network_section.conv_channels), "dense layers only"),
        "network.learn_beta": (network_section.learn_beta, "fixed leaks (false)"),
        "network.learn_threshold": (network_section.learn_threshold, "a fixed threshold (false)"),
        "network.readout": (network_section.readout != "mean", "'mean' (the summed read-out membrane)"),
        "network.weights": (network_section.weights != "float32", "'float32' (the fixed-point model has its own int grid)"),
        "network.recurrent": (getattr(network_section, "recurrent", False), "feed-forward layers (false)"),
    }
    for option, (bad, wanted) in unsupported.items():
        if bad:
            raise ConfigError(
                f"option {option} = {getattr(network_section, option.split('.')[1])!r} is not allowed: expected "
                f"{wanted} with network.neuron = 'fixed_point'"
            )
    threshold = int(round(network_section.threshold * 2**section.fraction_bits))
    state_max = 2 ** (section.state_bits - 1) - 1
    if not 1 <= threshold <= state_max:
        raise ConfigError(
            f"option network.threshold = {network_section.threshold!r} is {threshold} in fixed point with "
            f"fixed_point.fraction_bits = {section.fraction_bits}, outside 1..{state_max} of a "
            f"{section.state_bits}-bit register; change fraction_bits or state_bits"
        )
    return FixedPointSpec(
        fraction_bits=section.fraction_bits,
        weight_max=2 ** (section.weight_bits - 1) - 1,
        state_bits=section.state_bits,
        threshold=threshold,
        leak=section.leak,
        membrane_leak=leak_parameter(network_section.beta, section.leak, "network.beta"),
        synapse_leak=leak_parameter(section.synapse_beta, section.leak, "fixed_point.synapse_beta"),
        readout_leak=leak_parameter(network_section.readout_beta, section.leak, "network.readout_beta"),
        reset=network_section.reset,
    )


def check_fixed_point(config) -> None:
    """Refuse a training config (``TrainConfig``) whose options do not combine with its neuron model.

    Raises:
      ConfigError: naming the option (see :func:`make_spec`; also the strategy and the evaluator).
    """
    if config.network.neuron != "fixed_point":
        if config.strategy.method == "eggroll_integer":
            raise ConfigError(
                "option strategy.method = 'eggroll_integer' is not allowed: expected network.neuron = 'fixed_point' "
                "(integer members need the integer network); use strategy.method = 'eggroll' for a float network"
            )
        if config.fixed_point.evaluator is not None:
            raise ConfigError(
                f"option fixed_point.evaluator = {config.fixed_point.evaluator!r} is not allowed: expected unset while "
                "network.neuron = 'float' (external evaluators compute the integer network); set "
                "network.neuron = 'fixed_point' or unset fixed_point.evaluator"
            )
        return
    data = config.data
    time_bins = data.num_time_bins if data.window_us is None else data.duration_us // data.window_us + 1
    check_time_bins(time_bins, make_spec(config.fixed_point, config.network))
    if config.strategy.method not in ("eggroll", "eggroll_integer"):
        raise ConfigError(
            f"option strategy.method = {config.strategy.method!r} does not combine with network.neuron = 'fixed_point': "
            "its members are integer networks made by EGGROLL's integer noise; use strategy.method = 'eggroll' "
            "(or its name 'eggroll_integer')"
        )
    if config.fixed_point.evaluator is not None and config.train.devices != 1:
        raise ConfigError(
            f"option train.devices = {config.train.devices} does not combine with fixed_point.evaluator: the external "
            "evaluator computes the whole population; use train.devices = 1"
        )


def check_time_bins(time_bins: int, spec: FixedPointSpec) -> None:
    """The read-out sum of ``time_bins`` saturated registers must fit int32."""
    if time_bins * 2 ** (spec.state_bits - 1) >= 2**31:
        raise ConfigError(
            f"{time_bins} time bins of {spec.state_bits}-bit read-out registers can overflow the int32 read-out "
            "sum; use fewer data.num_time_bins or a smaller fixed_point.state_bits"
        )


__all__ = [
    "LEAK_MODES", "MULTIPLIER_UNITY", "MULTIPLIER_SHIFT", "NEURON_MODELS", "ARITHMETIC_VERSION", "EQUATIONS",
    "FixedPointSection", "FixedPointSpec", "leak_parameter", "make_spec", "check_fixed_point", "check_time_bins",
]
