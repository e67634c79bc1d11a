"""Scale-out: the population sharded over devices and processes gives the single-device result.

The multi-device checks run in child processes: XLA's forced CPU device count
(``--xla_force_host_platform_device_count``) must be set before JAX starts, and
``jax.distributed`` needs processes of its own. Run as ``python tests/test_distributed.py
child OUT_DIR ROOT``, this file is that child (4 forced CPU devices) and writes its findings to
``OUT_DIR/child.json``.
"""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from eggroll_snn import distributed
from eggroll_snn.cli import build_parser
from eggroll_snn.errors import ConfigError
from eggroll_snn.run_folder import TIMING_FIELDS

FORCED_DEVICES = 4
#: The tiny run every check shares: 17 x 17 frames, 4 bins, 16 hidden neurons, 16 members.
#: The learning rate is constant: the sharded run stops its first leg with ``train.generations = 4``,
#: and a decaying schedule spans ``train.generations``, so its first four steps would differ.
TINY = {
    # Chunks of 4 members (the budget's fit) on 1, 2 and 4 devices alike: the same shapes everywhere.
    "train.memory_budget_mb": 0.2,
    "strategy.learning_rate_schedule": "constant",
    "data.num_time_bins": 4,
    "network.hidden_sizes": [16],
    "strategy.population_size": 16,
    "strategy.rank": 2,
    "train.generations": 8,
    "train.batch_size": 32,
    "train.eval_every": 4,
    "train.checkpoint_every": 4,
    "train.generations_per_call": 4,
    "train.eval_batch_size": 128,
}
TIMING = ("seconds_per_generation", "wall_time_s")


def _final_checkpoint_arrays(run_dir: Path) -> dict[str, np.ndarray]:
    """Every array of the newest checkpoint (strategy state, best parameters, key) by name."""
    from eggroll_snn import checkpoint

    found = checkpoint.latest_valid_checkpoint(Path(run_dir) / "checkpoints")
    with np.load(found.npz_path) as arrays:
        return {name: arrays[name] for name in arrays.files}


def _metrics(run_dir: Path) -> list[dict]:
    from eggroll_snn.run_folder import read_metrics

    return [{k: v for k, v in line.items() if k not in TIMING} for line in read_metrics(run_dir)]


# --------------------------------------------------------------------------------------------
# The child process (4 forced CPU devices)


def _child(out_dir: Path, root: str) -> None:
    import jax
    import jax.numpy as jnp

    from eggroll_snn.network import init_params
    from eggroll_snn.config import TrainConfig, apply_overrides
    from eggroll_snn.errors import TrainingError
    from eggroll_snn.strategies import Objective
    from eggroll_snn.training import make_generation_step, strategy_from_config, train
    from eggroll_snn.training.evaluators import sharded_population

    def config(**changes):
        return apply_overrides(TrainConfig(), {"data.root": root, **TINY, **changes})

    found = {"device_count": jax.device_count()}
    # One device for all 8 generations; 4 devices for 4, resumed on 2 devices for the last 4.
    train(config(**{"train.devices": 1}), out_dir / "one", progress=False)
    train(config(**{"train.devices": 4, "train.generations": 4}), out_dir / "sharded", progress=False)
    train(config(**{"train.devices": 2}), out_dir / "sharded", resume=True, progress=False)

    try:
        train(config(**{"train.devices": 4, "strategy.population_size": 18}), out_dir / "odd", progress=False)
    except ConfigError as error:
        found["indivisible_error"] = str(error)
        found["indivisible_left_folder"] = (out_dir / "odd").exists()

    # The compiled sharded chunk: its collectives, and a replica that drifts by one ulp.
    cfg = config(**{"train.devices": 4, "train.batch_size": 8})
    network, strategy = cfg.network_config(), strategy_from_config(cfg)
    population = sharded_population(cfg, network, strategy)
    state = strategy.init(jax.random.key(1), init_params(jax.random.key(0), network))
    frames = jax.random.randint(jax.random.key(2), (24, 4, 2, 17, 17), 0, 3).astype(jnp.uint8)
    labels = jnp.arange(24, dtype=jnp.int32) % 10
    step = make_generation_step(strategy, Objective(network, population.evaluate), cfg.train, jax.random.key(3))
    chunk = population.compile_chunk(step, state, frames, labels, 3)
    found["collectives"] = [
        match.group(1) + " " + match.group(2)
        for match in re.finditer(
            r"= (\w+\[[\d,]*\])\S* (all-gather|all-reduce|collective-permute|all-to-all|reduce-scatter)",
            chunk.compiled.as_text(),
        )
    ]
    stepped, _ = chunk(state, frames, labels)
    found["clean_generation"] = int(stepped.generation)

    weight = state.params["layers"][0]["weight"]
    drifted = np.array(weight)
    drifted[3, 5] = np.nextafter(drifted[3, 5], np.float32(np.inf))
    copies = [jax.device_put(drifted if index == 2 else weight, device) for index, device in enumerate(population.mesh.devices.flat)]
    corrupt_weight = jax.make_array_from_single_device_arrays(weight.shape, population.replicated, copies)
    params = jax.tree_util.tree_map(lambda leaf: leaf, state.params)
    params["layers"][0]["weight"] = corrupt_weight
    corrupt = population.replicate(state._replace(params=params))
    try:
        chunk(corrupt, frames, labels)
    except TrainingError as error:
        found["drift_error"] = str(error)
    (out_dir / "child.json").write_text(json.dumps(found))


