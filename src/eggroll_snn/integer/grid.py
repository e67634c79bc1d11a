"""Integer weights: float master weights in the strategy, an integer grid in the network.

With ``network.weights = "int8"`` (or ``"int4"``) the strategy keeps float32 *master* weights and
the network always runs on their projection onto a per-layer integer grid::

    Q(W) = clip(round(W / s), -q_max, q_max) * s         q_max = 127 (int8), 7 (int4)
    Q(b) = round(b / s) * s                              bias: same step, int32, not clipped

``round`` is round-half-to-even. The deployed form of a layer is ``W_int = Q(W) / s`` (integers in
``[-q_max, q_max]``), ``b_int = Q(b) / s`` (int32) and the float32 scale ``s``; ``Q(W)`` equals
``W_int * s`` exactly in float32, and ``Q(Q(W)) = Q(W)`` for the same ``s``.

**Scale** (one per layer, recomputed from the master weights whenever the projection is taken,
i.e. once per generation and for every evaluation)::

    read-out layer:               s = max|W| / q_max
    hidden LIF layer, threshold:  k = clip(floor(theta * q_max / max|W| - 1/2), 0, 2**24),
                                  s = theta / (k + 1/2)

so the largest weight lands on (or just inside) ``+-q_max`` and nothing is clipped when the scale
is set. In a hidden layer the threshold is then ``k + 1/2`` weight steps, half-way between two
grid points. With integer inputs (event counts) a membrane on which no leak or reset has acted
yet (e.g. every membrane of the first time bin) is a whole number of steps,
``n * s = s (W_int x + b_int)``, so it can never tie with the threshold and float rounding cannot
flip its spike; an implementation that keeps its membrane in whole steps fires when
``n >= k + 1``. (A threshold of exactly
``k`` steps made such ties common, e.g. int4 with k = 3, and the float32 result of a tie then
depended on the order of summation.) With learned per-neuron thresholds no single ``k`` exists and
the hidden layers use ``max|W| / q_max`` too.

*Why per layer, not per output row*: one scale keeps every neuron of a layer in the same membrane
unit, so one threshold ``k + 1/2`` serves the whole layer, and a chip stores one number per
layer. *Why recomputed*: the weights grow during training (on the real N-MNIST subset, 300
generations at the default settings take the first layer from std 0.042 / max 0.17 to std 0.18 /
max 0.75), so a scale fixed at initialisation would either clip most of the trained range or need
a guessed headroom; recomputing costs one max-reduction per weight matrix per generation and never
clips. The gradient estimate ignores the scale's dependence on ``W`` (straight-through, below).

**Population members** are evaluated at ``Q(W) + sigma E_i``: the low-rank perturbation stays a
float correction added to the shared integer map, ``x Q(W)^T + sigma (x B) A^T``. Projecting each
member onto the grid, ``Q(W + sigma E_i)``, would need every member's dense m x n matrix (which
EGGROLL exists to avoid) and, when ``sigma`` is below the grid step (int4 at the end of a
real-subset run: ``s ~ 0.1`` against ``sigma = 0.05``), would round most perturbations away and
leave no fitness signal. The members
only probe the fitness around ``Q(W)``; only ``Q(W)`` is ever deployed. The strategy's update
``g = 1/(N sigma) sum_i f~_i E_i`` estimates the gradient of the smoothed fitness at ``Q(W)`` and
is applied to the float master ``W`` (the straight-through estimator of quantisation-aware
training), so updates smaller than one grid step accumulate instead of vanishing. Integer
perturbations with a sign update (no float master) were not chosen: they would need grid-valued
noise in the strategies and lose every update smaller than one step, and the deployed model is
the same kind of object either way.

Validation, the test evaluation, ``model.npz`` and the NIR export all use ``Q(W)`` exactly.
Learned per-neuron ``beta``/``threshold`` vectors stay float32. The surrogate-gradient method
(``bptt``) steps the float weights without the grid; its validation and saved model are still
projected (post-training quantisation with model selection on the grid).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from eggroll_snn.errors import CheckpointError, ConfigError

#: ``network.weights`` values and their largest integer magnitude (None: no grid).
WEIGHT_FORMATS: dict[str, int | None] = {"float32": None, "int8": 127, "int4": 7}
#: The numpy dtype the integers are stored in (numpy has no 4-bit type: int4 values use int8).
INTEGER_DTYPES = {"int8": np.int8, "int4": np.int8}
#: Biases are accumulator-width integers: stored as int32 and never clipped.
BIAS_DTYPE = np.int32
#: Largest whole part ``k`` of a threshold in weight steps: float32 counts exactly up to 2**24.
MAX_THRESHOLD_STEPS = 2**24
REPRESENTATION = (
    "per layer: weight = weight_int * scale with integer weight_int in [-q_max, q_max]; "
    "bias = bias_int * scale with integer bias_int (int32); exact in float32"
)
SCALE_RULE = (
    "recomputed from the float master weights every generation: hidden LIF layer with a fixed "
    "threshold: scale = threshold / (k + 1/2), k = clip(floor(threshold * q_max / max|W| - 1/2), 0, 2**24) "
    "(threshold = k + 1/2 weight steps); read-out and learned-threshold layers: scale = max|W| / q_max"
)


def check_weight_format(weights: str, option: str = "network.weights") -> int | None:
    """``q_max`` of the format ``weights`` (None for float32).

    Raises:
      ConfigError: ``weights`` is not one of :data:`WEIGHT_FORMATS`, naming ``option``.
    """
    if not isinstance(weights, str) or weights not in WEIGHT_FORMATS:
        raise ConfigError(
            f"option {option} = {weights!r} is not a weight format: choose one of {', '.join(WEIGHT_FORMATS)}"
        )
    return WEIGHT_FORMATS[weights]


@dataclasses.dataclass(frozen=True)
class WeightGrid:
    """Static description of the grid of a network's weights (hashable; safe to close over in jit).

    Attributes:
      weights: ``"float32"`` (no grid: every method is the identity), ``"int8"`` or ``"int4"``.
      thresholds: per layer (input side first, read-out last), the fixed firing threshold that the
        layer's scale is snapped to (``threshold = (k + 1/2) * scale``), or None (read-out, learned
        thresholds).
    """

    weights: str = "float32"
    thresholds: tuple[float | None, ...] = ()

    def __post_init__(self):
        check_weight_format(self.weights)
        object.__setattr__(self, "thresholds", tuple(None if t is None else float(t) for t in self.thresholds))
        for threshold in self.thresholds:
            if threshold is not None and not (np.isfinite(threshold) and threshold > 0):
                raise ConfigError(f"WeightGrid threshold {threshold!r} must be a positive finite number")

    @classmethod
    def for_network(cls, weights: str, network_config) -> "WeightGrid":
        """The grid of ``network_config``'s layers (an :class:`eggroll_snn.network.NetworkConfig`)."""
        hidden = None if network_config.learn_threshold else network_config.threshold
        return cls(weights, (hidden,) * network_config.num_lif_layers + (None,))

    @property
    def q_max(self) -> int | None:
        """Largest integer magnitude of a weight (None for float32)."""
        return WEIGHT_FORMATS[self.weights]

    @property
    def is_float(self) -> bool:
        return self.q_max is None

    def _layers(self, params: Mapping[str, Any]) -> list:
        layers = list(params["layers"])
        if len(layers) != len(self.thresholds):
            raise ConfigError(
                f"the weight grid describes {len(self.thresholds)} layers but the parameters have {len(layers)}; "
                "build it with WeightGrid.for_network from the same network config"
            )
        return layers

    def scales(self, params: Mapping[str, Any]) -> tuple[jax.Array, ...]:
        """Per-layer float32 scalar scales ``s`` of ``params`` (see the module docstring); jit-able."""
        if self.is_float:
            raise ConfigError("float32 weights have no grid and no scales")
        scales = []
        for layer, threshold in zip(self._layers(params), self.thresholds):
            absmax = jnp.max(jnp.abs(jnp.asarray(layer["weight"], jnp.float32)))
            # Any scale holds an all-zero matrix exactly; that of max|W| = 1 keeps the bias grid sane.
            absmax = jnp.where(absmax > 0, absmax, 1.0)
            raw = absmax / self.q_max
            if threshold is None:
                scales.append(raw)
            else:
                whole = jnp.clip(jnp.floor(threshold / raw - 0.5), 0, MAX_THRESHOLD_STEPS)
                scales.append(jnp.float32(threshold) / (whole + 0.5))
        return tuple(scales)

    def project(self, params: Mapping[str, Any], scales: Sequence[Any]) -> dict:
        """``params`` with every weight and bias replaced by ``Q(W)``, ``Q(b)`` on the given scales.

        Other leaves (learned ``beta``/``threshold``) are unchanged. Idempotent:
        ``project(project(p, s), s) == project(p, s)`` exactly.
        """
        if self.is_float:
            return params
        layers = []
        for layer, scale in zip(self._layers(params), scales, strict=True):
            scale = jnp.asarray(scale, jnp.float32)
            projected = dict(layer)
            projected["weight"] = jnp.clip(jnp.round(layer["weight"] / scale), -self.q_max, self.q_max) * scale
            projected["bias"] = jnp.round(layer["bias"] / scale) * scale
            layers.append(projected)
        return {**params, "layers": layers}

    def quantize(self, params: Mapping[str, Any]) -> tuple[Any, tuple[jax.Array, ...] | None]:
        """``(Q(params), scales)`` with the scales of ``params`` itself; ``(params, None)`` for float32."""
        if self.is_float:
            return params, None
        scales = self.scales(params)
        return self.project(params, scales), scales

    def apply(self, params: Mapping[str, Any]) -> Any:
        """``Q(params)``: what the network runs on (``params`` itself for float32)."""
        return self.quantize(params)[0]


