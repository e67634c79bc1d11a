"""The trainer on a few real recordings: run folder contents, exact resume, NaN fitness, data split."""

from __future__ import annotations

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from eggroll_snn import checkpoint, run_folder
from eggroll_snn.compilation import compiler_options
from eggroll_snn.training import evaluators
from eggroll_snn.training import step as step_module
from eggroll_snn.training.progress import Progress
from eggroll_snn.config import TrainConfig, apply_overrides, load
from eggroll_snn.errors import CheckpointError, ConfigError, DataFormatError, TrainingError
from eggroll_snn.evaluate import evaluate_run
from eggroll_snn.run_folder import TIMING_FIELDS, load_model, read_metrics
from eggroll_snn.data.splits import validation_split
from eggroll_snn.training import chunk_length, shift_frames, train


def tiny_config(root, **changes) -> TrainConfig:
    """17 x 17 frames, 4 bins, 16 hidden neurons, 16 members: about 10 ms per generation."""
    options = {
        "data.root": str(root),
        "data.num_time_bins": 4,
        "data.pool": 2,
        "network.hidden_sizes": [16],
        "strategy.population_size": 16,
        "strategy.rank": 2,
        "strategy.sigma": 0.05,
        "strategy.learning_rate": 0.02,
        "train.generations": 20,
        "train.batch_size": 32,
        "train.eval_every": 10,
        "train.checkpoint_every": 5,
        "train.generations_per_call": 5,
        "train.eval_batch_size": 128,
    }
    options.update(changes)
    return apply_overrides(TrainConfig(), options)


def _without_timing(records: list[dict]) -> list[dict]:
    return [{k: v for k, v in record.items() if k not in TIMING_FIELDS} for record in records]


def _params_equal(a, b) -> bool:
    import jax

    return all(np.array_equal(np.asarray(x), np.asarray(y)) for x, y in zip(jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b)))


