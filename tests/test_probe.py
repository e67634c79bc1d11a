"""Situations an outside probe found wrong: each now ends in one clear line, or in the right result.

(Reply checks of hardware in the loop: test_hil.py; the frame cache's checksum: test_cache.py; tonic
timestamps: test_tonic_source.py; multi-device runs equal to one device: test_distributed.py.)
"""

from __future__ import annotations

import json
import os
import shlex
import signal
import subprocess
import sys

import pytest

from eggroll_snn.cli import main
from eggroll_snn.run_folder import RunLock, TIMING_FIELDS, read_metrics
from eggroll_snn.tools.fault_sessions import interruptible_cli

from test_failures import FAST, one_error_line

EVALUATOR = f"{shlex.quote(sys.executable)} -m eggroll_snn.integer.hil.reference_evaluator"
TINY = [*FAST, "--set", "train.eval_every=2", "--set", "train.checkpoint_every=2", "--set", "train.generations_per_call=2"]
FIXED_POINT = [
    "--set", "network.neuron=fixed_point", "--hidden", "16", "--population-size", "16", "--rank", "2", "--batch-size", "32",
    "--generations", "10", "--set", "train.eval_every=5", "--set", "train.checkpoint_every=5",
    "--set", "train.generations_per_call=5", "--set", "train.eval_batch_size=128", "--no-progress",
]


def _train(root, out, *options) -> list[str]:
    return ["train", "--data", str(root), "--out", str(out), *options]


# 1. one run folder, one training
def test_a_second_training_into_a_folder_in_use_is_refused_naming_the_first(nmnist_small_root, tmp_path, capsys):
    run = tmp_path / "run"
    with RunLock(run):  # as a training in progress holds it
        assert main(_train(nmnist_small_root, run, "--generations", "2", *TINY)) == 1
        line = one_error_line(capsys.readouterr().err)
    assert f"run folder {run} is in use by another training (process {os.getpid()} on " in line
    assert not (run / "config.toml").exists() and not (run / "metrics.jsonl").exists()


def test_a_lock_left_by_a_killed_training_does_not_block_the_folder(nmnist_small_root, tmp_path, capsys):
    run = tmp_path / "run"
    holder = subprocess.Popen(
        [sys.executable, "-c", f"from eggroll_snn.run_folder import RunLock; lock = RunLock({str(run)!r}).__enter__(); "
         "print('held', flush=True); import time; time.sleep(60)"],
        stdout=subprocess.PIPE, text=True,
    )
    assert holder.stdout.readline().strip() == "held"
    holder.kill()  # kill -9 releases the lock with the process
    holder.wait()
    assert main(_train(nmnist_small_root, run, "--generations", "2", *TINY)) == 0


def test_a_metrics_log_that_mixes_two_runs_is_refused_by_plot_and_resume(nmnist_small_root, tmp_path, capsys):
    run = tmp_path / "run"
    assert main(_train(nmnist_small_root, run, "--generations", "4", *TINY)) == 0
    lines = (run / "metrics.jsonl").read_text().splitlines()
    (run / "metrics.jsonl").write_text("\n".join(lines[:3] + lines[:2] + lines[3:]) + "\n")  # 1 2 3 1 2 4
    capsys.readouterr()
    for command in (["plot", str(run)], ["train", "--resume", str(run), "--generations", "6"]):
        assert main(command) == 1
        line = one_error_line(capsys.readouterr().err)
        assert "line 4 holds generation 1 where generation 4 belongs; the log mixes runs" in line


# 5, 7. hardware in the loop: a failure and a Ctrl-C from the command line
def test_an_evaluator_failure_is_one_line_without_the_callback_traceback(nmnist_small_root, tmp_path, capsys):
    failing = f"fixed_point.evaluator={EVALUATOR} --fail-after 7"
    assert main(_train(nmnist_small_root, tmp_path / "run", *FIXED_POINT, "--set", failing)) == 1
    line = one_error_line(capsys.readouterr().err)
    assert "exited with status 3 during evaluate request 8" in line and "--resume" in line


def test_ctrl_c_during_hardware_in_the_loop_exits_130_with_a_checkpoint_and_resumes_exactly(nmnist_small_root, tmp_path):
    run, reference = tmp_path / "run", tmp_path / "reference"
    assert main(_train(nmnist_small_root, reference, *FIXED_POINT, "--set", f"fixed_point.evaluator={EVALUATOR}")) == 0
    hanging = f"fixed_point.evaluator={EVALUATOR} --fail-after 7 --fail-mode hang"
    command = interruptible_cli(*_train(nmnist_small_root, run, *FIXED_POINT, "--set", hanging))
    # Its own process group, SIGINT handled (a shell's background job would ignore it), as a terminal's Ctrl-C.
    child = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    checkpoint = run / "checkpoints" / "gen-00000005.json"
    for _ in range(600):  # the first chunk is done and the evaluator hangs in generation 8
        if checkpoint.exists() or child.poll() is not None:
            break
        subprocess.run(["sleep", "0.1"])
    subprocess.run(["sleep", "1"])
    os.killpg(child.pid, signal.SIGINT)
    out, err = child.communicate(timeout=60)
    assert child.returncode == 130, err
    assert "Traceback" not in err and "interrupted: a checkpoint was written" in out
    assert [line["generation"] for line in read_metrics(run)] == [1, 2, 3, 4, 5]
    assert main(["train", "--resume", str(run), "--set", f"fixed_point.evaluator={EVALUATOR}"]) == 0
    strip = lambda records: [{k: v for k, v in r.items() if k not in TIMING_FIELDS} for r in records]  # noqa: E731
    assert strip(read_metrics(run)) == strip(read_metrics(reference))