def integer_form(params: Mapping[str, Any], scales: Sequence[Any], weights: str) -> list[dict]:
    """The integer arrays of on-grid parameters, checked exactly.

    Args:
      params: parameters whose weights and biases are on the grid of ``scales`` (as
        :meth:`WeightGrid.project` leaves them).
      scales: per-layer scales (float32 values).
      weights: the format (``"int8"`` or ``"int4"``).

    Returns:
      One dict per layer: ``"weight"`` (out, in) integers in ``[-q_max, q_max]`` (int8),
      ``"bias"`` (out,) int32, ``"scale"`` numpy float32; ``weight == weight_int * scale`` exactly.

    Raises:
      CheckpointError: a weight or bias is not an integer multiple of its layer's scale, or out of
        range (the parameters are not on this grid).
    """
    q_max = check_weight_format(weights)
    if q_max is None:
        raise ConfigError("float32 weights have no integer form")
    layers = list(params["layers"])
    if len(layers) != len(scales):
        raise CheckpointError(f"{len(scales)} weight scales recorded for {len(layers)} layers")
    result = []
    for index, (layer, scale) in enumerate(zip(layers, scales)):
        scale = np.float32(scale)
        if not (np.isfinite(scale) and scale > 0):
            raise CheckpointError(f"layer {index}: weight scale {scale!r} is not a positive finite number")
        integers = {}
        for name, dtype, limit in (("weight", INTEGER_DTYPES[weights], q_max), ("bias", BIAS_DTYPE, None)):
            values = np.asarray(layer[name], np.float32)
            rounded = np.rint(values / scale)
            if not np.array_equal(rounded.astype(np.float32) * scale, values):
                worst = float(np.max(np.abs(values / scale - rounded)))
                raise CheckpointError(
                    f"layer {index} {name}: not integer multiples of the scale {float(scale)!r} (off by up to "
                    f"{worst:.3g} steps); these parameters are not on their recorded {weights} grid"
                )
            bound = limit if limit is not None else np.iinfo(dtype).max
            if rounded.size and np.max(np.abs(rounded)) > bound:
                raise CheckpointError(
                    f"layer {index} {name}: integer values up to {int(np.max(np.abs(rounded)))} exceed "
                    f"{bound}, the range of {weights if limit is not None else np.dtype(dtype).name}"
                )
            integers[name] = rounded.astype(dtype)
        result.append({**integers, "scale": scale})
    return result


