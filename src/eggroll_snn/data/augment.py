"""Augmentation of training recordings, per minibatch, on their frames inside the compiled step.

Each transform is tonic's event-level transform of the same name, applied to the events a frame
counts, in a form that is exact in distribution on frames ``(T, P, H, W)`` of event counts:

* ``drop_event = p`` (tonic ``DropEvent(p)``): each event is dropped with probability p, so a
  count ``n`` becomes ``Binomial(n, 1 - p)``;
* ``flip_polarity = p`` (tonic ``RandomFlipPolarity(p)``): each event's polarity flips with
  probability p, so ``ON' = Binomial(ON, 1 - p) + Binomial(OFF, p)`` and ``OFF'`` takes the rest;
* ``noise_events = n`` (tonic ``UniformNoise(n)``): n events at uniformly random pixels,
  polarities and times of the recording's window, each adding 1 to a uniformly random cell
  (sum pooling keeps pixels uniform, since the pool divides the sensor);
* ``drop_bins = p`` (a time-bin drop, tonic ``DropEventByTime`` at the bins' resolution): each
  time bin of a recording is emptied with probability p;
* ``shift`` (``train.augment_shift``): :func:`eggroll_snn.training.data.shift_frames`.

Randomness is counter-based: a recording's draw depends only on the generation and the
recording's index in the training part (``fold_in(fold_in(key, generation), index)``), so a
seed reproduces, a resumed run draws the same numbers, and every method (evolution strategies and
BPTT alike) sees the same augmented minibatch. Counts stay ``<= 255`` (uint8 frames).
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np

from eggroll_snn.options import check, is_integer


@dataclass(frozen=True)
class Augmentation:
    """The transforms applied to each training recording (all off by default; see the module docstring).

    Attributes:
      drop_event: probability that an event is dropped, in [0, 1).
      flip_polarity: probability that an event's polarity flips, in [0, 1].
      noise_events: uniform noise events added per recording, 0..100000.
      drop_bins: probability that a time bin is emptied, in [0, 1).
    """

    drop_event: float = 0.0
    flip_polarity: float = 0.0
    noise_events: int = 0
    drop_bins: float = 0.0

    def __post_init__(self) -> None:
        check(0.0 <= self.drop_event < 1.0, "train.augment_drop_event", self.drop_event, "a probability in [0, 1)")
        check(0.0 <= self.flip_polarity <= 1.0, "train.augment_flip_polarity", self.flip_polarity, "a probability in [0, 1]")
        check(
            is_integer(self.noise_events) and 0 <= self.noise_events <= 100_000, "train.augment_noise_events",
            self.noise_events, "an integer 0..100000 (events per recording)",
        )
        check(0.0 <= self.drop_bins < 1.0, "train.augment_drop_bins", self.drop_bins, "a probability in [0, 1)")

    @property
    def active(self) -> bool:
        return bool(self.drop_event or self.flip_polarity or self.noise_events or self.drop_bins)


#: Counts a frame cell can hold (uint8): the binomial tables cover 0..MAX_COUNT.
MAX_COUNT = 255


@functools.lru_cache(maxsize=16)
def binomial_cdf_table(probability: float) -> np.ndarray:
    """``table[k, n] = P(Binomial(n, probability) <= k)`` for n, k in 0..MAX_COUNT, computed in float64
    (log space, so no term under- or overflows) and stored as float32, flattened k-major."""
    n = np.arange(MAX_COUNT + 1, dtype=np.float64)[None, :]
    k = np.arange(MAX_COUNT + 1, dtype=np.float64)[:, None]
    lgamma = np.vectorize(math.lgamma)
    with np.errstate(divide="ignore", invalid="ignore"):
        log_terms = (
            lgamma(n + 1) - lgamma(k + 1) - lgamma(np.maximum(n - k, 0) + 1)
            + np.where(k > 0, k * np.log(probability), 0.0) + np.where(n - k > 0, (n - k) * np.log1p(-probability), 0.0)
        )
    pmf = np.where(k <= n, np.exp(log_terms), 0.0)
    return np.minimum(np.cumsum(pmf, axis=0), 1.0).astype(np.float32).reshape(-1)


def _mix32(x: jax.Array) -> jax.Array:
    """A bijective avalanche mix of uint32 words (xor-shift and odd-multiply rounds)."""
    x = x ^ (x >> 16)
    x = x * jnp.uint32(0x7FEB352D)
    x = x ^ (x >> 15)
    x = x * jnp.uint32(0x846CA68B)
    return x ^ (x >> 16)


def cell_uniforms(key: jax.Array, shape: tuple[int, ...]) -> jax.Array:
    """Uniform numbers in [0, 1), 24 bits each (the resolution of a float32 CDF near 1), one per cell
    of ``shape``: a keyed hash of the cell's index, ``mix(mix(index * golden + s0) ^ s1)`` with
    ``(s0, s1)`` drawn from ``key``. Counter-based like ``jax.random.uniform`` and about 8x cheaper on
    CPU, where threefry dominated an augmented generation."""
    seeds = jax.random.bits(key, (2,), jnp.uint32)
    index = jax.lax.iota(jnp.uint32, math.prod(shape)).reshape(shape)
    words = _mix32(_mix32(index * jnp.uint32(0x9E3779B9) + seeds[0]) ^ seeds[1])
    return (words >> 8).astype(jnp.float32) * jnp.float32(2.0**-24)


def binomial(key: jax.Array, counts: jax.Array, probability: float) -> jax.Array:
    """``Binomial(counts, probability)`` per cell of integer ``counts`` (any shape, each 0..255), exactly.

    By inversion with one uniform number u per cell (:func:`cell_uniforms`): the draw is the number
    of k with ``u > P(Binomial(n, p) <= k)``, read from a table of the CDF
    (:func:`binomial_cdf_table`, exact up to float32 rounding). The CDF grows with k, so those k are
    a prefix 0..c-1 and c is found by binary search: one table lookup per bit of the largest count
    present, not one per count.
    """
    probability = float(probability)
    if probability in (0.0, 1.0):
        return counts if probability == 1.0 else jnp.zeros_like(counts)
    table = jnp.asarray(binomial_cdf_table(probability))
    n = counts.astype(jnp.int32)
    u = cell_uniforms(key, n.shape)
    bits = 32 - jax.lax.clz(jnp.max(n))  # the bit length of the largest count: 2**bits > max(n)

    def search(level, drawn):
        step = jnp.left_shift(1, bits - 1 - level)
        probe = jnp.minimum(drawn + step - 1, MAX_COUNT)
        return jnp.where(u > jnp.take(table, probe * (MAX_COUNT + 1) + n), drawn + step, drawn)

    drawn = jax.lax.fori_loop(0, bits, search, jnp.zeros_like(n))
    return jnp.minimum(drawn, n).astype(counts.dtype)


def augment_recording(frames: jax.Array, key: jax.Array, options: Augmentation) -> jax.Array:
    """One recording's frames ``(T, P, H, W)`` (uint8 counts) with ``options`` applied, in the
    module docstring's order: drop events, flip polarities, add noise, drop bins."""
    drop_key, flip_key, noise_key, bins_key = jax.random.split(key, 4)
    counts = frames.astype(jnp.int32)
    if options.drop_event:
        counts = binomial(drop_key, counts, 1.0 - options.drop_event)
    if options.flip_polarity:
        on_key, off_key = jax.random.split(flip_key)
        flipped = binomial(on_key, counts, options.flip_polarity)  # (T, P, ...): each polarity's flipped events
        counts = counts - flipped + jnp.flip(flipped, axis=1)  # P = 2: what leaves one polarity joins the other
    if options.noise_events:
        cells = jax.random.randint(noise_key, (options.noise_events,), 0, counts.size)
        counts = counts + jnp.zeros(counts.size, jnp.int32).at[cells].add(1).reshape(counts.shape)
    if options.drop_bins:
        kept = jax.random.bernoulli(bins_key, 1.0 - options.drop_bins, (counts.shape[0],))
        counts = counts * kept.reshape((-1,) + (1,) * (counts.ndim - 1))
    return jnp.minimum(counts, 255).astype(frames.dtype)


def augment_batch(frames: jax.Array, indices: jax.Array, key: jax.Array, options: Augmentation) -> jax.Array:
    """``frames`` (B, T, P, H, W) of the training recordings ``indices`` (B,), each augmented with its
    own key ``fold_in(key, index)`` (``key``: the generation's)."""
    if not options.active:
        return frames
    keys = jax.vmap(lambda index: jax.random.fold_in(key, index))(indices)
    return jax.vmap(lambda recording, recording_key: augment_recording(recording, recording_key, options))(frames, keys)


__all__ = ["Augmentation", "MAX_COUNT", "binomial", "cell_uniforms", "binomial_cdf_table", "augment_recording", "augment_batch"]
