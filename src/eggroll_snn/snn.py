"""A feed-forward spiking network: discrete-time LIF layers and a leaky, non-spiking read-out.

Neuron models (one update per time bin ``t = 1..T``; state starts at zero; NIR-style statement):

* **LIF hidden layer** with weight ``W`` (out, in), bias ``b`` (out,), leak ``beta`` in [0, 1],
  threshold ``theta > 0``, input spikes or frame counts ``s_in[t]`` (in,)::

      v[t]  = beta * v'[t-1] + W s_in[t] + b           (leaky integration)
      s[t]  = H(v[t] - theta)                          (spike when v[t] >= theta; H(0) = 1)
      v'[t] = v[t] - theta * s[t]     reset="subtract" (default: keeps the overshoot)
      v'[t] = v[t] * (1 - s[t])       reset="zero"

  ``v'`` is the membrane after reset, the state carried to the next step.

* **Recurrent LIF hidden layer** (``recurrent=True``: every dense hidden layer) adds the layer's
  own spikes of the previous step through a recurrent weight ``V`` (out, out), ``s[0] = 0``::

      v[t]  = beta * v'[t-1] + W s_in[t] + V s[t-1] + b

  ``V`` is one more 2-D weight, so the strategies perturb it like any other (a low-rank
  ``E = s a b^T`` adds ``s * (s[t-1] b) a^T`` per step). It starts at zero: an untrained recurrent
  network computes what the feed-forward one does, and training grows the recurrence.

* **Convolutional LIF block** (``conv_channels``, before the dense layers): the same LIF
  equations with ``W s_in[t]`` replaced by a 2-D convolution (no padding, stride ``conv_stride``)
  of the block's input ``(H, W, C_in)`` with a ``k x k`` kernel, followed by sum pooling of the
  spikes over ``conv_pool x conv_pool`` windows (trailing rows/columns that do not fill a window
  are dropped). The kernel is stored as the 2-D matrix ``W`` (C_out, C_in*k*k) (the row of output
  channel o is ``kernel[o, c, i, j]`` flattened in (c, i, j) order), so the convolution is
  ``patches(s_in) W^T`` with ``patches`` the (C_in*k*k)-vector of each receptive field: a weight
  perturbation ``E = s a b^T`` adds ``s * (patches b) a^T``, i.e. for each rank component j a
  single-output-channel convolution with kernel ``b_j`` scaled per output channel by ``a_j``;
  no per-member kernel is formed. Pooled maps are flattened in (y, x, channel) order.

* **Read-out** (non-spiking leaky integrator) over the last hidden layer's spikes::

      u[t]   = beta_out * u[t-1] + W_out s[t] + b_out      (beta_out = readout_beta, default 0)
      logits = mean_t u[t]            readout="mean" (default)
      logits = max_t u[t]             readout="max"

  or, with ``readout="spike_count"``, a LIF output layer (the hidden layers' ``beta``,
  ``threshold`` and reset) whose logits are its spike counts ``sum_t s_out[t]``.

Layers are evaluated one after another over the whole time window: a layer's input currents for
all T steps are one matmul (through :func:`~eggroll_snn.perturbation.perturbed_linear`, so a
low-rank perturbation costs only its rank-r term), then a ``lax.scan`` over time integrates them
(the recurrent term, which needs the previous step's spikes, inside the scan). This equals the
step-by-step network exactly because nothing flows back from a later layer.

Shapes: inputs ``(B, T, input_size)`` (frames flattened to ``P*H*W`` per bin), logits
``(B, num_classes)``. Parameters are the plain pytree
``{"layers": [{"weight": (out, in), "bias": (out,)}, ..., read-out]}`` with optional per-neuron
``"beta"`` / ``"threshold"`` vectors (out,) when they are learned and a ``"recurrent"`` (out, out)
weight in each dense hidden layer of a recurrent network.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import jax
import jax.numpy as jnp

from eggroll_snn import fixed_point as fixed_point_network
from eggroll_snn.conv import patches, pooled_shapes, sum_pool
from eggroll_snn.errors import ConfigError
from eggroll_snn.perturbation import perturbed_linear, perturbed_vector

RESET_MODES = ("subtract", "zero")
READOUT_MODES = ("mean", "max", "spike_count")
COMPUTE_DTYPES = ("float32", "bfloat16")
#: Learned thresholds are clipped to at least this value so a neuron cannot fire on zero input
#: through a collapsed threshold.
MIN_THRESHOLD = 1e-3


@dataclass(frozen=True)
class NetworkConfig:
    """Static description of the network (hashable, so it can be a ``jit`` static argument).

    Attributes:
      input_size: inputs per time bin (``P*H*W`` of the frames, e.g. 2 * 34 * 34 = 2312).
      hidden_sizes: LIF neurons per hidden layer, input side first.
      num_classes: read-out units (logits).
      beta: membrane leak per time bin of the LIF layers, in [0, 1] (initial value when learned).
      threshold: firing threshold theta > 0 of the LIF layers (initial value when learned).
      reset: ``"subtract"`` (v -= theta on a spike) or ``"zero"`` (v = 0 on a spike).
      readout: ``"mean"`` or ``"max"`` of the read-out membrane over time.
      readout_beta: leak of the read-out integrator, in [0, 1]; the default 0 keeps no memory
        (``u[t] = W_out s[t] + b_out``), so the NIR export is an Affine read-out with no LI node.
      learn_beta: give every layer (read-out included) a per-neuron ``"beta"`` parameter.
      learn_threshold: give every LIF layer a per-neuron ``"threshold"`` parameter.
      init_gain: weights start as ``N(0, (init_gain / sqrt(fan_in))^2)``; see :func:`init_params`.
      compute_dtype: ``"float32"`` or ``"bfloat16"``: dtype of the matmuls (membranes stay float32).
      input_shape: ``(P, H, W)`` of one time bin (``P*H*W == input_size``); needed by conv blocks.
      conv_channels: output channels of each convolutional LIF block, input side first (empty:
        a dense network).
      conv_kernel: side k of the square kernels.
      conv_stride: stride of the convolutions.
      conv_pool: side of the sum-pooling window after each block (1: no pooling).
      recurrent: give every dense hidden LIF layer a recurrent weight ``V`` (out, out), starting at 0.
      fixed_point: ``None`` (float neurons), or a :class:`eggroll_snn.fixed_point.FixedPointSpec`:
        :func:`forward` then runs the integer network of :mod:`eggroll_snn.fixed_point`.
    """

    input_size: int
    hidden_sizes: tuple[int, ...] = (128,)
    num_classes: int = 10
    beta: float = 0.9
    threshold: float = 1.0
    reset: str = "subtract"
    readout: str = "mean"
    readout_beta: float = 0.0
    learn_beta: bool = False
    learn_threshold: bool = False
    init_gain: float = 1.0
    compute_dtype: str = "float32"
    input_shape: tuple[int, ...] | None = None
    conv_channels: tuple[int, ...] = ()
    conv_kernel: int = 3
    conv_stride: int = 1
    conv_pool: int = 2
    recurrent: bool = False
    fixed_point: fixed_point_network.FixedPointSpec | None = None  # fixed-point hook (issue 14)

    def __post_init__(self):
        # Lists from TOML or argparse become tuples so the config stays hashable.
        object.__setattr__(self, "hidden_sizes", tuple(self.hidden_sizes))
        object.__setattr__(self, "conv_channels", tuple(self.conv_channels))
        if self.input_shape is not None:
            object.__setattr__(self, "input_shape", tuple(int(size) for size in self.input_shape))
            if len(self.input_shape) != 3 or math.prod(self.input_shape) != self.input_size:
                raise ConfigError(
                    f"network input_shape={self.input_shape} must be (P, H, W) with P*H*W = input_size={self.input_size}"
                )
        for name in ("conv_kernel", "conv_stride", "conv_pool"):
            _require_positive_int(name, getattr(self, name))
        for index, channels in enumerate(self.conv_channels):
            _require_positive_int(f"conv_channels[{index}]", channels)
        if self.conv_channels:
            if self.input_shape is None:
                raise ConfigError("convolutional blocks (network.conv_channels) need the input_shape (P, H, W) of a frame")
            self.conv_shapes  # raises on a map that the blocks shrink to nothing
        _require_positive_int("input_size", self.input_size)
        _require_positive_int("num_classes", self.num_classes)
        for index, size in enumerate(self.hidden_sizes):
            _require_positive_int(f"hidden_sizes[{index}]", size)
        for name in ("beta", "readout_beta"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ConfigError(f"network option {name}={value!r} is outside [0, 1]; a leak factor per time bin must lie in [0, 1]")
        if not self.threshold > 0:
            raise ConfigError(f"network option threshold={self.threshold!r} must be > 0")
        if not self.init_gain > 0:
            raise ConfigError(f"network option init_gain={self.init_gain!r} must be > 0")
        for name, allowed in (("reset", RESET_MODES), ("readout", READOUT_MODES), ("compute_dtype", COMPUTE_DTYPES)):
            value = getattr(self, name)
            if value not in allowed:
                raise ConfigError(f"network option {name}={value!r} is not one of {', '.join(allowed)}")

    @property
    def conv_shapes(self) -> tuple[tuple[int, int, int], ...]:
        """``(H, W, C)`` of each conv block's pooled output, input side first."""
        if not self.conv_channels:
            return ()
        return pooled_shapes(self.input_shape, tuple(self.conv_channels), self.conv_kernel, self.conv_stride, self.conv_pool)

    @property
    def weight_shapes(self) -> tuple[tuple[int, int], ...]:
        """``(out, in)`` of every weight matrix: each layer's (a conv kernel as (C_out, C_in*k*k)), read-out
        last, then the recurrent weights (out, out) of a recurrent network's dense hidden layers."""
        shapes, fan_in = [], self.input_size
        channels_in = self.input_shape[0] if self.input_shape is not None else None
        for (height, width, channels) in self.conv_shapes:
            shapes.append((channels, channels_in * self.conv_kernel**2))
            channels_in, fan_in = channels, height * width * channels
        for size in (*self.hidden_sizes, self.num_classes):
            shapes.append((size, fan_in))
            fan_in = size
        if self.recurrent:
            shapes.extend((size, size) for size in self.hidden_sizes)
        return tuple(shapes)

    @property
    def num_lif_layers(self) -> int:
        """Spiking layers before the read-out (conv blocks and dense hidden layers)."""
        return len(self.conv_channels) + len(self.hidden_sizes)

    @property
    def layer_sizes(self) -> tuple[int, ...]:
        """``(input_size, *hidden_sizes, num_classes)`` of a dense network."""
        return (self.input_size, *self.hidden_sizes, self.num_classes)