# 8. an unbalanced quote in the evaluator command
def test_an_evaluator_command_with_an_unbalanced_quote_is_one_line_and_no_folder(tmp_path, capsys):
    assert main(["train", "--set", "network.neuron=fixed_point", "--set", "fixed_point.evaluator=python -c 'print(1)",
                 "--out", str(tmp_path / "run")]) == 1
    line = one_error_line(capsys.readouterr().err)
    assert "option fixed_point.evaluator" in line and "balanced quotes" in line
    assert not (tmp_path / "run").exists()


# 9. a byte that is not UTF-8 in metrics.jsonl
def test_a_non_utf8_byte_in_the_metrics_log_is_one_line_for_plot_and_resume(nmnist_small_root, tmp_path, capsys):
    run = tmp_path / "run"
    assert main(_train(nmnist_small_root, run, "--generations", "4", *TINY)) == 0
    data = bytearray((run / "metrics.jsonl").read_bytes())
    data[5] = 0xFF  # inside the first line
    (run / "metrics.jsonl").write_bytes(bytes(data))
    capsys.readouterr()
    for command in (["plot", str(run)], ["train", "--resume", str(run), "--generations", "6"]):
        assert main(command) == 1
        assert "line 1 is not UTF-8 text; the metrics log is corrupt" in one_error_line(capsys.readouterr().err)


# 10. data info on a tonic data set
def test_data_info_says_it_reads_nmnist_folders_only(tmp_path, capsys):
    assert main(["data", "info", f"tonic:SHD:{tmp_path}"]) == 1
    line = one_error_line(capsys.readouterr().err)
    assert "data info reads N-MNIST folders only" in line and f"--data tonic:SHD:{tmp_path}" in line


# 11. the smaller messages
def test_plot_of_a_read_only_run_writes_where_out_says(nmnist_small_root, tmp_path, capsys):
    run = tmp_path / "run"
    assert main(_train(nmnist_small_root, run, "--generations", "2", *TINY)) == 0
    assert main(["plot", str(run), "--out", str(tmp_path / "plots")]) == 0
    assert sorted(path.name for path in (tmp_path / "plots").iterdir()) == ["plot_generation.png", "plot_wall_time.png"]


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_resuming_a_read_only_run_names_the_folder(nmnist_small_root, tmp_path, capsys):
    run = tmp_path / "run"
    assert main(_train(nmnist_small_root, run, "--generations", "2", *TINY)) == 0
    (run / ".lock").unlink()
    run.chmod(0o555)
    try:
        capsys.readouterr()
        assert main(["train", "--resume", str(run), "--generations", "4"]) == 1
        line = one_error_line(capsys.readouterr().err)
        assert f"cannot write to the run folder {run}" in line and ".tmp" not in line
    finally:
        run.chmod(0o755)


def test_a_bad_command_line_option_is_attributed_to_it_not_to_the_config_file(tmp_path, capsys):
    config = tmp_path / "run.toml"
    config.write_text("[train]\ngenerations = 10\n")
    assert main(["train", "--config", str(config), "--set", "strategy.sigma=-1", "--out", str(tmp_path / "run")]) == 1
    line = one_error_line(capsys.readouterr().err)
    assert "command-line option strategy.sigma: option strategy.sigma = -1" in line and str(config) not in line


# 12. log lines carry the latest validation accuracy
def test_log_lines_show_the_latest_validation_accuracy_and_its_generation(nmnist_small_root, tmp_path, capsys):
    progress = [arg for arg in TINY if arg != "--no-progress"] + ["--set", "train.generations_per_call=1"]
    assert main(_train(nmnist_small_root, tmp_path / "run", "--generations", "5", *progress)) == 0
    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith("generation ")]
    validations = json.loads("[" + ",".join((tmp_path / "run" / "metrics.jsonl").read_text().splitlines()) + "]")
    at_two = next(record["validation_accuracy"] for record in validations if record["generation"] == 2)
    assert "val acc -" in lines[0]  # generation 1: no validation yet
    assert f"val acc {at_two:.3f} (generation 2)" in lines[1] and f"val acc {at_two:.3f} (generation 2)" in lines[2]
