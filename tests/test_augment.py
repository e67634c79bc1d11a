"""Augmentation of training recordings: each transform against what it must do to event counts."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from eggroll_snn.cli import main
from eggroll_snn.data.augment import Augmentation, augment_batch, augment_recording, binomial
from eggroll_snn.errors import ConfigError
from eggroll_snn.run_folder import TIMING_FIELDS, read_metrics

from test_failures import FAST, one_error_line

FRAMES = jnp.asarray(np.random.default_rng(0).integers(0, 30, (4, 2, 5, 5)), jnp.uint8)  # (T, P, H, W)


def _draws(options: Augmentation, count: int = 400) -> np.ndarray:
    keys = jax.random.split(jax.random.key(1), count)
    return np.asarray(jax.jit(jax.vmap(lambda key: augment_recording(FRAMES, key, options)))(keys)).astype(np.int64)


def test_binomial_draws_have_the_binomial_mean_and_variance_and_its_ends():
    counts = jnp.asarray([0, 1, 3, 17, 35, 120, 255], jnp.int32)
    keys = jax.random.split(jax.random.key(0), 4000)
    for probability in (0.2, 0.5, 0.9):
        draws = np.asarray(jax.jit(jax.vmap(lambda key: binomial(key, counts, probability)))(keys))
        n = np.asarray(counts)
        assert np.all((draws >= 0) & (draws <= n))
        standard_error = np.sqrt(n * probability * (1 - probability) / 4000)
        assert np.all(np.abs(draws.mean(0) - n * probability) <= 4 * standard_error + 1e-9)
        np.testing.assert_allclose(draws.var(0), n * probability * (1 - probability), rtol=0.15, atol=0.02)
    assert np.array_equal(np.asarray(binomial(jax.random.key(2), counts, 0.0)), np.zeros(7))
    assert np.array_equal(np.asarray(binomial(jax.random.key(2), counts, 1.0)), np.asarray(counts))


def test_binomial_draws_follow_the_exact_probabilities_of_each_outcome():
    import math

    n, probability, count = 17, 0.3, 20000
    draws = np.asarray(jax.jit(lambda key: binomial(key, jnp.full((count,), n, jnp.int32), probability))(jax.random.key(3)))
    frequencies = np.bincount(draws, minlength=n + 1) / count
    exact = np.array([math.comb(n, k) * probability**k * (1 - probability) ** (n - k) for k in range(n + 1)])
    assert np.all(np.abs(frequencies - exact) <= 4 * np.sqrt(exact * (1 - exact) / count) + 1e-4)


def test_dropping_events_thins_every_count_by_its_probability():
    draws = _draws(Augmentation(drop_event=0.25))
    assert np.all(draws <= np.asarray(FRAMES))
    np.testing.assert_allclose(draws.sum() / (400 * int(np.asarray(FRAMES).astype(np.int64).sum())), 0.75, atol=0.005)


def test_flipping_polarities_keeps_each_pixels_events_and_p1_swaps_them():
    frames = np.asarray(FRAMES).astype(np.int64)
    draws = _draws(Augmentation(flip_polarity=0.3))
    assert np.array_equal(draws.sum(axis=2), np.broadcast_to(frames.sum(axis=1), draws.sum(axis=2).shape))
    expected_on = 0.7 * frames[:, 1] + 0.3 * frames[:, 0]
    np.testing.assert_allclose(draws[:, :, 1].mean(0), expected_on, atol=1.2)
    swapped = _draws(Augmentation(flip_polarity=1.0), count=2)
    assert np.array_equal(swapped[0], frames[:, ::-1])


def test_noise_adds_exactly_its_events_uniformly():
    draws = _draws(Augmentation(noise_events=50))
    added = draws - np.asarray(FRAMES).astype(np.int64)
    assert np.all(added >= 0) and np.all(added.sum(axis=(1, 2, 3, 4)) == 50)
    np.testing.assert_allclose(added.mean(0), 50 / FRAMES.size, atol=5 * np.sqrt(0.25 / 400))  # five standard errors


def test_dropping_bins_empties_whole_bins_with_its_probability():
    draws = _draws(Augmentation(drop_bins=0.3))
    frames = np.asarray(FRAMES).astype(np.int64)
    emptied = np.all(draws == 0, axis=(2, 3, 4))
    kept = np.all(draws == frames[None], axis=(2, 3, 4))
    assert np.all(emptied | kept)
    assert abs(emptied.mean() - 0.3) < 0.04


def test_a_recordings_draw_depends_on_the_generation_key_and_its_index_only():
    options = Augmentation(drop_event=0.3, noise_events=5)
    frames = jnp.stack([FRAMES, FRAMES // 2, FRAMES // 3])
    key = jax.random.key(9)
    forward = augment_batch(frames, jnp.asarray([4, 7, 9]), key, options)
    backward = augment_batch(frames[::-1], jnp.asarray([9, 7, 4]), key, options)
    np.testing.assert_array_equal(forward, backward[::-1])
    assert not np.array_equal(augment_batch(frames, jnp.asarray([4, 7, 9]), jax.random.key(10), options), forward)
    np.testing.assert_array_equal(augment_batch(frames, jnp.asarray([4, 7, 9]), key, Augmentation()), frames)


@pytest.mark.parametrize(
    "assignment, message",
    [("train.augment_drop_event=1.0", "a probability in [0, 1)"), ("train.augment_noise_events=-3", "an integer 0..100000")],
)
def test_a_bad_augmentation_option_is_refused_in_one_line_naming_it(assignment, message, tmp_path, capsys):
    assert main(["train", "--set", assignment, "--out", str(tmp_path / "run")]) == 1
    line = one_error_line(capsys.readouterr().err)
    assert assignment.split("=")[0] in line and message in line


def test_counts_are_refused_on_binary_frames():
    from eggroll_snn.config import TrainConfig, apply_overrides

    with pytest.raises(ConfigError, match="train.augment_drop_event = 0.2 is out of range: 0 with data.binarize"):
        apply_overrides(TrainConfig(), {"data.binarize": True, "train.augment_drop_event": 0.2})


def test_an_augmented_run_resumes_to_the_same_bytes(nmnist_small_root, tmp_path):
    augment = ["--set", "train.augment_drop_event=0.2", "--set", "train.augment_flip_polarity=0.1",
               "--set", "train.augment_noise_events=20", "--set", "train.augment_drop_bins=0.1",
               "--set", "train.eval_every=2", "--set", "train.checkpoint_every=2", "--set", "train.generations_per_call=2",
               "--set", "strategy.learning_rate_schedule=constant"]  # a resume that lengthens a run keeps the same rates
    common = ["train", "--data", str(nmnist_small_root), *FAST, *augment]
    assert main([*common, "--generations", "6", "--out", str(tmp_path / "straight")]) == 0
    assert main([*common, "--generations", "4", "--out", str(tmp_path / "split")]) == 0
    assert main(["train", "--resume", str(tmp_path / "split"), "--generations", "6"]) == 0
    strip = lambda records: [{k: v for k, v in r.items() if k not in TIMING_FIELDS} for r in records]  # noqa: E731
    assert strip(read_metrics(tmp_path / "split")) == strip(read_metrics(tmp_path / "straight"))
    assert (tmp_path / "split" / "model.npz").read_bytes() == (tmp_path / "straight" / "model.npz").read_bytes()


def test_binomial_equals_a_numpy_inversion_of_the_same_uniforms_and_table():
    from eggroll_snn.data.augment import MAX_COUNT, binomial_cdf_table, cell_uniforms

    counts = np.random.default_rng(4).integers(0, 256, (3, 2, 9, 9)).astype(np.int32)
    counts[0] = np.minimum(counts[0], 5)  # small and large counts side by side
    for probability in (0.3, 0.85):
        key = jax.random.key(11)
        u = np.asarray(cell_uniforms(key, counts.shape))
        table = binomial_cdf_table(probability).reshape(MAX_COUNT + 1, MAX_COUNT + 1)
        expected = np.array([np.sum(u_cell > table[:n_cell, n_cell]) for u_cell, n_cell in zip(u.ravel(), counts.ravel())])
        drawn = np.asarray(jax.jit(lambda k: binomial(k, jnp.asarray(counts), probability))(key))
        np.testing.assert_array_equal(drawn.ravel(), expected)


def test_cell_uniforms_are_uniform_on_24_bits_and_differ_between_keys():
    from eggroll_snn.data.augment import cell_uniforms

    u = np.asarray(cell_uniforms(jax.random.key(5), (64, 1000))).ravel()
    assert np.all((u >= 0) & (u < 1)) and np.all(u * 2**24 == np.floor(u * 2**24))
    histogram = np.bincount((u * 20).astype(int), minlength=20)
    expected = u.size / 20
    assert np.sum((histogram - expected) ** 2 / expected) < 45  # chi-square, 19 degrees of freedom: p < 1e-3 above 43.8
    assert abs(np.corrcoef(u[:-1], u[1:])[0, 1]) < 0.01  # neighbouring cells uncorrelated
    assert np.mean(u == np.asarray(cell_uniforms(jax.random.key(6), (64, 1000))).ravel()) < 1e-3
