"""Hardware in the loop: training through the external reference evaluator equals the in-process integer path."""

from __future__ import annotations

import re
import shlex
import shutil
import sys

import numpy as np
import pytest

from eggroll_snn.checkpoint import latest_valid_checkpoint
from eggroll_snn.config import TrainConfig, apply_overrides
from eggroll_snn.integer.hil.client import EvaluatorError
from eggroll_snn.integer.hil.protocol import ProtocolError, decode_payload, decode_prefix, encode, read_message
from eggroll_snn.run_folder import TIMING_FIELDS, read_metrics
from eggroll_snn.training import train

EVALUATOR = f"{shlex.quote(sys.executable)} -m eggroll_snn.integer.hil.reference_evaluator"


def hil_config(root, **changes) -> TrainConfig:
    """The tiny network of test_train (17 x 17 frames, 4 bins, 16 hidden, 16 members), fixed point."""
    options = {
        "data.root": str(root),
        "data.num_time_bins": 4,
        "network.neuron": "fixed_point",
        "network.hidden_sizes": [16],
        "strategy.population_size": 16,
        "strategy.rank": 2,
        "strategy.learning_rate": 0.02,
        "train.generations": 10,
        "train.batch_size": 32,
        "train.eval_every": 5,
        "train.checkpoint_every": 5,
        "train.generations_per_call": 5,
        "train.eval_batch_size": 128,
    }
    options.update(changes)
    return apply_overrides(TrainConfig(), options)


def _without_timing(records):
    return [{k: v for k, v in record.items() if k not in TIMING_FIELDS} for record in records]


def _integer_model(run_dir):
    with np.load(run_dir / "model_fixed_point.npz") as archive:
        return {name: archive[name] for name in archive.files}