def _require_positive_int(name: str, value) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ConfigError(f"network option {name}={value!r} must be a positive integer")


def init_params(key: jax.Array, config: NetworkConfig) -> dict:
    """Initial parameters: ``W ~ N(0, (init_gain / sqrt(fan_in))^2)``, ``b = 0``.

    Why this scale: with ``W`` zero-mean of variance ``g^2 / n`` the input current of a neuron has
    standard deviation ``g * ||s_in|| / sqrt(n)``. For N-MNIST frames (10 bins over 300 ms,
    2 x 34 x 34 counts, 0..3 events per pixel and bin, ``||s_in|| ~ 30``) the default ``g = 1``
    gives currents of std ~ 0.6 theta; integrated with ``beta = 0.9`` about 12 % of the hidden
    neurons fire per bin and about half fire at least once per sample (measured on the real
    subset), with initial logits of std ~ 1 through the same rule in the read-out. That is
    enough activity for weight perturbations to change the output, without saturating the
    layer. Learned ``beta``/``threshold`` start at the config values.

    Args:
      key: a JAX PRNG key.
      config: the network description.

    Returns:
      ``{"layers": [{"weight": (out, in), "bias": (out,)[, "beta": (out,)][, "threshold": (out,)]}, ...]}``
      float32; the last layer is the read-out.
    """
    shapes = config.weight_shapes[: config.num_lif_layers + 1]  # the recurrent weights start at zero
    keys = jax.random.split(key, len(shapes))
    layers = []
    for index, (fan_out, fan_in) in enumerate(shapes):
        is_readout = index == len(shapes) - 1
        std = config.init_gain / math.sqrt(fan_in)
        layer = {
            "weight": std * jax.random.normal(keys[index], (fan_out, fan_in), jnp.float32),
            "bias": jnp.zeros((fan_out,), jnp.float32),
        }
        if config.learn_beta:
            layer["beta"] = jnp.full((fan_out,), config.readout_beta if is_readout and config.readout != "spike_count" else config.beta, jnp.float32)
        if config.learn_threshold and (not is_readout or config.readout == "spike_count"):
            layer["threshold"] = jnp.full((fan_out,), config.threshold, jnp.float32)
        if config.recurrent and len(config.conv_channels) <= index < config.num_lif_layers:
            layer["recurrent"] = jnp.zeros((fan_out, fan_out), jnp.float32)
        layers.append(layer)
    return {"layers": layers}