def describe(grid: WeightGrid, params: Mapping[str, Any], scales: Sequence[Any]) -> dict:
    """The JSON record of the integer form (what ``model.json`` stores under ``"weights"``).

    Returns:
      ``{"format", "q_max", "integer_dtype", "bias_dtype", "representation", "scale_rule",
      "layers": [{"scale", "threshold", "threshold_steps", "integer_spike_level", "weight_int_min",
      "weight_int_max", "bias_int_max_abs"}, ...]}``; ``scale`` is the float32 value as a JSON
      number (exact); ``threshold_steps = threshold / scale = k + 1/2`` and ``integer_spike_level
      = k + 1`` for hidden layers with a fixed threshold (None otherwise).
    """
    layers = []
    for threshold, layer in zip(grid.thresholds, integer_form(params, scales, grid.weights)):
        scale = float(layer["scale"])
        layers.append(
            {
                "scale": scale,
                "threshold": threshold,
                "threshold_steps": None if threshold is None else math.floor(threshold / scale) + 0.5,
                "integer_spike_level": None if threshold is None else math.floor(threshold / scale) + 1,
                "weight_int_min": int(layer["weight"].min()),
                "weight_int_max": int(layer["weight"].max()),
                "bias_int_max_abs": int(np.abs(layer["bias"]).max()) if layer["bias"].size else 0,
            }
        )
    return {
        "format": grid.weights,
        "q_max": grid.q_max,
        "integer_dtype": np.dtype(INTEGER_DTYPES[grid.weights]).name,
        "bias_dtype": np.dtype(BIAS_DTYPE).name,
        "representation": REPRESENTATION,
        "scale_rule": SCALE_RULE,
        "layers": layers,
    }


