"""Fixed-point LIF network: the integer arithmetic of a digital neuromorphic chip, in JAX.

With ``network.neuron = "fixed_point"`` every forward pass (training members, validation, test)
runs in exact integer arithmetic (int32 in XLA, every operation bounded so nothing wraps). The
strategy keeps float master parameters in the float network's units (threshold 1.0); the chip's
integers are their fixed-point form with ``F = fraction_bits`` fractional bits.

Integer parameters (per layer, input side first, read-out last)::

    W_int = clip(round(W * 2**F), -w_max, w_max)        w_max = 2**(weight_bits - 1) - 1 (int8: 127)
    b_int = clip(round(b * 2**F), s_min, s_max)          s_min, s_max = -2**(state_bits-1), 2**(state_bits-1) - 1
    theta = round(network.threshold * 2**F)              integer threshold (F = 7, theta = 1.0: 128)

``round`` is round-half-to-even. Neuron model of a hidden layer (NIR-style; one update per time
bin t = 1..T; all states start at 0; ``sat(z) = clip(z, s_min, s_max)``, the saturation of a
``state_bits``-bit register; ``x[t]`` integer event counts or 0/1 spikes)::

    I[t]  = sat(D_syn(I[t-1]) + W_int x[t])              synaptic current
    V[t]  = sat(D_mem(V'[t-1]) + I[t] + b_int)           membrane
    s[t]  = [V[t] >= theta]                              spike (for integers, Loihi's V > theta - 1)
    V'[t] = V[t] - theta * s[t]        reset="subtract"  (Xylo)
    V'[t] = V[t] * (1 - s[t])          reset="zero"      (Loihi)

and the read-out, a non-spiking leaky integrator whose summed membrane is the read-out value::

    U[t]     = sat(D_out(U[t-1]) + W_out x[t] + b_out)
    readout  = sum_t U[t]                                (int32; logits = readout / (T * 2**F))

The decay ``D`` is one of two chips' leak arithmetic (``fixed_point.leak``):

* ``"shift"``, SynSense Xylo: ``D(z) = z - (z >> d)`` with ``>>`` the arithmetic (floor) shift
  and ``d = round(-log2(1 - beta))`` (beta = 0.9 gives d = 3, an effective beta of 0.875;
  beta = 0 gives d = 0: no memory). Source: the Xylo neuron model in SynSense's Rockpool
  documentation (``LIFBitshiftTorch``, "bit-shift decay": ``v - v / 2**dash``, and the XyloSim
  8-bit-weight, 16-bit-state architecture).
* ``"multiplier"``, Intel Loihi: ``D(z) = sign(z) * ((|z| * (4096 - delta)) >> 12)`` (a 12-bit
  multiplier, rounding towards zero) with ``delta = round(4096 * (1 - beta))`` (beta = 0.9 gives
  delta = 410, an effective beta of 0.8999). Source: Lava's bit-accurate Loihi LIF
  (``lava.proc.lif.models.PyLifModelBitAcc``: 24-bit u and v, ``decay_unity = 4096``,
  ``decay_shift = 12``, spike ``v > vth``, reset to 0). Differences from Loihi stated: the current
  saturates here (Loihi wraps it), the thresholds and activations are not 6-bit MSB-aligned (use
  F to set the resolution) and there is no refractory period. Use ``state_bits = 24`` for Loihi.

``D_mem`` uses ``network.beta``, ``D_out`` ``network.readout_beta`` and ``D_syn``
``fixed_point.synapse_beta`` (default 0: ``D_syn(z) = 0``, so ``I[t] = sat(W_int x[t])``, the
float network's current-based neuron).

**Population members** (see :class:`eggroll_snn.strategies.integer_eggroll.IntegerEggrollStrategy`)
carry integer perturbations: a weight's member perturbation is ``LowRank(a, b, scale)`` with
integer-valued factors and ``scale = +-2**-F``, so member ``i``'s integer weight is
``W_int + sign_i * A B^T`` (integers, exact; never formed: its currents are
``x W_int^T + sign_i (x B) A^T``, int32); a bias perturbation is a multiple of ``2**-F``.
Member weights are not clipped to ``w_max`` (that would need every member's dense matrix): they
are integers of width ``weight_bits`` plus the noise's. Only the centre ``W_int`` is deployed.

Exactness: every product and sum is int32. The bounds that keep them from wrapping:
``|x W^T| <= ||x[t]||_1 * w_max`` (at most 578 * 255 * 127 < 2**25 for uint8 frames of 578 inputs),
a member's term ``|(x B) A^T| <= r ||x[t]||_1 max|B| max|A|`` (factors of a few units: far below
2**31 for N-MNIST's few thousand events per recording, but not checked at run time), states and
biases within ``state_bits <= 28`` bits, and the read-out sum ``T * 2**(state_bits - 1) < 2**31``
(checked when the config is built and when a forward pass is traced).
"""

