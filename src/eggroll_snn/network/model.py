"""The network: a list of layers built from a :class:`NetworkConfig`, run one after another.

``build_layers(config)`` gives the layers input side first: conv blocks
(:class:`~eggroll_snn.network.conv.ConvLIF`), dense hidden layers
(:class:`~eggroll_snn.network.dense.DenseLIF`, or :class:`~eggroll_snn.network.recurrent.RecurrentLIF`
in a recurrent network) and the read-out (:class:`~eggroll_snn.network.readout.LeakyReadout` or
:class:`~eggroll_snn.network.readout.SpikeCountReadout`). ``arithmetic_for(config)`` gives the
numbers they compute with: float, or the chip's integers for ``neuron = "fixed_point"``.

Layers run one after another over the whole time window: a layer's input currents for all T
bins are one matmul (through :func:`~eggroll_snn.perturbation.perturbed_linear`, so a low-rank
perturbation costs only its rank-r term), then its neurons integrate them over time. This equals
the bin-by-bin network exactly because nothing flows back from a later layer.

Shapes: inputs ``(B, T, input_size)`` (frames flattened to ``P*H*W`` per bin), logits
``(B, num_classes)``. Parameters are the plain pytree ``{"layers": [{"weight": (out, in),
"bias": (out,)}, ..., read-out]}`` with optional per-neuron ``"beta"`` / ``"threshold"`` vectors
(out,) when they are learned and a ``"recurrent"`` (out, out) weight in each dense hidden layer of
a recurrent network.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp

from eggroll_snn.errors import ConfigError
from eggroll_snn.integer.arithmetic import FixedPointArithmetic
from eggroll_snn.network.arithmetic import FloatArithmetic, LIFNeuron
from eggroll_snn.network.config import NetworkConfig
from eggroll_snn.network.conv import ConvLIF
from eggroll_snn.network.dense import DenseLIF
from eggroll_snn.network.readout import LeakyReadout, SpikeCountReadout
from eggroll_snn.network.recurrent import RecurrentLIF


@functools.lru_cache(maxsize=256)
def build_layers(config: NetworkConfig) -> tuple:
    """The layers of ``config``, input side first, read-out last."""
    neuron = LIFNeuron(config.beta, config.threshold, config.reset)
    layers = []
    if config.conv_channels:
        channels_in, (_, height, width) = config.input_shape[0], config.input_shape
        in_shape = (height, width, channels_in)
        for pooled in config.conv_shapes:
            block = ConvLIF(in_shape, pooled[2], config.conv_kernel, config.conv_stride, config.conv_pool, neuron)
            layers.append(block)
            in_shape = pooled
        fan_in = in_shape[0] * in_shape[1] * in_shape[2]
    else:
        fan_in = config.input_size
    dense = RecurrentLIF if config.recurrent else DenseLIF
    for size in config.hidden_sizes:
        layers.append(dense(size, fan_in, neuron))
        fan_in = size
    if config.readout == "spike_count":
        layers.append(SpikeCountReadout(config.num_classes, fan_in, neuron))
    else:
        layers.append(LeakyReadout(config.num_classes, fan_in, config.readout_beta, config.readout))
    return tuple(layers)


def arithmetic_for(config: NetworkConfig, spike_fn=None, fast: bool = False):
    """The arithmetic ``config``'s layers compute with (``spike_fn``, ``fast``: float networks only;
    integer arithmetic is exact in any order)."""
    if config.fixed_point is not None:
        if spike_fn is not None:
            raise ConfigError("a fixed-point network has no surrogate spike: train it with strategy.method = 'eggroll'")
        return FixedPointArithmetic(config.fixed_point)
    return FloatArithmetic(config.compute_dtype, spike_fn, fast)


def init_params(key: jax.Array, config: NetworkConfig) -> dict:
    """Initial parameters: ``W ~ N(0, (init_gain / sqrt(fan_in))^2)``, ``b = 0`` (see
    :func:`eggroll_snn.network.base.init_weight`); recurrent weights start at zero; learned
    ``beta``/``threshold`` at the config values.

    Returns:
      ``{"layers": [{"weight": (out, in), "bias": (out,)[, "beta"][, "threshold"][, "recurrent"]}, ...]}``
      float32; the last layer is the read-out.
    """
    layers = build_layers(config)
    keys = jax.random.split(key, len(layers))
    return {
        "layers": [
            layer.init(layer_key, config.init_gain, config.learn_beta, config.learn_threshold)
            for layer, layer_key in zip(layers, keys)
        ]
    }


def input_features(inputs: jax.Array, config: NetworkConfig) -> jax.Array:
    """What the first weight multiplies: ``inputs`` (B, T, input_size) themselves, or for a conv
    network their receptive fields (B, T, H', W', P*k*k) (frames reshaped from (P, H, W))."""
    first = build_layers(config)[0]
    if not isinstance(first, ConvLIF):
        return inputs
    frames = inputs.reshape(inputs.shape[:2] + config.input_shape)  # (B, T, P, H, W)
    return first.features(jnp.moveaxis(frames, 2, -1))


def first_layer_currents(layer: dict, layer_perturbation: dict | None, inputs: jax.Array, config: NetworkConfig) -> jax.Array:
    """The first layer's input currents ``(B, T, out)`` (``(B, T, H', W', C)`` for a conv network)
    for inputs ``(B, T, input_size)``: ``x (W + E)^T + b + e_b`` of :func:`input_features`."""
    arithmetic = arithmetic_for(config)
    return arithmetic.drive(layer, layer_perturbation, input_features(arithmetic.features(inputs), config))


def _run(
    params: dict, inputs: jax.Array, config: NetworkConfig, perturbation: dict | None, record: bool, spike_fn=None,
    first_currents: jax.Array | None = None, fast: bool = False,
):
    """The layers in turn: ``(logits, hidden-layer states, read-out state)``, states time-major."""
    if inputs.ndim != 3 or inputs.shape[-1] != config.input_size:
        raise ConfigError(
            f"network inputs have shape {inputs.shape}; expected (batch, time_bins, input_size={config.input_size})"
        )
    arithmetic = arithmetic_for(config, spike_fn, fast)
    layers = build_layers(config)
    layer_params = params["layers"]
    layer_perturbations = [None] * len(layers) if perturbation is None else perturbation["layers"]
    if first_currents is None:
        # The first product runs on the shared batch-major inputs (a transpose of the (B, T, input_size)
        # inputs would be the largest copy of all); its per-member (B, T, H) result is made time-major.
        first_currents = arithmetic.drive(
            layer_params[0], layer_perturbations[0], input_features(arithmetic.features(inputs), config)
        )
    currents = jnp.swapaxes(first_currents, 0, 1)
    activity, states = None, []
    for index, (layer, values, layer_perturbation) in enumerate(zip(layers, layer_params, layer_perturbations)):
        if index and fast and not record and index == len(layers) - 1 and isinstance(layer, LeakyReadout):
            logits = layer.summed_logits(values, layer_perturbation, activity, arithmetic)
            if logits is not None:  # one product on the time-weighted spikes instead of T
                return logits, states, {}
        if index:
            currents = arithmetic.drive(values, layer_perturbation, layer.features(activity))
        activity, state = layer.run(values, layer_perturbation, currents, arithmetic, record)
        states.append(state)
    return activity, states[:-1], states[-1]


def forward(
    params: dict, inputs: jax.Array, config: NetworkConfig, perturbation: dict | None = None, spike_fn=None,
    first_currents: jax.Array | None = None, fast: bool = False,
) -> jax.Array:
    """Logits of the network for a batch.

    Args:
      params: parameters as made by :func:`init_params`.
      inputs: ``(B, T, input_size)`` frames (event counts or spikes per bin), any float dtype.
      config: the network description (static).
      perturbation: ``None`` or a pytree with the structure of ``params`` whose leaves are
        perturbations (``LowRank``, dense arrays) or ``None`` (see :mod:`eggroll_snn.perturbation`).
      spike_fn: ``None`` for the exact Heaviside spike ``H(v - theta)``, or a function
        ``spike_fn(v (B, H), theta) -> spikes (B, H)`` used in its place. Its value must be that
        Heaviside; only its derivative may differ (a surrogate-gradient spike, see
        :mod:`eggroll_snn.strategies.bptt`).
      first_currents: the first layer's currents, perturbation included, when the caller has
        formed them (:func:`first_layer_currents`); ``None`` forms them from ``inputs``.
      fast: the same network in fewer operations: time loops unrolled, rank-r terms as
        multiply-adds (:class:`~eggroll_snn.network.arithmetic.FloatArithmetic`), and a mean
        read-out without a learned leak from one product on its time-weighted inputs. Logits equal
        up to float rounding (which can move a spike whose membrane is within rounding of theta).

    Returns:
      ``(B, num_classes)`` float32 logits.
    """
    return _run(
        params, inputs, config, perturbation, record=False, spike_fn=spike_fn, first_currents=first_currents, fast=fast
    )[0]


def forward_with_state(params: dict, inputs: jax.Array, config: NetworkConfig, perturbation: dict | None = None) -> dict:
    """:func:`forward` plus the state trajectories, batch-major.

    Returns:
      dict with ``"logits"`` (B, C); ``"spikes"`` and ``"membranes"``: lists with one
      ``(B, T, ...)`` array per hidden layer (membranes after reset, ``v'[t]``; a conv block's
      spikes before pooling); ``"readout_membrane"`` (B, T, C), ``u[t]`` (a spike-count read-out:
      its membranes). A fixed-point network adds ``"synaptic"`` (one per hidden layer) and
      ``"readout"`` (B, C) int32, the summed read-out membrane; its trajectories are integers.
    """
    logits, hidden, readout = _run(params, inputs, config, perturbation, record=True)
    batch_major = lambda array: jnp.swapaxes(array, 0, 1)  # noqa: E731
    result = {"logits": logits}
    for name in hidden[0] if hidden else ("spikes", "membranes"):
        result[name] = [batch_major(state[name]) for state in hidden]
    result["readout_membrane"] = batch_major(readout["readout_membrane"])
    result.update({name: value for name, value in readout.items() if name != "readout_membrane"})
    return result


def member_numbers(config: NetworkConfig) -> int:
    """Numbers one population member holds per sample and time bin (an estimate for sizing member
    chunks): each layer's currents, membranes and spikes, and the input features of every layer
    after the first (the first layer's inputs are shared by all members)."""
    layers = build_layers(config)
    return sum(3 * layer.activity_size + (layer.feature_size if index else 0) for index, layer in enumerate(layers))


__all__ = [
    "build_layers",
    "arithmetic_for",
    "init_params",
    "input_features",
    "first_layer_currents",
    "forward",
    "forward_with_state",
    "member_numbers",
]
