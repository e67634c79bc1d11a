"""Crash safety: SIGKILL/SIGINT during training, then resume, equals an uninterrupted run.

The short campaign here (3 SIGKILL trials, 1 SIGINT trial) runs eggroll_snn.tools.fault_injection's
library functions on the real N-MNIST subset; the full 20-trial campaign is marked slow.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import jax.numpy as jnp
import pytest

from eggroll_snn import atomic_files, checkpoint
from eggroll_snn.tools import fault_injection



def _dead_pid() -> int:
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


# --------------------------------------------------------------------------------------------
# What a killed writer leaves behind is cleaned up by the next write


def test_atomic_write_removes_only_dead_writers_temporary_files(tmp_path):
    target = tmp_path / "summary.json"
    dead = tmp_path / f".summary.json.tmp-{_dead_pid()}"
    dead.write_bytes(b"half a file")
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        live = tmp_path / f".summary.json.tmp-{sleeper.pid}"
        live.write_bytes(b"another writer, still running")
        other = tmp_path / f".config.toml.tmp-{_dead_pid()}"
        other.write_bytes(b"another target")
        atomic_files.atomic_write_text(target, "{}\n")
        assert target.read_text() == "{}\n"
        assert not dead.exists()  # its writer is gone: removed
        assert live.exists()  # its writer runs: untouched
        assert other.exists()  # a different target's file: left for that target's next write
    finally:
        sleeper.kill()
        sleeper.wait()


def test_save_checkpoint_removes_a_lone_npz_and_stale_temporaries(tmp_path):
    tree = {"w": jnp.arange(6, dtype=jnp.float32).reshape(2, 3)}
    folder = tmp_path / "checkpoints"
    for generation in (1, 2, 3):
        checkpoint.save_checkpoint(folder, generation, tree, {"train": {"seed": 0}}, keep=2)
    # a kill between deleting gen 1's description and its arrays, and one inside a write
    shutil.copy(folder / "gen-00000002.npz", folder / "gen-00000001.npz")
    (folder / f".gen-00000009.npz.tmp-{_dead_pid()}").write_bytes(b"torn")
    checkpoint.save_checkpoint(folder, 4, tree, {"train": {"seed": 0}}, keep=2)
    assert sorted(path.name for path in folder.iterdir()) == [
        "gen-00000003.json", "gen-00000003.npz", "gen-00000004.json", "gen-00000004.npz",
    ]


# --------------------------------------------------------------------------------------------
# The comparison can fail


@pytest.fixture(scope="module")
def short_campaign(nmnist_small_root, tmp_path_factory):
    """3 SIGKILL trials (one kill each) and 1 SIGINT trial on 120 generations: about 30-60 s."""
    work_dir = tmp_path_factory.mktemp("fault-injection")
    summary = fault_injection.run_campaign(
        work_dir, nmnist_small_root, trials=3, sigint_trials=1, seed=1, generations=120, max_kills=1,
        time_limit_s=240.0, log=lambda line: None,
    )
    return work_dir, summary


def test_compare_runs_reports_duplicated_missing_and_changed(short_campaign, tmp_path):
    work_dir, _ = short_campaign
    reference = work_dir / "reference"
    assert fault_injection.compare_runs(reference, work_dir / "control") == []

    duplicated = tmp_path / "duplicated"
    shutil.copytree(reference, duplicated)
    lines = (duplicated / "metrics.jsonl").read_text().splitlines(keepends=True)
    (duplicated / "metrics.jsonl").write_text("".join(lines[:10] + lines[9:]))
    assert any("duplicated generations [10]" in d for d in fault_injection.compare_runs(reference, duplicated))

    missing = tmp_path / "missing"
    shutil.copytree(reference, missing)
    (missing / "metrics.jsonl").write_text("".join(lines[:10] + lines[11:]))
    assert any("missing [11]" in d for d in fault_injection.compare_runs(reference, missing))

    timing_only = tmp_path / "timing-only"
    shutil.copytree(reference, timing_only)
    records = [json.loads(line) for line in lines]
    for record in records:
        record["wall_time_s"] += 1.0
    (timing_only / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    assert fault_injection.compare_runs(reference, timing_only) == []
    records[5]["fitness_mean"] += 1e-7
    (timing_only / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    assert any("generation 6 differs" in d for d in fault_injection.compare_runs(reference, timing_only))

    changed = tmp_path / "changed"
    shutil.copytree(reference, changed)
    data = bytearray((changed / "model.npz").read_bytes())
    data[-200] ^= 1
    (changed / "model.npz").write_bytes(bytes(data))
    (changed / "checkpoints" / ".gen-00000004.npz.tmp-1").write_bytes(b"")
    differences = fault_injection.compare_runs(reference, changed)
    assert "model.npz: bytes differ" in differences
    assert any("extra ['checkpoints/.gen-00000004.npz.tmp-1']" in d for d in differences)


# --------------------------------------------------------------------------------------------
# The campaigns


def test_killed_and_resumed_runs_equal_the_uninterrupted_run(short_campaign):
    _, summary = short_campaign
    figures = summary.figures()
    assert figures["control_identical"]
    assert figures["trials"] == 3 and figures["sigkills"] == 3
    assert figures["survived"] == 3 and figures["identical"] == 3
    assert figures["torn_checkpoints"] == 0
    assert figures["resumed_sessions"] >= 1
    for trial in summary.trials:
        assert trial.sessions[-1].returncode == 0 and all(s.returncode == -9 for s in trial.sessions[:-1])


def test_ctrl_c_writes_a_checkpoint_and_resumes_identically(short_campaign):
    _, summary = short_campaign
    (trial,) = summary.sigint_trials
    interrupted, resumed = trial.sessions
    assert interrupted.returncode == 130 and "interrupted" in interrupted.output
    assert resumed.returncode == 0 and resumed.command == "resume"
    assert trial.identical, trial.differences
    assert summary.ok


@pytest.mark.slow
def test_twenty_kill_trials_all_identical(nmnist_small_root, tmp_path):
    summary = fault_injection.run_campaign(
        tmp_path, nmnist_small_root, trials=20, sigint_trials=2, seed=0, time_limit_s=900.0, log=lambda line: None
    )
    figures = summary.figures()
    assert figures["trials"] == 20 and figures["identical"] == 20, [t.differences for t in summary.trials]
    assert figures["sigkills"] >= 20 and figures["torn_checkpoints"] == 0
    assert summary.ok