from __future__ import annotations

import dataclasses
import math
from typing import Literal, Optional

import jax
import jax.numpy as jnp
import numpy as np

from eggroll_snn.errors import ConfigError
from eggroll_snn.perturbation import LowRank

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
        :mod:`eggroll_snn.hil`), e.g. ``"python -m eggroll_snn.hil.reference_evaluator"``; unset =
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
            self.evaluator is None or self.evaluator.strip() != "", "evaluator",
            "a command line (e.g. 'python -m eggroll_snn.hil.reference_evaluator'), or unset",
        )
        check(
            math.isfinite(self.evaluator_timeout_s) and self.evaluator_timeout_s > 0, "evaluator_timeout_s",
            "a positive number of seconds",
        )


@dataclasses.dataclass(frozen=True)
class FixedPointSpec:
    """The integer arithmetic of a network (hashable: part of :class:`eggroll_snn.snn.NetworkConfig`).

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
    if config.strategy.method != "eggroll":
        raise ConfigError(
            f"option strategy.method = {config.strategy.method!r} does not combine with network.neuron = 'fixed_point': "
            "its members are integer networks made by EGGROLL's integer noise; use strategy.method = 'eggroll'"
        )
    if config.fixed_point.evaluator is not None and config.train.devices != 1:
        raise ConfigError(
            f"option train.devices = {config.train.devices} does not combine with fixed_point.evaluator: the external "
            "evaluator computes the whole population; use train.devices = 1"
        )


# --------------------------------------------------------------------------------------------
# Integer parameters


def integer_layer(layer: dict, spec: FixedPointSpec) -> dict:
    """``{"weight": int32 (out, in), "bias": int32 (out,)}``: the fixed-point form of a float layer."""
    scale = float(2**spec.fraction_bits)
    weight = jnp.clip(jnp.round(jnp.asarray(layer["weight"], jnp.float32) * scale), -spec.weight_max, spec.weight_max)
    bias = jnp.clip(jnp.round(jnp.asarray(layer["bias"], jnp.float32) * scale), spec.state_min, spec.state_max)
    return {"weight": weight.astype(jnp.int32), "bias": bias.astype(jnp.int32)}


def integer_parameters(params: dict, spec: FixedPointSpec) -> list[dict]:
    """Every layer's :func:`integer_layer`, read-out last."""
    return [integer_layer(layer, spec) for layer in params["layers"]]


def project(params: dict, spec: FixedPointSpec) -> dict:
    """Float parameters on the fixed-point grid (``W_int * 2**-F``): what the chip holds, as floats.

    Idempotent, and :func:`integer_parameters` of the result equals that of ``params``.
    """
    unit = jnp.float32(spec.unit)
    return {
        **params,
        "layers": [
            {**layer, "weight": ints["weight"].astype(jnp.float32) * unit, "bias": ints["bias"].astype(jnp.float32) * unit}
            for layer, ints in zip(params["layers"], integer_parameters(params, spec))
        ],
    }


def integer_perturbation(layer_perturbation: dict | None, spec: FixedPointSpec) -> dict:
    """A member's perturbation of one layer as integers: ``{"a", "b": int32 (m|n, r), "sign": int32, "bias": int32 (m,)}``.

    Missing parts come back as ``None``. Factors and bias are rounded: the integer strategy
    makes them exact integers (factors) and multiples of ``2**-F`` (biases) already.
    """
    if layer_perturbation is None:
        return {"a": None, "b": None, "sign": None, "bias": None}
    weight = layer_perturbation.get("weight")
    result = {"a": None, "b": None, "sign": None, "bias": None}
    if weight is not None:
        if not isinstance(weight, LowRank):
            raise ConfigError(
                "network.neuron = 'fixed_point' needs low-rank integer perturbations (strategy.method = 'eggroll'); "
                "got a dense weight perturbation"
            )
        result["a"] = jnp.round(weight.a).astype(jnp.int32)
        result["b"] = jnp.round(weight.b).astype(jnp.int32)
        result["sign"] = jnp.round(weight.scale * 2**spec.fraction_bits).astype(jnp.int32)
    bias = layer_perturbation.get("bias")
    if bias is not None:
        result["bias"] = jnp.round(bias * 2**spec.fraction_bits).astype(jnp.int32)
    return result


# --------------------------------------------------------------------------------------------
# Integer arithmetic


