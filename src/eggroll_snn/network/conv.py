"""Convolutional LIF block: a convolution of LIF neurons followed by sum pooling of their spikes.

Neuron model: the LIF equations of :mod:`eggroll_snn.network.dense` with ``W s_in[t]`` replaced by
a 2-D convolution (no padding, stride ``s``) of the block's input map ``(H, W, C_in)`` with a
``k x k`` kernel, then sum pooling of the spikes over ``pool x pool`` windows (NIR ``Conv2d ->
CubaLIF -> SumPool2d``)::

    v[t]  = beta * v'[t-1] + (kernel * s_in[t]) + b        (per output channel; H' = (H - k) // s + 1)
    s[t]  = H(v[t] - theta),   v'[t] as for a dense layer
    out[t] = sum_pool(s[t], pool)                            (H'' = H' // pool; partial windows dropped)

Maps are channels-last ``(..., H, W, C)``. The kernel is stored as the 2-D matrix ``W``
(C_out, C_in*k*k) (the row of output channel o is ``kernel[o, c, i, j]`` flattened in (c, i, j)
order), so the convolution is ``patches(s_in) W^T`` with ``patches`` the (C_in*k*k)-vector of each
receptive field: a weight perturbation ``E = s a b^T`` adds ``s * (patches b) a^T``, i.e. for each
rank component j a single-output-channel convolution with kernel ``b_j`` scaled per output
channel by ``a_j``; no per-member kernel is formed.
"""

from __future__ import annotations

from dataclasses import dataclass

import jax

from eggroll_snn.errors import ConfigError
from eggroll_snn.network.arithmetic import LIFNeuron
from eggroll_snn.network.base import LayerOutput, init_weight, learned_constants


@dataclass(frozen=True)
class ConvGeometry:
    """Shapes of a stack of conv blocks on frames ``input_shape`` (P, H, W)."""

    input_shape: tuple[int, int, int]
    channels: tuple[int, ...]
    kernel: int
    stride: int
    pool: int

    @property
    def pooled_shapes(self) -> tuple[tuple[int, int, int], ...]:
        """``(H, W, C)`` of each block's pooled output, input side first.

        Raises:
          ConfigError: a block leaves no pixels.
        """
        _, height, width = self.input_shape
        shapes = []
        for index, out_channels in enumerate(self.channels):
            height, width = (height - self.kernel) // self.stride + 1, (width - self.kernel) // self.stride + 1
            height, width = height // self.pool, width // self.pool
            if height < 1 or width < 1:
                fit = f"at most {index} block(s) fit" if index else "no block fits"
                raise ConfigError(
                    f"option network.conv_channels = {list(self.channels)} is out of range: {fit} the "
                    f"{self.input_shape[1]} x {self.input_shape[2]} input with kernel {self.kernel}, stride "
                    f"{self.stride} and pool {self.pool} (block {index} leaves no pixels); use fewer blocks, or a "
                    "smaller conv_kernel, conv_stride or conv_pool"
                )
            shapes.append((height, width, out_channels))
        return tuple(shapes)


def patches(x: jax.Array, kernel: int, stride: int) -> jax.Array:
    """Receptive fields: ``x`` (..., H, W, C) -> (..., H', W', C*k*k) in (c, i, j) order."""
    lead = x.shape[:-3]
    flat = x.reshape((-1,) + x.shape[-3:])
    fields = jax.lax.conv_general_dilated_patches(
        flat, (kernel, kernel), (stride, stride), "VALID", dimension_numbers=("NHWC", "OIHW", "NHWC")
    )
    return fields.reshape(lead + fields.shape[1:])


def sum_pool(spikes: jax.Array, pool: int) -> jax.Array:
    """Sum of ``spikes`` (..., H, W, C) over ``pool x pool`` windows (partial windows dropped)."""
    if pool == 1:
        return spikes
    *lead, height, width, channels = spikes.shape
    height, width = height // pool, width // pool
    cropped = spikes[..., : height * pool, : width * pool, :]
    return cropped.reshape((*lead, height, pool, width, pool, channels)).sum(axis=(-4, -2))


@dataclass(frozen=True)
class ConvLIF:
    """A conv block: ``channels`` output maps of LIF neurons on an input map ``in_shape`` (H, W, C_in)."""

    in_shape: tuple[int, int, int]
    channels: int
    kernel: int
    stride: int
    pool: int
    neuron: LIFNeuron

    @property
    def weight_shape(self) -> tuple[int, int]:
        return (self.channels, self.in_shape[2] * self.kernel**2)

    @property
    def conv_shape(self) -> tuple[int, int, int]:
        """``(H', W', C)`` of the membranes, before pooling."""
        height, width, _ = self.in_shape
        return ((height - self.kernel) // self.stride + 1, (width - self.kernel) // self.stride + 1, self.channels)

    @property
    def activity_size(self) -> int:
        """The membrane map before pooling, per sample and time bin."""
        height, width, channels = self.conv_shape
        return height * width * channels

    @property
    def feature_size(self) -> int:
        """The receptive fields of every position, per sample and time bin."""
        height, width, _ = self.conv_shape
        return height * width * self.weight_shape[1]

    def init(self, key: jax.Array, gain: float, learn_beta: bool, learn_threshold: bool) -> dict:
        return {
            **init_weight(key, self.weight_shape, gain),
            **learned_constants(
                self.channels, self.neuron.beta if learn_beta else None, self.neuron.threshold if learn_threshold else None
            ),
        }

    def features(self, activity: jax.Array) -> jax.Array:
        """Receptive fields (..., H', W', C_in*k*k) of a channels-last map (..., H, W, C_in)."""
        return patches(activity, self.kernel, self.stride)

    def run(self, params: dict, perturbation: dict | None, currents: jax.Array, arithmetic, record: bool) -> LayerOutput:
        state = arithmetic.spiking(params, perturbation, currents, self.neuron, record)
        return LayerOutput(sum_pool(state["spikes"], self.pool), state)


__all__ = ["ConvGeometry", "ConvLIF", "patches", "sum_pool"]
