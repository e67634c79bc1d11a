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

from dataclasses import dataclass

import jax
import jax.numpy as jnp

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


def binomial(key: jax.Array, counts: jax.Array, probability) -> jax.Array:
    """``Binomial(counts, probability)`` per cell of integer ``counts`` (any shape), exactly.

    By inversion with one uniform number per cell: the smallest k with ``CDF(k) >= u``, the CDF
    summed in log space (``lgamma``) so that no term underflows for counts up to 255. The loop runs
    to the largest count present.
    """
    n = counts.astype(jnp.float32)
    u = jax.random.uniform(key, counts.shape)
    log_q, log_rest = jnp.log(jnp.float32(probability)), jnp.log1p(-jnp.float32(probability))
    log_n_factorial = jax.lax.lgamma(n + 1.0)

    def pmf(k):
        log_choose = log_n_factorial - jax.lax.lgamma(k + 1.0) - jax.lax.lgamma(jnp.maximum(n - k, 0.0) + 1.0)
        # 0 * log(0) is 0 at the ends (probability 0 or 1).
        terms = jnp.where(k > 0, k * log_q, 0.0) + jnp.where(n - k > 0, (n - k) * log_rest, 0.0)
        return jnp.where(k <= n, jnp.exp(log_choose + terms), 0.0)

    def body(state):
        k, cdf, result = state
        cdf = cdf + pmf(k)
        result = jnp.where((result < 0) & (u <= cdf), k, result)
        return k + 1.0, cdf, result

    largest = jnp.max(n)
    _, _, result = jax.lax.while_loop(
        lambda state: state[0] <= largest, body, (jnp.float32(0.0), jnp.zeros_like(n), jnp.full_like(n, -1.0))
    )
    result = jnp.where(result < 0, n, result)  # rounding left the CDF a hair below u: all n
    return result.astype(counts.dtype)


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


__all__ = ["Augmentation", "binomial", "augment_recording", "augment_batch"]