def _layer_constant(layer: dict, layer_perturbation: dict | None, name: str, default: float) -> jax.Array:
    """A (possibly learned and perturbed) per-neuron constant; ``default`` when not learned."""
    if name not in layer:
        return jnp.asarray(default, jnp.float32)
    return perturbed_vector(layer[name], None if layer_perturbation is None else layer_perturbation.get(name))


def _currents(layer: dict, layer_perturbation: dict | None, inputs: jax.Array, dtype) -> jax.Array:
    """``inputs (..., in) @ (W + E)^T + b + e_b`` -> float32 ``(..., out)``, all time steps in one matmul."""
    weight_perturbation = None if layer_perturbation is None else layer_perturbation.get("weight")
    if dtype != jnp.float32:
        weight_perturbation = jax.tree_util.tree_map(lambda leaf: leaf.astype(dtype), weight_perturbation)
    projected = perturbed_linear(inputs.astype(dtype), layer["weight"].astype(dtype), weight_perturbation)
    bias = perturbed_vector(layer["bias"], None if layer_perturbation is None else layer_perturbation.get("bias"))
    return projected.astype(jnp.float32) + bias


def _lif_over_time(
    currents: jax.Array, beta, threshold, reset: str, record: bool, spike_fn=None, feedback=None
) -> tuple[jax.Array, jax.Array | None]:
    """Integrate ``currents`` (T, B, H) through LIF neurons.

    Returns the spikes (T, B, H) and, with ``record``, the post-reset membranes (T, B, H) (else
    ``None``: stacking an unused trajectory costs a full write of it per member). ``spike_fn``:
    see :func:`forward`. ``feedback(s[t-1]) -> (B, H)``: the recurrent current, or ``None``.
    """

    def integrate(v, current):
        v = beta * v + current
        spikes = (v >= threshold).astype(current.dtype) if spike_fn is None else spike_fn(v, threshold)
        if reset == "subtract":
            v = v - threshold * spikes
        else:
            v = v * (1.0 - spikes)
        return v, (spikes, v if record else None)

    def recurrent_step(carry, current):  # the layer's own previous spikes also in the carry
        v, (spikes, membrane) = integrate(carry[0], current + feedback(carry[1]))
        return (v, spikes), (spikes, membrane)

    zeros = jnp.zeros(currents.shape[1:], currents.dtype)
    if feedback is None:
        _, (spikes, membranes) = jax.lax.scan(integrate, zeros, currents)
    else:
        _, (spikes, membranes) = jax.lax.scan(recurrent_step, (zeros, zeros), currents)
    return spikes, membranes


