"""The network's options, declared once: :class:`NetworkOptions` (the ``[network]`` section of a
training config) and :class:`NetworkConfig` (those options plus the sizes the data fixes).

Every default and every range of a network option is stated here and nowhere else: the config
file's ``[network]`` section *is* :class:`NetworkOptions`, and the library's
:class:`NetworkConfig` extends it with the input shape, the number of classes and, for
``neuron = "fixed_point"``, the integer arithmetic. A bad value raises
:class:`~eggroll_snn.errors.ConfigError` naming the option (``network.<name>``).
"""

from __future__ import annotations

import dataclasses
import math
from typing import Literal, Optional

from eggroll_snn.errors import ConfigError
from eggroll_snn.integer.grid import check_weight_format
from eggroll_snn.integer.spec import FixedPointSpec
from eggroll_snn.network.conv import ConvGeometry
from eggroll_snn.network.lif import RESET_MODES
from eggroll_snn.network.readout import READOUT_MODES
from eggroll_snn.options import check, check_choice, is_integer

COMPUTE_DTYPES = ("float32", "bfloat16")
NEURON_MODELS = ("float", "fixed_point")


@dataclasses.dataclass(frozen=True)
class NetworkOptions:
    """The LIF network's options (the ``[network]`` section); equations in :mod:`eggroll_snn.network`.

    Attributes:
      hidden_sizes: neurons per dense hidden LIF layer, input side first (may be empty).
      beta: membrane decay per time bin of the LIF layers, in [0, 1] (initial value when learned).
      threshold: firing threshold theta > 0 of the LIF layers (initial value when learned).
      reset: ``"subtract"`` (v <- v - theta after a spike, keeping the overshoot) or ``"zero"``.
      readout: logits = ``"mean"`` or ``"max"`` over time of the non-spiking read-out membrane, or
        ``"spike_count"``: the spike counts of a LIF output layer.
      readout_beta: decay of the read-out integrator, in [0, 1]; 0 keeps no memory
        (``u[t] = W_out s[t] + b_out``), so the NIR export is an Affine read-out with no LI node.
      learn_beta, learn_threshold: evolve per-neuron beta / theta instead of fixing them.
      init_gain: initial weights are ``N(0, (init_gain / sqrt(fan_in))^2)``.
      compute_dtype: ``"float32"`` or ``"bfloat16"``: dtype of the matmuls (membranes stay float32).
      weights: ``"float32"``, or ``"int8"`` / ``"int4"``: the network runs on its weights and biases
        projected onto a per-layer integer grid (see :mod:`eggroll_snn.integer.grid`).
      conv_channels: output channels of each convolutional LIF block before the dense layers
        (empty: a dense network); conv_kernel, conv_stride, conv_pool: kernel side, stride and
        sum-pooling window of the blocks.
      recurrent: every dense hidden LIF layer also gets its own previous spikes through a
        recurrent weight (out, out) that starts at zero.
      neuron: ``"float"`` (float32 membranes) or ``"fixed_point"``: the integer arithmetic of a
        digital chip (options in the ``[fixed_point]`` section, see :mod:`eggroll_snn.integer`).
    """

    hidden_sizes: tuple[int, ...] = (128,)
    beta: float = 0.9
    threshold: float = 1.0
    reset: Literal["subtract", "zero"] = "subtract"
    readout: Literal["mean", "max", "spike_count"] = "mean"
    readout_beta: float = 0.0
    learn_beta: bool = False
    learn_threshold: bool = False
    init_gain: float = 1.0
    compute_dtype: Literal["float32", "bfloat16"] = "float32"
    weights: Literal["float32", "int8", "int4"] = "float32"
    conv_channels: tuple[int, ...] = ()
    conv_kernel: int = 3
    conv_stride: int = 1
    conv_pool: int = 2
    recurrent: bool = False
    neuron: Literal["float", "fixed_point"] = "float"

    def __post_init__(self) -> None:
        # Lists from TOML or argparse become tuples so the options stay hashable.
        object.__setattr__(self, "hidden_sizes", tuple(self.hidden_sizes))
        object.__setattr__(self, "conv_channels", tuple(self.conv_channels))
        check_weight_format(self.weights, "network.weights")
        for index, size in enumerate(self.hidden_sizes):
            check(is_integer(size) and 1 <= size <= 1_000_000, f"network.hidden_sizes[{index}]", size, "an integer 1..1000000")
        check(0.0 <= self.beta <= 1.0, "network.beta", self.beta, "a decay factor in [0, 1]")
        check(math.isfinite(self.threshold) and self.threshold > 0, "network.threshold", self.threshold, "a positive finite number")
        check(0.0 <= self.readout_beta <= 1.0, "network.readout_beta", self.readout_beta, "a decay factor in [0, 1]")
        check(math.isfinite(self.init_gain) and self.init_gain > 0, "network.init_gain", self.init_gain, "a positive finite number")
        check_choice(self.reset, "network.reset", RESET_MODES)
        check_choice(self.readout, "network.readout", READOUT_MODES)
        check_choice(self.compute_dtype, "network.compute_dtype", COMPUTE_DTYPES)
        check_choice(self.neuron, "network.neuron", NEURON_MODELS)
        for index, channels in enumerate(self.conv_channels):
            check(is_integer(channels) and 1 <= channels <= 4096, f"network.conv_channels[{index}]", channels, "an integer 1..4096")
        for name in ("conv_kernel", "conv_stride", "conv_pool"):
            value = getattr(self, name)
            check(is_integer(value) and 1 <= value <= 34, f"network.{name}", value, "an integer 1..34")
        check(
            not (self.recurrent and self.weights != "float32"), "network.recurrent", self.recurrent,
            "false with integer weights (network.weights = int8/int4 has no grid for recurrent weights yet)",
        )
        check(
            not self.recurrent or len(self.hidden_sizes) > 0, "network.recurrent", self.recurrent,
            "false without dense hidden layers (network.hidden_sizes): only they have recurrent weights",
        )

    def network_config(self, input_shape: tuple[int, int, int], num_classes: int, fixed_point: FixedPointSpec | None = None) -> "NetworkConfig":
        """The :class:`NetworkConfig` of these options for frames of ``input_shape`` (P, H, W) per time bin."""
        options = {field.name: getattr(self, field.name) for field in dataclasses.fields(NetworkOptions)}
        return NetworkConfig(
            **options, input_size=math.prod(input_shape), input_shape=tuple(input_shape), num_classes=num_classes,
            fixed_point=fixed_point,
        )


