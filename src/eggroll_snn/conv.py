"""The geometry of convolutional LIF blocks: receptive fields, sum pooling and output shapes.

Maps are channels-last ``(..., H, W, C)``. A block is a ``k x k`` convolution with stride ``s`` and
no padding (``H' = (H - k) // s + 1``), then sum pooling over ``pool x pool`` windows with
partial windows dropped (``H'' = H' // pool``). The convolution itself is a matrix product of the
receptive fields with the kernel viewed as a ``(C_out, C_in*k*k)`` matrix (see
:mod:`eggroll_snn.snn`), so a low-rank perturbation of the kernel costs only its rank-r term.
"""

from __future__ import annotations

import jax

from eggroll_snn.errors import ConfigError


def pooled_shapes(
    input_shape: tuple[int, int, int], channels: tuple[int, ...], kernel: int, stride: int, pool: int
) -> tuple[tuple[int, int, int], ...]:
    """``(H, W, C)`` of each block's pooled output for an input ``(P, H, W)``, input side first.

    Raises:
      ConfigError: a block leaves no pixels.
    """
    _, height, width = input_shape
    shapes = []
    for index, out_channels in enumerate(channels):
        height, width = (height - kernel) // stride + 1, (width - kernel) // stride + 1
        height, width = height // pool, width // pool
        if height < 1 or width < 1:
            fit = f"at most {index} block(s) fit" if index else "no block fits"
            raise ConfigError(
                f"option network.conv_channels = {list(channels)} is out of range: {fit} the {input_shape[1]} x "
                f"{input_shape[2]} input with kernel {kernel}, stride {stride} and pool {pool} (block {index} leaves "
                "no pixels); use fewer blocks, or a smaller conv_kernel, conv_stride or conv_pool"
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


__all__ = ["pooled_shapes", "patches", "sum_pool"]