def _recurrent_feedback(layer: dict, layer_perturbation: dict | None, dtype):
    """``s -> s (V + E_V)^T`` of a recurrent layer, or ``None`` for a feed-forward one."""
    if "recurrent" not in layer:
        return None
    perturbation = None if layer_perturbation is None else layer_perturbation.get("recurrent")
    if dtype != jnp.float32:
        perturbation = jax.tree_util.tree_map(lambda leaf: leaf.astype(dtype), perturbation)
    weight = layer["recurrent"].astype(dtype)
    return lambda spikes: perturbed_linear(spikes.astype(dtype), weight, perturbation).astype(jnp.float32)


def _leaky_integrate(currents: jax.Array, beta) -> jax.Array:
    """``u[t] = beta u[t-1] + currents[t]`` over (T, B, C); returns ``u`` (T, B, C)."""

    def step(u, current):
        u = beta * u + current
        return u, u

    _, membranes = jax.lax.scan(step, jnp.zeros(currents.shape[1:], currents.dtype), currents)
    return membranes


def first_layer_inputs(inputs: jax.Array, config: NetworkConfig) -> jax.Array:
    """What the first weight multiplies: ``inputs`` (B, T, input_size) themselves, or for a conv
    network their receptive fields (B, T, H', W', P*k*k) (frames reshaped from (P, H, W))."""
    if not config.conv_channels:
        return inputs
    frames = inputs.reshape(inputs.shape[:2] + config.input_shape)  # (B, T, P, H, W)
    return patches(jnp.moveaxis(frames, 2, -1), config.conv_kernel, config.conv_stride)