def _int_matmul(x: jax.Array, y: jax.Array) -> jax.Array:
    """``x @ y`` of int32 arrays, accumulated in int32 (exact within the bounds of the module docstring)."""
    return jnp.matmul(x, y, preferred_element_type=jnp.int32)


def decay(z: jax.Array, leak: int, spec: FixedPointSpec) -> jax.Array:
    """``D(z)`` of the module docstring for int32 ``z`` (any shape)."""
    if spec.leak == "shift":
        return z - jnp.right_shift(z, leak)
    factor = MULTIPLIER_UNITY - leak
    magnitude = jnp.abs(z)
    # |z| * factor >> 12 without a 64-bit product: split |z| = high * 4096 + low.
    high, low = jnp.right_shift(magnitude, MULTIPLIER_SHIFT), jnp.bitwise_and(magnitude, MULTIPLIER_UNITY - 1)
    shifted = high * factor + jnp.right_shift(low * factor, MULTIPLIER_SHIFT)
    return jnp.sign(z) * shifted


def _saturate(z: jax.Array, spec: FixedPointSpec) -> jax.Array:
    return jnp.clip(z, spec.state_min, spec.state_max)


def layer_currents(inputs: jax.Array, ints: dict, member: dict) -> jax.Array:
    """``x (W_int + sign A B^T)^T`` as int32 ``(..., out)`` for int32 inputs ``(..., in)``."""
    currents = _int_matmul(inputs, ints["weight"].T)
    if member["a"] is not None:
        currents = currents + member["sign"] * _int_matmul(_int_matmul(inputs, member["b"]), member["a"].T)
    return currents


def member_bias(ints: dict, member: dict, spec: FixedPointSpec) -> jax.Array:
    """The member's integer bias (centre plus perturbation, saturated to the register)."""
    return ints["bias"] if member["bias"] is None else _saturate(ints["bias"] + member["bias"], spec)


def _lif(currents: jax.Array, bias: jax.Array, spec: FixedPointSpec):
    """Hidden-layer dynamics over int32 currents ``(T, B, H)``: spikes, post-reset membranes, synaptic currents."""

    def step(carry, current):
        synaptic, membrane = carry
        synaptic = _saturate(decay(synaptic, spec.synapse_leak, spec) + current, spec)
        membrane = _saturate(decay(membrane, spec.membrane_leak, spec) + synaptic + bias, spec)
        spikes = (membrane >= spec.threshold).astype(jnp.int32)
        if spec.reset == "subtract":
            membrane = membrane - spec.threshold * spikes
        else:
            membrane = membrane * (1 - spikes)
        return (synaptic, membrane), (spikes, membrane, synaptic)

    zeros = jnp.zeros(currents.shape[1:], jnp.int32)
    _, (spikes, membranes, synaptic) = jax.lax.scan(step, (zeros, zeros), currents)
    return spikes, membranes, synaptic


def _readout(currents: jax.Array, bias: jax.Array, spec: FixedPointSpec) -> jax.Array:
    def step(membrane, current):
        membrane = _saturate(decay(membrane, spec.readout_leak, spec) + current + bias, spec)
        return membrane, membrane

    _, membranes = jax.lax.scan(step, jnp.zeros(currents.shape[1:], jnp.int32), currents)
    return membranes


def readout_logits(readout: jax.Array, time_bins: int, spec: FixedPointSpec) -> jax.Array:
    """Float logits of integer read-out values: ``readout / (T * 2**F)``, the float network's time mean."""
    return readout.astype(jnp.float32) * jnp.float32(spec.unit / time_bins)


def check_time_bins(time_bins: int, spec: FixedPointSpec) -> None:
    """The read-out sum of ``time_bins`` saturated registers must fit int32."""
    if time_bins * 2 ** (spec.state_bits - 1) >= 2**31:
        raise ConfigError(
            f"{time_bins} time bins of {spec.state_bits}-bit read-out registers can overflow the int32 read-out "
            "sum; use fewer data.num_time_bins or a smaller fixed_point.state_bits"
        )