@pytest.fixture(scope="module")
def in_process_run(nmnist_small_root, tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("hil") / "in-process"
    result = train(hil_config(nmnist_small_root), run_dir, progress=False)
    return run_dir, result


def _assert_same_run(run_dir, reference_dir):
    assert _without_timing(read_metrics(run_dir)) == _without_timing(read_metrics(reference_dir))
    ours, theirs = _integer_model(run_dir), _integer_model(reference_dir)
    assert ours.keys() == theirs.keys() and all(np.array_equal(ours[k], theirs[k]) for k in ours)


def test_training_through_the_reference_evaluator_is_identical_to_the_in_process_path(in_process_run, nmnist_small_root, tmp_path):
    reference_dir, reference = in_process_run
    result = train(hil_config(nmnist_small_root, **{"fixed_point.evaluator": EVALUATOR}), tmp_path / "hil", progress=False)
    _assert_same_run(tmp_path / "hil", reference_dir)
    assert result.test_accuracy == reference.test_accuracy
    fitness = [line["fitness_mean"] for line in read_metrics(reference_dir)]
    assert fitness[-1] > fitness[0]  # it learned something, so identical runs are not trivially identical


@pytest.mark.parametrize(
    "mode, message",
    [
        ("crash", "exited with status 3"),
        pytest.param("hang", "did not answer", marks=pytest.mark.slow),  # a train() each: long on a shared CPU
        pytest.param("garbage", "not a protocol message", marks=pytest.mark.slow),
    ],
)
def test_a_failing_evaluator_stops_with_a_clear_error_keeps_the_checkpoint_and_resume_is_exact(
    mode, message, in_process_run, nmnist_small_root, tmp_path
):
    run_dir = tmp_path / "run"
    failing = f"{EVALUATOR} --fail-after 7 --fail-mode {mode}"  # fails in generation 8
    config = hil_config(nmnist_small_root, **{"fixed_point.evaluator": failing, "fixed_point.evaluator_timeout_s": 3.0})
    with pytest.raises(EvaluatorError, match=message) as caught:
        train(config, run_dir, progress=False)
    assert "--fail-after" in str(caught.value) and "--resume" in str(caught.value)
    assert latest_valid_checkpoint(run_dir / "checkpoints").generation == 5
    assert [line["generation"] for line in read_metrics(run_dir)] == [1, 2, 3, 4, 5]
    if mode != "crash":
        return
    # Resume with a healthy evaluator: the run ends exactly as the uninterrupted in-process run.
    resumed = apply_overrides(config, {"fixed_point.evaluator": EVALUATOR})
    train(resumed, run_dir, resume=True, progress=False)
    _assert_same_run(run_dir, in_process_run[0])


def test_whole_test_split_of_a_trained_run_is_bit_identical_in_the_reference_and_a_flipped_weight_is_found(
    in_process_run, nmnist_small_root, tmp_path
):
    from eggroll_snn.integer.check import check_run

    run_dir = in_process_run[0]
    report = check_run(run_dir)
    assert report["recordings"] == 100 and report["identical"] and report["mismatches"] == 0
    assert report["spikes_compared"] == 100 * 4 * 16 and report["accuracy_jax"] == report["accuracy_reference"]
    broken = tmp_path / "broken"
    shutil.copytree(run_dir, broken)
    with np.load(broken / "model_fixed_point.npz") as archive:
        arrays = {name: archive[name] for name in archive.files}
    arrays["layer1_weight"][3, :] = 127  # one read-out row at the largest weight
    np.savez(broken / "model_fixed_point.npz", **arrays)
    report = check_run(broken)
    assert not report["identical"] and report["mismatches"] > 100


def test_nir_export_of_a_fixed_point_run_carries_its_integers_and_arithmetic(in_process_run, tmp_path):
    import json

    import nir

    from eggroll_snn.export import export_run

    run_dir = in_process_run[0]
    # The float graph only approximates the integer arithmetic: its agreement is reported, not required.
    exported = export_run(run_dir, tmp_path / "model.nir", force=True)
    assert exported.report["recordings"] > 0 and 0.0 <= exported.report["prediction_agreement"] <= 1.0
    graph = nir.read(tmp_path / "model.nir")
    record = json.loads(graph.metadata["fixed_point"])
    assert (record["threshold"], record["leak"], record["membrane_leak"]) == (128, "shift", 3)
    integers = _integer_model(run_dir)
    np.testing.assert_array_equal(graph.metadata["fixed_point_layer0_weight"], integers["layer0_weight"])
    np.testing.assert_array_equal(graph.nodes["affine_1"].weight, integers["layer0_weight"] / 128)
    np.testing.assert_allclose(graph.nodes["cubalif_1"].v_threshold, 1.0)
    # Reset by subtraction is the recurrent edge -beta * theta, with the shift leak's effective beta.
    np.testing.assert_allclose(np.diag(graph.nodes["rec_1"].weight), -0.875)


def test_protocol_refuses_bytes_that_are_not_a_message():
    message = encode({"type": "readout"}, {"readout": np.arange(6, dtype=np.int32).reshape(2, 3)})
    header, arrays = decode_payload(message[16:])
    assert header == {"type": "readout"} and arrays["readout"].tolist() == [[0, 1, 2], [3, 4, 5]]
    with pytest.raises(ProtocolError, match="does not start with"):
        decode_prefix(b"HTTP/1.1 200 OK\r\n"[:16])
    with pytest.raises(ProtocolError, match="more than the limit"):
        decode_prefix(b"ESNNHIL1" + (2**40).to_bytes(8, "little"))
    with pytest.raises(ProtocolError, match="not an npz archive"):
        decode_payload(b"\x00" * 32)

    class Stream:
        def __init__(self, data):
            self.data = data

        def read(self, count):
            chunk, self.data = self.data[:count], self.data[count:]
            return chunk

    with pytest.raises(ProtocolError, match="ended after"):
        read_message(Stream(message[:-5]))
    assert read_message(Stream(b"")) is None


def _request(population: int = 4, batch: int = 2, time_bins: int = 3) -> dict:
    """A small, valid evaluate request: 5 inputs, 3 hidden neurons, 2 classes, rank 1."""
    rng = np.random.default_rng(0)
    arrays = {"frames": rng.integers(0, 3, (batch, time_bins, 5)).astype(np.int8)}
    for index, (rows, columns) in enumerate(((3, 5), (2, 3))):
        arrays[f"layer{index}_weight"] = rng.integers(-60, 60, (rows, columns)).astype(np.int8)
        arrays[f"layer{index}_bias"] = np.zeros(rows, np.int8)
        arrays[f"layer{index}_a"] = rng.integers(-2, 3, (population, rows, 1)).astype(np.int8)
        arrays[f"layer{index}_b"] = rng.integers(-2, 3, (population, columns, 1)).astype(np.int8)
        arrays[f"layer{index}_sign"] = np.resize(np.array([1, -1], np.int8), population)
    return arrays


ARITHMETIC = {
    "threshold": 128, "state_bits": 16, "leak": "shift", "membrane_leak": 3, "synapse_leak": 0, "readout_leak": 0,
    "reset": "subtract", "layers": 2,
}


@pytest.mark.parametrize(
    "mode, message",
    [
        ("stale", "with a reply to request 1 (a stale or repeated reply)"),
        ("huge", "a read-out value of magnitude 2147483647, beyond 98304"),
        ("wide", "a read-out value of magnitude 2147483653, beyond 98304"),
    ],
)
def test_an_evaluator_reply_out_of_order_or_out_of_range_is_refused(mode, message):
    from eggroll_snn.integer.hil.client import ExternalEvaluator

    evaluator = ExternalEvaluator(f"{EVALUATOR} --fail-after 1 --fail-mode {mode}", ARITHMETIC, timeout_s=30.0)
    try:
        first = evaluator.evaluate(_request(), (4, 2, 2))  # a correct reply
        assert first.shape == (4, 2, 2) and np.abs(first).max() <= 3 * 2**15
        with pytest.raises(EvaluatorError, match=re.escape(message)) as caught:
            evaluator.evaluate(_request(), (4, 2, 2))
        assert "\n" not in str(caught.value) and "request 2" in str(caught.value)
    finally:
        evaluator.close(kill=True)


def test_an_evaluator_failing_its_greeting_says_that_training_did_not_start():
    from eggroll_snn.integer.hil.client import ExternalEvaluator

    with pytest.raises(EvaluatorError, match="Training did not start") as caught:
        ExternalEvaluator(f"{sys.executable} -c 'import sys; sys.exit(4)'", ARITHMETIC, timeout_s=30.0)
    assert "checkpoint" not in str(caught.value)
