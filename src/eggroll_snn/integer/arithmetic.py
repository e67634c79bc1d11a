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

from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np

from eggroll_snn.errors import ConfigError
from eggroll_snn.integer.spec import MULTIPLIER_SHIFT, MULTIPLIER_UNITY, FixedPointSpec, check_time_bins
from eggroll_snn.perturbation import LowRank


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


def integer_inputs(inputs: jax.Array) -> jax.Array:
    """Frames ``(B, T, in)`` (event counts, any dtype) as int32."""
    return jnp.round(inputs).astype(jnp.int32) if jnp.issubdtype(inputs.dtype, jnp.floating) else inputs.astype(jnp.int32)


@dataclass(frozen=True)
class FixedPointArithmetic:
    """The integer arithmetic of the module docstring, with the float arithmetic's methods
    (:mod:`eggroll_snn.network.arithmetic`): the layers of a ``neuron = "fixed_point"`` network
    compute with it. Dense LIF layers and the mean read-out only (the config refuses the rest).

    The parameters stay float masters; each layer's integers (:func:`integer_layer`) and a
    member's integer perturbation (:func:`integer_perturbation`) are formed where they are used.
    """

    spec: FixedPointSpec

    def features(self, inputs: jax.Array) -> jax.Array:
        check_time_bins(inputs.shape[1], self.spec)
        return integer_inputs(inputs)

    def drive(self, layer: dict, layer_perturbation: dict | None, x: jax.Array) -> jax.Array:
        """``x (W_int + sign A B^T)^T`` int32 (the bias joins in the membrane update)."""
        return layer_currents(x, integer_layer(layer, self.spec), integer_perturbation(layer_perturbation, self.spec))

    def feedback(self, layer: dict, layer_perturbation: dict | None):
        raise ConfigError("option network.recurrent = True is not allowed with network.neuron = 'fixed_point'")

    def _bias(self, layer: dict, layer_perturbation: dict | None) -> jax.Array:
        member = integer_perturbation(layer_perturbation, self.spec)
        return member_bias(integer_layer(layer, self.spec), member, self.spec)

    def spiking(self, layer, layer_perturbation, currents, neuron, record, feedback=None) -> dict:
        """Hidden-layer dynamics (the spec's threshold, leaks and reset; ``neuron`` is the float model's)."""
        spikes, membranes, synaptic = _lif(currents, self._bias(layer, layer_perturbation), self.spec)
        return {"spikes": spikes, "membranes": membranes, "synaptic": synaptic}

    def integrating(self, layer, layer_perturbation, currents, beta) -> jax.Array:
        return _readout(currents, self._bias(layer, layer_perturbation), self.spec)

    def logits(self, membranes: jax.Array, mode: str) -> tuple[jax.Array, dict]:
        """``readout = sum_t U[t]`` (int32) and its float logits ``readout / (T * 2**F)``."""
        readout = membranes.sum(axis=0)
        return readout_logits(readout, membranes.shape[0], self.spec), {"readout": readout}


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
    "integer_layer",
    "integer_parameters",
    "integer_perturbation",
    "project",
    "decay",
    "layer_currents",
    "member_bias",
    "readout_logits",
    "integer_inputs",
    "FixedPointArithmetic",
    "integer_model",
]