def _run(
    params: dict, inputs: jax.Array, config: NetworkConfig, perturbation: dict | None, record: bool, spike_fn=None,
    first_currents: jax.Array | None = None,
):
    """Time-major core of :func:`forward`: logits, spikes and (with ``record``) membranes ``(T, B, .)``.

    ``first_currents``: the first layer's input currents ``(B, T, out)`` (``(B, T, H', W', C)`` for
    a conv network; perturbation included), computed by the caller; ``None`` computes them from
    ``inputs``.
    """
    if inputs.ndim != 3 or inputs.shape[-1] != config.input_size:
        raise ConfigError(
            f"network inputs have shape {inputs.shape}; expected (batch, time_bins, input_size={config.input_size})"
        )
    dtype = jnp.dtype(config.compute_dtype)
    layers = params["layers"]
    layer_perturbations = [None] * len(layers) if perturbation is None else perturbation["layers"]
    num_conv = len(config.conv_channels)
    # The first projection runs on the shared batch-major inputs (a transpose of the (B, T, input_size)
    # inputs would be the largest copy of all); its per-member (B, T, H) result is made time-major.
    activity = None
    spikes_per_layer, membranes_per_layer = [], []

    def layer_currents(index, layer, layer_perturbation):
        if activity is None:
            if first_currents is not None:
                batch_major = first_currents
            else:
                batch_major = _currents(layer, layer_perturbation, first_layer_inputs(inputs, config), dtype)
            return jnp.swapaxes(batch_major, 0, 1)
        if index < num_conv:  # a conv block after a conv block
            return _currents(layer, layer_perturbation, patches(activity, config.conv_kernel, config.conv_stride), dtype)
        flat = activity.reshape(activity.shape[:2] + (-1,)) if index == num_conv and num_conv else activity
        return _currents(layer, layer_perturbation, flat, dtype)

    def lif(layer, layer_perturbation, currents):
        beta = jnp.clip(_layer_constant(layer, layer_perturbation, "beta", config.beta), 0.0, 1.0)
        threshold = jnp.maximum(
            _layer_constant(layer, layer_perturbation, "threshold", config.threshold), MIN_THRESHOLD
        )
        feedback = _recurrent_feedback(layer, layer_perturbation, dtype)
        return _lif_over_time(currents, beta, threshold, config.reset, record, spike_fn, feedback)

    for index, (layer, layer_perturbation) in enumerate(zip(layers[:-1], layer_perturbations[:-1])):
        spikes, membranes = lif(layer, layer_perturbation, layer_currents(index, layer, layer_perturbation))
        activity = sum_pool(spikes, config.conv_pool) if index < num_conv else spikes
        spikes_per_layer.append(spikes)
        membranes_per_layer.append(membranes)
    readout, readout_perturbation = layers[-1], layer_perturbations[-1]
    currents = layer_currents(len(layers) - 1, readout, readout_perturbation)
    if config.readout == "spike_count":
        output_spikes, readout_membrane = lif(readout, readout_perturbation, currents)
        logits = output_spikes.sum(axis=0)
        if readout_membrane is None:
            readout_membrane = output_spikes
    else:
        readout_beta = jnp.clip(_layer_constant(readout, readout_perturbation, "beta", config.readout_beta), 0.0, 1.0)
        readout_membrane = _leaky_integrate(currents, readout_beta)
        logits = readout_membrane.mean(axis=0) if config.readout == "mean" else readout_membrane.max(axis=0)
    return logits, spikes_per_layer, membranes_per_layer, readout_membrane