@pytest.fixture(scope="module")
def finished_run(nmnist_small_root, tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("runs") / "full"
    config = tiny_config(nmnist_small_root)
    result = train(config, run_dir, progress=False)
    return config, run_dir, result


def test_run_folder_holds_config_metrics_checkpoints_model_and_summary(finished_run):
    config, run_dir, result = finished_run
    assert load(run_dir / "config.toml") == config
    records = read_metrics(run_dir)
    assert [r["generation"] for r in records] == list(range(1, 21))
    for record in records:
        assert set(run_folder.METRIC_FIELDS) <= set(record)
        assert record["train_loss"] == pytest.approx(-record["fitness_mean"], rel=1e-6)
        assert record["fitness_max"] >= record["fitness_mean"]
    evaluated = [r["generation"] for r in records if "validation_accuracy" in r]
    assert evaluated == [10, 20]
    assert sorted(p.name for p in (run_dir / "checkpoints").iterdir()) == [
        f"gen-{g:08d}.{suffix}" for g in (10, 15, 20) for suffix in ("json", "npz")
    ]
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["test_count"] == 100 and summary["generations"] == 20
    # the saved model is the best-validation one and scores what the summary says
    best = max((r for r in records if "validation_accuracy" in r), key=lambda r: r["validation_accuracy"])
    assert summary["best_generation"] == result.best_generation == best["generation"]
    assert summary["best_validation_accuracy"] == pytest.approx(best["validation_accuracy"])
    report = evaluate_run(run_dir)
    assert report["count"] == 100
    assert report["accuracy"] == pytest.approx(summary["test_accuracy"])
    assert sum(map(sum, report["confusion"])) == 100
    params, _, metadata = load_model(run_dir)
    assert metadata["generation"] == result.best_generation
    assert _params_equal(params, result.params)


def test_fitness_improves_on_real_recordings(finished_run):
    records = read_metrics(finished_run[1])
    first = np.mean([r["train_loss"] for r in records[:5]])
    last = np.mean([r["train_loss"] for r in records[-5:]])
    assert last < first - 0.05


def test_resume_after_interrupt_is_bit_identical(finished_run, nmnist_small_root, tmp_path, monkeypatch):
    config, full_dir, full = finished_run
    run_dir = tmp_path / "interrupted"
    original_update = Progress.update

    def interrupt_at_15(self, generation, *args):
        original_update(self, generation, *args)
        if generation == 15:
            raise KeyboardInterrupt

    monkeypatch.setattr(Progress, "update", interrupt_at_15)
    with pytest.raises(KeyboardInterrupt):
        train(config, run_dir, progress=False)
    monkeypatch.setattr(Progress, "update", original_update)
    assert checkpoint.latest_valid_checkpoint(run_dir / "checkpoints").generation == 15
    # what a kill -9 leaves behind: lines after the checkpoint and a torn last line
    with open(run_dir / "metrics.jsonl", "a") as handle:
        handle.write(json.dumps({"generation": 16, "fitness_mean": 0.0}) + "\n" + '{"generation": 1')
    result = train(config, run_dir, resume=True, progress=False)
    assert _without_timing(read_metrics(run_dir)) == _without_timing(read_metrics(full_dir))
    assert _params_equal(result.params, full.params)
    final = checkpoint.latest_valid_checkpoint(run_dir / "checkpoints")
    reference = checkpoint.latest_valid_checkpoint(full_dir / "checkpoints")
    assert final.metadata["npz_sha256"] == reference.metadata["npz_sha256"]
    assert result.test_accuracy == full.test_accuracy


def test_resume_with_another_config_is_refused(finished_run):
    config, run_dir, _ = finished_run
    with pytest.raises(CheckpointError, match="train.seed"):
        train(apply_overrides(config, {"train.seed": 1}), run_dir, resume=True, progress=False)


def test_new_run_into_an_existing_run_folder_is_refused(finished_run):
    config, run_dir, _ = finished_run
    with pytest.raises(ConfigError, match="already holds a training run"):
        train(config, run_dir, progress=False)


def test_nan_in_some_members_ranks_them_worst_and_training_goes_on(nmnist_small_root, tmp_path, monkeypatch):
    original = evaluators.population_losses

    def first_member_nan(*args, **kwargs):
        losses, accuracies = original(*args, **kwargs)
        return losses.at[0].set(jnp.nan), accuracies

    monkeypatch.setattr(evaluators, "population_losses", first_member_nan)
    train(tiny_config(nmnist_small_root, **{"train.generations": 5}), tmp_path / "run", progress=False)
    records = read_metrics(tmp_path / "run")
    assert len(records) == 5
    assert all(r["invalid_fitness"] == 1 and np.isfinite(r["fitness_mean"]) for r in records)


def test_all_nan_generation_stops_with_training_error_and_keeps_last_checkpoint(nmnist_small_root, tmp_path, monkeypatch):
    config = tiny_config(nmnist_small_root, **{"train.generations": 10})
    run_dir = tmp_path / "run"
    train(config, run_dir, progress=False)
    before = checkpoint.latest_valid_checkpoint(run_dir / "checkpoints")
    monkeypatch.setattr(
        evaluators, "population_losses",
        lambda perturbations_params, perturbations, *rest, **options: (
            jnp.full(jax.tree_util.tree_leaves(perturbations)[0].shape[0], jnp.nan),
            jnp.zeros(jax.tree_util.tree_leaves(perturbations)[0].shape[0]),
        ),
    )
    longer = apply_overrides(config, {"train.generations": 20})
    with pytest.raises(TrainingError, match=r"generation 11.*gen-00000010\.json.*sigma"):
        train(longer, run_dir, resume=True, progress=False)
    after = checkpoint.latest_valid_checkpoint(run_dir / "checkpoints")
    assert after.generation == 10 and after.metadata["npz_sha256"] == before.metadata["npz_sha256"]
    assert [r["generation"] for r in read_metrics(run_dir)] == list(range(1, 11))


def test_generation_step_compiles_at_most_twice(nmnist_small_root, tmp_path, monkeypatch):
    lengths = []
    original = step_module.compile_chunk

    def counting(step, state, frames, labels, length, options=None):
        lengths.append(length)
        seen_options.append(options)
        return original(step, state, frames, labels, length, options)

    seen_options = []
    monkeypatch.delenv("XLA_FLAGS", raising=False)
    monkeypatch.setattr(step_module, "compile_chunk", counting)
    train(tiny_config(nmnist_small_root, **{"train.generations": 13}), tmp_path / "run", progress=False)
    assert lengths == [5, 3]  # chunks 5, 5, 3: one compilation per length, none per generation
    assert seen_options == [compiler_options(True)] * 2  # the fast forward's XLA options (on CPU: CPU_OPTIONS)
    assert len(read_metrics(tmp_path / "run")) == 13


def test_chunk_length_divides_eval_and_checkpoint_cadence():
    train_section = apply_overrides(
        TrainConfig(), {"train.generations_per_call": 8, "train.eval_every": 12, "train.checkpoint_every": 20}
    ).train
    assert chunk_length(train_section) == 4


def test_stratified_split_is_seeded_disjoint_and_per_class():
    labels = np.repeat(np.arange(10), [20, 30, 10, 10, 10, 10, 10, 10, 10, 1])
    train_index, validation_index = validation_split(labels, 0.1, seed=3)
    assert np.intersect1d(train_index, validation_index).size == 0
    assert np.union1d(train_index, validation_index).size == len(labels)
    counts = np.bincount(labels[validation_index], minlength=10)
    assert counts.tolist() == [2, 3, 1, 1, 1, 1, 1, 1, 1, 0]
    again, _ = validation_split(labels, 0.1, seed=3)
    other, _ = validation_split(labels, 0.1, seed=4)
    assert np.array_equal(train_index, again) and not np.array_equal(train_index, other)


def test_split_without_any_class_of_two_is_refused():
    with pytest.raises(ConfigError, match="data.validation_fraction"):
        validation_split(np.arange(5), 0.2, seed=0)


def test_bad_data_root_names_the_folder_and_leaves_no_run(tmp_path):
    (tmp_path / "empty").mkdir()
    config = apply_overrides(TrainConfig(), {"data.root": str(tmp_path / "empty")})
    with pytest.raises(DataFormatError, match="empty"):
        train(config, tmp_path / "run", progress=False)
    assert not (tmp_path / "run").exists()


def test_shift_frames_moves_each_recording_by_at_most_the_shift_and_keeps_interior_events():
    import jax

    frames = np.zeros((200, 2, 2, 7, 7), np.uint8)
    frames[:, :, :, 3, 3] = 5  # one interior pixel per recording
    shifted = np.asarray(shift_frames(jnp.asarray(frames), jax.random.key(0), 2))
    offsets = set()
    for recording in shifted:
        ys, xs = np.nonzero(recording[0, 0])
        assert len(ys) == 1 and recording.sum() == frames[0].sum()
        assert np.array_equal(recording[0, 0], recording[1, 1])  # one shift for all bins and polarities
        offsets.add((int(ys[0]) - 3, int(xs[0]) - 3))
    assert offsets == {(dy, dx) for dy in range(-2, 3) for dx in range(-2, 3)}
    again = np.asarray(shift_frames(jnp.asarray(frames), jax.random.key(0), 2))
    assert np.array_equal(shifted, again)


# -- starting from another run's model (train.init_from) ----------------------------------------
@pytest.fixture(scope="module")
def learned_run(nmnist_small_root, tmp_path_factory):
    """A source run that is well above chance: 32 members, constant rate, 40 generations (~10 s)."""
    run_dir = tmp_path_factory.mktemp("runs") / "learned"
    config = tiny_config(
        nmnist_small_root,
        **{"strategy.population_size": 32, "strategy.learning_rate_schedule": "constant", "train.generations": 40},
    )
    return run_dir, train(config, run_dir, progress=False)


def test_init_from_starts_at_the_source_model(learned_run, nmnist_small_root, tmp_path):
    from eggroll_snn.training.loop import initial_state
    from eggroll_snn.training.step import strategy_from_config

    source_dir, source = learned_run
    config = tiny_config(nmnist_small_root, **{"train.init_from": str(source_dir), "train.seed": 7})
    state, _ = initial_state(config, strategy_from_config(config), config.network_config())
    saved, _, _ = load_model(source_dir)
    assert _params_equal(state.strategy.params, saved) and _params_equal(state.best_params, saved)
    # Five generations with a negligible step keep the source's validation accuracy (chance is ~0.1).
    still = tiny_config(
        nmnist_small_root,
        **{"train.init_from": str(source_dir), "train.generations": 5, "train.eval_every": 5,
           "strategy.learning_rate": 1e-7, "strategy.sigma": 1e-6},
    )
    result = train(still, tmp_path / "fine", progress=False)
    assert source.best_validation_accuracy > 0.2  # 0.24 when written; chance is 0.1
    assert result.best_validation_accuracy == pytest.approx(source.best_validation_accuracy, abs=0.03)
    assert load(tmp_path / "fine" / "config.toml").train.init_from == str(source_dir)


def test_init_from_another_network_or_no_run_is_refused_and_leaves_no_folder(finished_run, nmnist_small_root, tmp_path):
    _, source_dir, _ = finished_run
    wider = tiny_config(nmnist_small_root, **{"train.init_from": str(source_dir), "network.hidden_sizes": [32]})
    with pytest.raises(ConfigError, match=r"train.init_from = .*do not fit this network's .*\(32, 578\)"):
        train(wider, tmp_path / "wider", progress=False)
    assert not (tmp_path / "wider").exists()
    missing = tiny_config(nmnist_small_root, **{"train.init_from": str(tmp_path)})
    with pytest.raises(ConfigError, match=r"train.init_from = .*holds no finished training run"):
        train(missing, tmp_path / "missing", progress=False)
    assert not (tmp_path / "missing").exists()


def test_a_time_budget_fixes_the_generation_count_records_it_and_reproduces(nmnist_small_root, tmp_path):
    budgeted = tiny_config(nmnist_small_root, **{"train.generations": None, "train.time_budget_s": 15.0})
    result = train(budgeted, tmp_path / "budget", progress=False)
    saved = load(tmp_path / "budget" / "config.toml")
    generations = saved.train.generations
    assert generations == result.generations and generations % chunk_length(saved.train) == 0 and generations >= 5
    record = json.loads((tmp_path / "budget" / "budget.json").read_text())
    assert record["generations"] == generations and record["reproduce_with"] == f"--generations {generations}"
    # The plan fits the budget: preparation, one compilation, the generations and their validations, the end.
    planned = (
        record["elapsed_before_training_s"] + record["compile_seconds"] + generations * record["seconds_per_generation"]
        + (generations / saved.train.eval_every + 2) * record["validation_seconds"]
    )
    assert planned <= 15.0
    # The same count given explicitly is the same run (the schedules span it either way).
    again = train(apply_overrides(budgeted, {"train.generations": generations}), tmp_path / "again", progress=False)
    strip = lambda records: [{k: v for k, v in r.items() if k not in TIMING_FIELDS} for r in records]  # noqa: E731
    assert strip(read_metrics(tmp_path / "budget")) == strip(read_metrics(tmp_path / "again"))
    assert again.test_accuracy == result.test_accuracy


def test_a_budget_too_small_for_one_chunk_is_refused_before_any_file(nmnist_small_root, tmp_path):
    config = tiny_config(nmnist_small_root, **{"train.generations": None, "train.time_budget_s": 0.5})
    with pytest.raises(ConfigError, match=r"train.time_budget_s = 0.5 leaves .* raise train.time_budget_s or set train.generations"):
        train(config, tmp_path / "run", progress=False)
    assert not (tmp_path / "run").exists()
