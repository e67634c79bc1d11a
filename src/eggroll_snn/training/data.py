"""The training data on the device: the training part, the validation part, minibatch shifts.

:func:`prepare_data` reads the training split once, checks the test split, holds out the
validation part (:func:`eggroll_snn.data.splits.held_out`) and moves both parts to the
device as uint8. :func:`shift_frames` is the ``train.augment_shift`` augmentation the generation
step applies to each minibatch.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from eggroll_snn.config import TrainConfig
from eggroll_snn.data.event_augment import EventTransform, augmented_copies
from eggroll_snn.data.source import load_frames, split_listing
from eggroll_snn.data.splits import held_out
from eggroll_snn.errors import ConfigError


class TrainingData(NamedTuple):
    """The two parts of the training split, as the loop uses them."""

    train_frames: jax.Array  # (N_train, T, P, H, W) uint8 on the device
    train_labels: jax.Array  # (N_train,) int32
    validation_frames: jax.Array  # (N_val, T, P, H, W) uint8 on the device
    validation_labels: np.ndarray  # (N_val,) int64
    test_labels: np.ndarray  # (N_test,) int64, for the run folder's split record (the frames are read at the end)


def prepare_data(
    config: TrainConfig, progress: bool = False, event_transform: EventTransform | None = None
) -> tuple[TrainingData, list[dict]]:
    """The training and validation parts of ``config``'s data, and the recordings left out.

    The test split is read only after training, but its cache is built (or checked) here, so a
    bad recording or a full cache disk is found before the first generation, not after the last.
    With ``train.augment_event_copies = K`` the training part is followed by K copies of it made
    by ``event_transform`` (:func:`eggroll_snn.data.event_augment.augmented_copies`).

    Returns:
      ``(data, skipped)``: ``skipped`` lists the bad recordings ``data.skip_bad`` left out of
      either split (``{"split", "source", "reason"}``); empty without ``data.skip_bad``.
    """
    skipped: list[dict] = []
    frames, labels = load_frames(config.data, "train", progress=progress, skipped=skipped)
    _, test_labels = load_frames(config.data, "test", progress=progress, skipped=skipped)
    train_index, validation_index = held_out(labels, config.data, config.train.seed)
    train_frames, train_labels = np.asarray(frames[train_index]), labels[train_index]
    copies = config.train.augment_event_copies
    if copies:
        listing = split_listing(config.data, "train")
        if len(listing) != len(frames):
            raise ConfigError(
                f"train.augment_event_copies = {copies}: {len(frames)} training recordings of {len(listing)} were readable "
                "(data.skip_bad left some out); event copies need every recording readable"
            )
        extra = augmented_copies(listing, train_index, event_transform, copies, config.data.frame_config(), config.train.seed)
        train_frames = np.concatenate([train_frames, extra])
        train_labels = np.tile(train_labels, copies + 1)
    data = TrainingData(
        train_frames=jnp.asarray(train_frames),  # uint8, moved to the device once
        train_labels=jnp.asarray(train_labels, jnp.int32),
        validation_frames=jnp.asarray(frames[validation_index]),
        validation_labels=labels[validation_index],
        test_labels=np.asarray(test_labels),
    )
    return data, skipped


def shift_frames(frames: jax.Array, key: jax.Array, max_shift: int) -> jax.Array:
    """Translate each recording by its own random ``(dy, dx)`` in ``[-max_shift, max_shift]`` pixels.

    Args:
      frames: ``(B, T, P, H, W)``.
      key: PRNG key of the draw.
      max_shift: largest shift in (pooled) pixels; pixels shifted in are zero (no events).

    Returns:
      ``(B, T, P, H, W)``: ``out[b, ..., y, x] = frames[b, ..., y - dy_b, x - dx_b]``.
    """
    batch, _, _, height, width = frames.shape
    padded = jnp.pad(frames, ((0, 0), (0, 0), (0, 0), (max_shift, max_shift), (max_shift, max_shift)))
    starts = jax.random.randint(key, (batch, 2), 0, 2 * max_shift + 1)

    def crop(recording, start):
        return jax.lax.dynamic_slice(recording, (0, 0, start[0], start[1]), (*recording.shape[:2], height, width))

    return jax.vmap(crop)(padded, starts)


__all__ = ["TrainingData", "prepare_data", "shift_frames"]