@dataclasses.dataclass(frozen=True, kw_only=True)
class NetworkConfig(NetworkOptions):
    """Static description of a network: its options and the sizes its data fixes (hashable, so it
    can be a ``jit`` static argument).

    Attributes (besides those of :class:`NetworkOptions`):
      input_size: inputs per time bin (``P*H*W`` of the frames, e.g. 2 * 17 * 17 = 578).
      input_shape: ``(P, H, W)`` of one time bin (``P*H*W == input_size``); needed by conv blocks.
      num_classes: read-out units (logits).
      fixed_point: ``None`` (float neurons), or the :class:`~eggroll_snn.integer.spec.FixedPointSpec`
        of a ``neuron = "fixed_point"`` network: the layers then compute in its integer arithmetic.
    """

    input_size: int
    input_shape: Optional[tuple[int, ...]] = None
    num_classes: int = 10
    fixed_point: Optional[FixedPointSpec] = None

    def __post_init__(self):
        super().__post_init__()
        check(is_integer(self.input_size) and self.input_size >= 1, "network.input_size", self.input_size, "a positive integer")
        check(is_integer(self.num_classes) and self.num_classes >= 1, "network.num_classes", self.num_classes, "a positive integer")
        if self.input_shape is not None:
            object.__setattr__(self, "input_shape", tuple(int(size) for size in self.input_shape))
            if len(self.input_shape) != 3 or math.prod(self.input_shape) != self.input_size:
                raise ConfigError(
                    f"network input_shape={self.input_shape} must be (P, H, W) with P*H*W = input_size={self.input_size}"
                )
        if self.conv_channels:
            if self.input_shape is None:
                raise ConfigError("convolutional blocks (network.conv_channels) need the input_shape (P, H, W) of a frame")
            self.conv_shapes  # raises on a map that the blocks shrink to nothing
        if (self.fixed_point is not None) != (self.neuron == "fixed_point"):
            raise ConfigError(
                f"network.neuron = {self.neuron!r} needs {'a' if self.neuron == 'fixed_point' else 'no'} fixed-point "
                "arithmetic (NetworkConfig.fixed_point); build the config with TrainConfig.network_config()"
            )

    @property
    def conv_geometry(self) -> ConvGeometry | None:
        """The conv blocks' geometry, or ``None`` for a dense network."""
        if not self.conv_channels:
            return None
        return ConvGeometry(tuple(self.input_shape), self.conv_channels, self.conv_kernel, self.conv_stride, self.conv_pool)

    @property
    def conv_shapes(self) -> tuple[tuple[int, int, int], ...]:
        """``(H, W, C)`` of each conv block's pooled output, input side first."""
        geometry = self.conv_geometry
        return () if geometry is None else geometry.pooled_shapes

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


__all__ = ["NetworkOptions", "NetworkConfig", "COMPUTE_DTYPES", "NEURON_MODELS"]