def integer_run(ints: list[dict], members: list[dict], inputs: jax.Array, spec: FixedPointSpec) -> dict:
    """The integer network on int32 inputs ``(B, T, in)``; time-major trajectories.

    Returns:
      ``{"readout": (B, C) int32, "readout_membrane": (T, B, C), "spikes", "membranes",
      "synaptic": lists of (T, B, H) int32 per hidden layer}``.
    """
    time_bins = inputs.shape[1]
    check_time_bins(time_bins, spec)
    activity = jnp.swapaxes(inputs, 0, 1)  # (T, B, in)
    spikes_per_layer, membranes_per_layer, synaptic_per_layer = [], [], []
    for layer, member in zip(ints[:-1], members[:-1]):
        spikes, membranes, synaptic = _lif(layer_currents(activity, layer, member), member_bias(layer, member, spec), spec)
        spikes_per_layer.append(spikes)
        membranes_per_layer.append(membranes)
        synaptic_per_layer.append(synaptic)
        activity = spikes
    readout_layer, readout_member = ints[-1], members[-1]
    membranes = _readout(
        layer_currents(activity, readout_layer, readout_member), member_bias(readout_layer, readout_member, spec), spec
    )
    return {
        "readout": membranes.sum(axis=0),
        "readout_membrane": membranes,
        "spikes": spikes_per_layer,
        "membranes": membranes_per_layer,
        "synaptic": synaptic_per_layer,
    }


def integer_inputs(inputs: jax.Array) -> jax.Array:
    """Frames ``(B, T, in)`` (event counts, any dtype) as int32."""
    return jnp.round(inputs).astype(jnp.int32) if jnp.issubdtype(inputs.dtype, jnp.floating) else inputs.astype(jnp.int32)


def _members(params: dict, perturbation: dict | None, spec: FixedPointSpec) -> list[dict]:
    layers = params["layers"]
    per_layer = [None] * len(layers) if perturbation is None else perturbation["layers"]
    return [integer_perturbation(layer_perturbation, spec) for layer_perturbation in per_layer]


def forward(params: dict, inputs: jax.Array, spec: FixedPointSpec, perturbation: dict | None = None) -> jax.Array:
    """Float logits ``(B, C)`` of the integer network (``snn.forward`` with ``network.neuron = "fixed_point"``).

    Args:
      params: float master parameters (``snn.init_params``); their fixed-point form is what runs.
      inputs: ``(B, T, in)`` integer event counts (any dtype).
      spec: the arithmetic.
      perturbation: ``None`` or one member's integer perturbation (see the module docstring).
    """
    run = integer_run(integer_parameters(params, spec), _members(params, perturbation, spec), integer_inputs(inputs), spec)
    return readout_logits(run["readout"], inputs.shape[1], spec)


def forward_with_state(params: dict, inputs: jax.Array, spec: FixedPointSpec, perturbation: dict | None = None) -> dict:
    """:func:`forward` plus every integer trajectory, batch-major.

    Returns:
      ``{"logits": (B, C) float32, "readout": (B, C) int32, "readout_membrane": (B, T, C),
      "spikes", "membranes", "synaptic": lists of (B, T, H) int32}``.
    """
    run = integer_run(integer_parameters(params, spec), _members(params, perturbation, spec), integer_inputs(inputs), spec)
    batch_major = lambda array: jnp.swapaxes(array, 0, 1)  # noqa: E731
    return {
        "logits": readout_logits(run["readout"], inputs.shape[1], spec),
        "readout": run["readout"],
        "readout_membrane": batch_major(run["readout_membrane"]),
        **{name: [batch_major(array) for array in run[name]] for name in ("spikes", "membranes", "synaptic")},
    }


def integer_model(params: dict, spec: FixedPointSpec, weight_dtype=np.int8) -> tuple[dict, dict]:
    """The deployable integer model: ``(arrays, record)``.

    ``arrays``: ``{"layer{i}_weight": weight_dtype (out, in), "layer{i}_bias": int32 (out,)}``
    (read-out last); ``record``: :meth:`FixedPointSpec.record` plus the layer sizes.
    """
    if spec.weight_max > np.iinfo(weight_dtype).max:
        weight_dtype = np.int16
    arrays, sizes = {}, []
    for index, ints in enumerate(integer_parameters(params, spec)):
        arrays[f"layer{index}_weight"] = np.asarray(ints["weight"]).astype(weight_dtype)
        arrays[f"layer{index}_bias"] = np.asarray(ints["bias"]).astype(np.int32)
        sizes.append(list(arrays[f"layer{index}_weight"].shape))
    return arrays, {**spec.record(), "layers": len(sizes), "layer_shapes": sizes, "weight_dtype": np.dtype(weight_dtype).name}


__all__ = [
    "NEURON_MODELS",
    "LEAK_MODES",
    "EQUATIONS",
    "FixedPointSection",
    "FixedPointSpec",
    "make_spec",
    "leak_parameter",
    "integer_layer",
    "integer_parameters",
    "integer_perturbation",
    "project",
    "decay",
    "readout_logits",
    "integer_run",
    "integer_inputs",
    "forward",
    "forward_with_state",
    "integer_model",
]