def model_on_grid(grid: WeightGrid, params: Mapping[str, Any]) -> tuple[Any, dict]:
    """The model to save: ``(Q(params) as numpy, {"weights": describe(...)})``; ``(params, {})`` for float32."""
    if grid.is_float:
        return params, {}
    projected, scales = grid.quantize(params)
    projected = jax.tree_util.tree_map(np.asarray, projected)
    return projected, {"weights": describe(grid, projected, [np.float32(scale) for scale in scales])}


def integer_tree(params: Mapping[str, Any], record: Mapping[str, Any], where: str = "model") -> dict:
    """``{"layers": [{"weight": int8 (out, in), "bias": int32 (out,), "scale": float32 ()}, ...]}``.

    The integer arrays of on-grid ``params`` described by ``record`` (a :func:`describe` record),
    for integer hardware; ``weight * scale`` and ``bias * scale`` give ``params`` exactly.
    """
    weights, scales = recorded_scales(record, where)
    return {"layers": [dict(layer) for layer in integer_form(params, scales, weights)]}


def recorded_scales(record: Mapping[str, Any], where: str) -> tuple[str, list[np.float32]]:
    """``(format, per-layer float32 scales)`` from a :func:`describe` record (e.g. read from ``model.json``).

    Raises:
      CheckpointError: the record is malformed (``where`` names its file).
    """
    try:
        weights = record["format"]
        check_weight_format(weights, f"{where}: weights.format")
        scales = [np.float32(layer["scale"]) for layer in record["layers"]]
    except (KeyError, TypeError, ValueError) as error:
        raise CheckpointError(f"{where}: malformed integer-weight record ({type(error).__name__}: {error})") from None
    return weights, scales


def nir_annotations(params: Mapping[str, Any], record: Mapping[str, Any], where: str = "model") -> tuple[list[dict], dict]:
    """NIR metadata of an integer-weight model: one dict per Affine node, and graph-level entries.

    Each Affine node's metadata holds ``weight_int`` (int8 array), ``bias_int`` (int32 array) and
    ``scale`` (float32) with ``Affine.weight == weight_int * scale`` and
    ``Affine.bias == bias_int * scale`` exactly; the graph records the format, ``q_max``, the scales
    and a statement of that equality. Verified here (raises CheckpointError when off the grid).
    """
    weights, scales = recorded_scales(record, where)
    layers = integer_form(params, scales, weights)
    nodes = [
        {"weight_format": weights, "weight_int": layer["weight"], "bias_int": layer["bias"], "scale": layer["scale"]}
        for layer in layers
    ]
    levels = [layer.get("integer_spike_level") for layer in record.get("layers", [])]
    graph = {
        "weight_format": weights,
        "weight_q_max": int(WEIGHT_FORMATS[weights]),
        "weight_integer_dtype": np.dtype(INTEGER_DTYPES[weights]).name,
        "weight_scales": np.asarray(scales, np.float32),
        "weight_representation": (
            "every Affine node's weight = metadata['weight_int'] * metadata['scale'] and bias = "
            "metadata['bias_int'] * metadata['scale'], exactly in float32; weight / scale is integral "
            "and within [-weight_q_max, weight_q_max]"
        ),
        # An integer membrane n (in steps) spikes when n >= level; -1: no such level (the
        # read-out, learned thresholds).
        "integer_spike_levels": np.asarray([-1 if level is None else int(level) for level in levels], np.int64),
    }
    return nodes, graph


__all__ = [
    "WEIGHT_FORMATS",
    "INTEGER_DTYPES",
    "BIAS_DTYPE",
    "WeightGrid",
    "check_weight_format",
    "integer_form",
    "describe",
    "model_on_grid",
    "integer_tree",
    "recorded_scales",
    "nir_annotations",
]