# --------------------------------------------------------------------------------------------
# Multi-device tests (one child run shared by the tests below)


@pytest.fixture(scope="module")
def child(nmnist_small_root, tmp_path_factory):
    out_dir = tmp_path_factory.mktemp("distributed")
    env = {**os.environ, "XLA_FLAGS": f"--xla_force_host_platform_device_count={FORCED_DEVICES}", "JAX_PLATFORMS": "cpu"}
    done = subprocess.run(
        [sys.executable, __file__, "child", str(out_dir), str(nmnist_small_root)],
        env=env, capture_output=True, text=True, timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return out_dir, json.loads((out_dir / "child.json").read_text())


def test_sharded_run_gives_the_single_device_parameters_exactly(child):
    out_dir, found = child
    assert found["device_count"] == FORCED_DEVICES
    one, sharded = _final_checkpoint_arrays(out_dir / "one"), _final_checkpoint_arrays(out_dir / "sharded")
    assert sorted(one) == sorted(sharded) and len(one) > 8
    # Tolerance zero: every device runs the single-device ask/tell on the gathered fitness, and
    # the member losses agree to the last bit or two, which centred ranks do not see.
    for name in one:
        np.testing.assert_array_equal(sharded[name], one[name], err_msg=name)


def test_sharded_run_logs_the_single_device_metrics(child):
    out_dir, _ = child
    one, sharded = _metrics(out_dir / "one"), _metrics(out_dir / "sharded")
    assert [line["generation"] for line in sharded] == list(range(1, 9))
    # Each member's loss is formed inside its chunk, and the chunks have the same shapes on one
    # device and on four; as the parameters' test says, a member's loss may still differ in its
    # last bit or two (at sigma 0.1 one generation's best fitness did), so floats agree to 2 ulp
    # (sigma and learning rate included) and the generations and counts exactly.
    assert len(one) == len(sharded)
    for a, b in zip(one, sharded):
        assert a.keys() == b.keys()
        for key in a.keys() - set(TIMING_FIELDS):
            if isinstance(a[key], float):
                np.testing.assert_allclose(b[key], a[key], rtol=2.5e-7, atol=0, err_msg=key)
            else:
                assert b[key] == a[key], key


def test_only_the_member_results_and_the_checksums_cross_devices(child):
    _, found = child
    n = TINY["strategy.population_size"]
    # Per generation one all-gather of (loss, accuracy) of the N members; per call one of the
    # D state checksums. Nothing of parameter size.
    assert sorted(found["collectives"]) == sorted([f"f32[2,{n}] all-gather", f"u32[{FORCED_DEVICES}] all-gather"])
    assert found["clean_generation"] == 3


def test_population_not_divisible_by_the_devices_is_a_config_error(child):
    _, found = child
    message = found["indivisible_error"]
    assert "strategy.population_size = 18" in message and "4 devices" in message and "multiple of 4" in message
    assert not found["indivisible_left_folder"]


def test_a_drifted_replica_stops_training(child):
    _, found = child
    message = found["drift_error"]
    assert "drifted apart between generations 0 and 3" in message
    # device 2, and only device 2, is named as the odd one
    assert "the state checksum of cpu:2 (process 0) differs from that of cpu:0" in message


# --------------------------------------------------------------------------------------------
# Two processes through jax.distributed


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_two_processes_give_the_single_process_parameters(child, nmnist_small_root):
    out_dir, _ = child
    run_dir = out_dir / "two-processes"
    flags = [f"--set={key}={json.dumps(value)}" for key, value in TINY.items()]
    command = [sys.executable, "-m", "eggroll_snn.cli", "train", "--data", str(nmnist_small_root), *flags,
               "--devices", "all", "--out", str(run_dir), "--no-progress",
               "--coordinator-address", f"127.0.0.1:{_free_port()}", "--num-processes", "2"]
    env = {key: value for key, value in os.environ.items() if key != "XLA_FLAGS"}  # one CPU device each
    env["JAX_PLATFORMS"] = "cpu"
    processes = [
        subprocess.Popen([*command, "--process-id", str(index)], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        for index in range(2)
    ]
    outputs = [process.communicate(timeout=300)[0] for process in processes]
    assert [process.returncode for process in processes] == [0, 0], "\n".join(outputs)[-3000:]
    reference = _final_checkpoint_arrays(out_dir / "one")
    for folder in (run_dir, run_dir / "process-1"):
        arrays = _final_checkpoint_arrays(folder)
        assert sorted(arrays) == sorted(reference)
        for name in reference:
            np.testing.assert_array_equal(arrays[name], reference[name], err_msg=f"{folder}: {name}")
    assert _metrics(run_dir) == _metrics(run_dir / "process-1")
    assert f"run folder: {run_dir / 'process-1'}" in outputs[1]


# --------------------------------------------------------------------------------------------
# In-process checks (one device)


def test_members_per_device_splits_evenly_or_names_the_fix():
    assert distributed.members_per_device(256, 8) == 32
    assert distributed.members_per_device(18, 6) == 3  # an antithetic pair may straddle devices
    with pytest.raises(ConfigError, match=r"population_size = 250 .* 8 devices.*multiple of 8 \(e.g. 248 or 256\)"):
        distributed.members_per_device(250, 8)


def test_more_devices_than_visible_is_a_config_error():
    import jax

    available = jax.device_count()
    with pytest.raises(ConfigError, match=rf"train.devices = {available + 1}, but only {available}"):
        distributed.select_devices(available + 1)
    assert distributed.select_devices(0) == jax.devices()


def test_checksum_sees_one_ulp_and_ignores_nothing():
    import jax
    import jax.numpy as jnp

    tree = {"w": jnp.linspace(-1, 1, 12, dtype=jnp.float32).reshape(3, 4), "n": jnp.int32(7), "k": jax.random.key(3)}
    base = int(distributed.tree_checksum(tree))
    assert base == int(jax.jit(distributed.tree_checksum)(tree))
    bumped = dict(tree, w=tree["w"].at[1, 2].set(jnp.nextafter(tree["w"][1, 2], 2.0)))
    assert int(distributed.tree_checksum(bumped)) != base
    assert int(distributed.tree_checksum(dict(tree, n=jnp.int32(8)))) != base
    assert int(distributed.tree_checksum(dict(tree, k=jax.random.key(4)))) != base
    # the sum of bit patterns mod 2^32, leaf l weighted by 2l + 1 (leaves in key order: k, n, w)
    bits = [np.asarray(jax.random.key_data(tree["k"])).astype(np.uint64), np.array([7], np.uint64),
            np.asarray(tree["w"]).view(np.uint32).astype(np.uint64)]
    assert base == sum((2 * i + 1) * int(b.sum()) for i, b in enumerate(bits)) % 2**32


def test_options_come_from_flags_then_environment():
    environ = {"JAX_COORDINATOR_ADDRESS": "node0:1234", "JAX_NUM_PROCESSES": "4", "JAX_PROCESS_ID": "2"}
    options = distributed.DistributedOptions.from_environment(environ, process_id=3)
    assert options == distributed.DistributedOptions("node0:1234", 4, 3)
    assert options.requested({})
    assert not distributed.DistributedOptions().requested({})
    assert not distributed.DistributedOptions(num_processes=1).requested({})
    slurm = {"SLURM_PROCID": "0", "SLURM_NTASKS": "8", "SLURM_STEP_NUM_TASKS": "8"}
    assert distributed.DistributedOptions().requested(slurm)
    assert not distributed.DistributedOptions().requested({**slurm, "SLURM_STEP_NUM_TASKS": "1"})
    with pytest.raises(ConfigError, match="JAX_NUM_PROCESSES='four' is not an integer"):
        distributed.DistributedOptions.from_environment({"JAX_NUM_PROCESSES": "four"})


def test_impossible_process_options_are_config_errors():
    with pytest.raises(ConfigError, match=r"--process-id 2 is out of range: it must lie in 0..1"):
        distributed.initialize(distributed.DistributedOptions("127.0.0.1:1", 2, 2))
    with pytest.raises(ConfigError, match="--num-processes 0"):
        distributed.initialize(distributed.DistributedOptions(num_processes=0))


def test_devices_flag_reads_all_or_a_count(capsys):
    parser = build_parser()
    assert parser.parse_args(["train", "--devices", "all"]).devices == 0
    assert parser.parse_args(["train", "--devices", "8"]).devices == 8
    for bad in ("0", "many"):
        with pytest.raises(SystemExit):
            parser.parse_args(["train", "--devices", bad])
        assert "is not 'all' or a positive number of devices" in capsys.readouterr().err


def test_a_method_without_population_cannot_be_sharded(nmnist_small_root, tmp_path, monkeypatch):
    from eggroll_snn.config import TrainConfig, apply_overrides
    from eggroll_snn.training.evaluators import sharded_population
    from eggroll_snn.training.step import strategy_from_config

    config = apply_overrides(
        TrainConfig(), {"data.root": str(nmnist_small_root), "train.devices": 2, "strategy.method": "bptt", "train.generations": 10}
    )
    monkeypatch.setattr(distributed, "select_devices", lambda count: ["cpu:0", "cpu:1"])
    with pytest.raises(ConfigError, match="strategy.method = 'bptt' has no population"):
        sharded_population(config, config.network_config(), strategy_from_config(config))


if __name__ == "__main__" and sys.argv[1:2] == ["child"]:
    _child(Path(sys.argv[2]), sys.argv[3])