def first_layer_currents(layer: dict, layer_perturbation: dict | None, inputs: jax.Array, config: NetworkConfig) -> jax.Array:
    """The first layer's input currents ``(B, T, out)`` (``(B, T, H', W', C)`` for a conv network)
    for inputs ``(B, T, input_size)``: ``x (W + E)^T + b + e_b`` of :func:`first_layer_inputs`."""
    return _currents(layer, layer_perturbation, first_layer_inputs(inputs, config), jnp.dtype(config.compute_dtype))


def forward(
    params: dict, inputs: jax.Array, config: NetworkConfig, perturbation: dict | None = None, spike_fn=None,
    first_currents: jax.Array | None = None,
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
        :mod:`eggroll_snn.bptt`).
      first_currents: the first layer's currents, perturbation included, when the caller has
        formed them (:func:`first_layer_currents`); ``None`` forms them from ``inputs``.

    Returns:
      ``(B, num_classes)`` float32 logits.
    """
    if config.fixed_point is not None:  # fixed-point hook (issue 14): the integer network
        return fixed_point_network.forward(params, inputs, config.fixed_point, perturbation)
    return _run(params, inputs, config, perturbation, record=False, spike_fn=spike_fn, first_currents=first_currents)[0]


def forward_with_state(params: dict, inputs: jax.Array, config: NetworkConfig, perturbation: dict | None = None) -> dict:
    """:func:`forward` plus the state trajectories, batch-major.

    Returns:
      dict with ``"logits"`` (B, C); ``"spikes"`` and ``"membranes"``: lists with one
      ``(B, T, H_l)`` array per hidden layer (membranes after reset, ``v'[t]`` in the module
      docstring); ``"readout_membrane"`` (B, T, C), ``u[t]``. A fixed-point network returns
      :func:`eggroll_snn.fixed_point.forward_with_state` (integer trajectories).
    """
    if config.fixed_point is not None:  # fixed-point hook (issue 14)
        return fixed_point_network.forward_with_state(params, inputs, config.fixed_point, perturbation)
    logits, spikes, membranes, readout_membrane = _run(params, inputs, config, perturbation, record=True)
    batch_major = lambda array: jnp.swapaxes(array, 0, 1)  # noqa: E731
    return {
        "logits": logits,
        "spikes": [batch_major(array) for array in spikes],
        "membranes": [batch_major(array) for array in membranes],
        "readout_membrane": batch_major(readout_membrane),
    }


__all__ = [
    "NetworkConfig",
    "init_params",
    "forward",
    "first_layer_inputs",
    "first_layer_currents",
    "forward_with_state",
    "RESET_MODES",
    "READOUT_MODES",
    "MIN_THRESHOLD",
]
