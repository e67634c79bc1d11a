"""Failures a user can cause (issue 15): each ends in one clear line, exit code 1, nothing lost or left behind."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from eggroll_snn.cli import main
from eggroll_snn.data.cache import remove_stale_temp_files

FAST = ["--time-bins", "2", "--hidden", "8", "--population-size", "4", "--rank", "1", "--batch-size", "8",
        "--set", "train.eval_batch_size=64", "--no-progress"]


@pytest.fixture
def tiny_tmpfs(tmp_path):
    """A 1 MB tmpfs folder (root only); skipped where mounting is impossible."""
    folder = tmp_path / "full"
    folder.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(folder)], capture_output=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs (needs root): {done.stderr.decode().strip()}")
    yield folder
    subprocess.run(["umount", str(folder)], check=True)


def one_error_line(err: str) -> str:
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("eggroll-snn: error: "), err
    assert "Traceback" not in err
    return lines[0]


def test_frame_cache_on_a_full_disk_is_one_line_and_leaves_no_temp_file(tiny_tmpfs, nmnist_small_root, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("EGGROLL_SNN_CACHE", str(tiny_tmpfs))
    code = main(["train", "--data", str(nmnist_small_root), "--generations", "1", "--out", str(tmp_path / "run"), *FAST])
    line = one_error_line(capsys.readouterr().err)
    assert code == 1
    assert str(tiny_tmpfs / "frames") in line and "No space left" in line
    assert [path.name for path in (tiny_tmpfs / "frames").iterdir() if ".tmp" in path.name] == []
    assert not (tmp_path / "run" / "config.toml").exists()


def test_stale_temp_files_of_dead_writers_are_removed(tmp_path):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead_pid = int(dead.stdout)  # a process that has exited
    stale = tmp_path / f"train-abc.frames.npy.{dead_pid}-{uuid.uuid4().hex[:8]}.tmp.npy"
    live = tmp_path / f"train-abc.frames.npy.{os.getpid()}-{uuid.uuid4().hex[:8]}.tmp.npy"
    stale.write_bytes(b"x")
    live.write_bytes(b"x")
    assert remove_stale_temp_files(tmp_path) == [stale]
    assert not stale.exists() and live.exists()


def small_copy(source: Path, target: Path, per_class: int = 3) -> Path:
    """A data root of links to ``per_class`` recordings per class and split of ``source``."""
    for split in ("Train", "Test"):
        for digit in range(10):
            folder = target / "NMNIST" / split / str(digit)
            folder.mkdir(parents=True)
            for path in sorted((source / "NMNIST" / split / str(digit)).glob("*.bin"))[:per_class]:
                (folder / path.name).symlink_to(path)
    return target


def test_a_broken_test_recording_stops_the_run_before_the_first_generation(nmnist_small_root, tmp_path, capsys):
    root = small_copy(nmnist_small_root, tmp_path / "data")
    broken = root / "NMNIST" / "Test" / "3" / "99999.bin"
    broken.write_bytes(b"\x01\x02")  # not a multiple of 5 bytes
    code = main(["train", "--data", str(root), "--generations", "1", "--out", str(tmp_path / "run"), *FAST])
    line = one_error_line(capsys.readouterr().err)
    assert code == 1 and "99999.bin" in line
    assert not (tmp_path / "run" / "metrics.jsonl").exists() and not (tmp_path / "run" / "config.toml").exists()


def test_read_only_run_folder_is_one_line_naming_it(nmnist_small_root, tmp_path, capsys):
    folder = tmp_path / "ro"
    folder.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m,ro", "tmpfs", str(folder)], capture_output=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs (needs root): {done.stderr.decode().strip()}")
    try:
        code = main(["train", "--data", str(nmnist_small_root), "--generations", "1", "--out", str(folder / "run"), *FAST])
    finally:
        subprocess.run(["umount", str(folder)], check=True)
    line = one_error_line(capsys.readouterr().err)
    assert code == 1 and str(folder / "run") in line and "Read-only" in line


def _without_timing(lines):
    return [{k: v for k, v in line.items() if k not in ("wall_time_s", "seconds_per_generation")} for line in lines]


def test_full_run_folder_keeps_the_checkpoint_and_resumes_exactly(tiny_tmpfs, nmnist_small_root, tmp_path, capsys):
    from eggroll_snn.checkpoint import latest_valid_checkpoint
    from eggroll_snn.run_folder import read_metrics

    common = ["--data", str(nmnist_small_root), *FAST, "--set", "train.checkpoint_every=2",
              "--set", "train.eval_every=2", "--set", "train.generations_per_call=2", "--set", "strategy.learning_rate_schedule=constant"]
    straight = tmp_path / "straight"
    assert main(["train", "--generations", "4", "--out", str(straight), *common]) == 0
    run = tiny_tmpfs / "run"
    assert main(["train", "--generations", "2", "--out", str(run), *common]) == 0
    filler = tiny_tmpfs / "filler"
    with open(filler, "wb", buffering=0) as file:  # fill the disk to the last byte
        try:
            while True:
                file.write(bytes(4096))
                file.flush()
        except OSError:
            pass
    capsys.readouterr()
    code = main(["train", "--resume", str(run), "--generations", "4"])
    line = one_error_line(capsys.readouterr().err)
    assert code == 1 and str(run) in line and "No space left" in line
    assert latest_valid_checkpoint(run / "checkpoints").generation == 2
    assert [path.name for path in run.rglob("*") if "tmp" in path.name] == []
    filler.unlink()
    assert main(["train", "--resume", str(run), "--generations", "4"]) == 0
    assert _without_timing(read_metrics(run)) == _without_timing(read_metrics(straight))


def test_a_symlink_loop_in_the_data_folder_is_one_line_naming_it(nmnist_small_root, tmp_path, capsys):
    root = small_copy(nmnist_small_root, tmp_path / "data", per_class=1)
    loop = root / "NMNIST" / "Train" / "3" / "loop.bin"
    loop.symlink_to(loop)
    code = main(["data", "info", str(root)])
    line = one_error_line(capsys.readouterr().err)
    assert code == 1 and str(loop) in line and "symbolic links" in line
    assert main(["data", "info", str(root), "--skip-bad", "--json"]) == 0
    assert str(loop) in capsys.readouterr().out


def test_skip_bad_trains_evaluates_and_lists_the_skipped_files(nmnist_small_root, tmp_path, capsys):
    import json

    root = small_copy(nmnist_small_root, tmp_path / "data")
    broken = root / "NMNIST" / "Test" / "3" / "99999.bin"
    broken.write_bytes(b"\x01\x02")
    run = tmp_path / "run"
    assert main(["train", "--data", str(root), "--generations", "1", "--out", str(run), "--skip-bad", *FAST]) == 0
    listed = json.loads((run / "skipped_files.json").read_text())
    assert [(item["split"], item["source"]) for item in listed] == [("test", str(broken))]
    assert main(["evaluate", str(run)]) == 0  # the run's own data.skip_bad
    capsys.readouterr()
    assert main(["evaluate", str(run), "--data", str(root), "--skip-bad", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["count"] == 29


def test_resume_without_any_checkpoint_says_it_starts_from_generation_0(nmnist_small_root, tmp_path, capsys):
    import shutil

    from eggroll_snn.run_folder import read_metrics

    run = tmp_path / "run"
    assert main(["train", "--data", str(nmnist_small_root), "--generations", "1", "--out", str(run), *FAST]) == 0
    shutil.rmtree(run / "checkpoints")
    capsys.readouterr()
    assert main(["train", "--resume", str(run), "--generations", "2"]) == 0
    out = capsys.readouterr().out
    assert f"no valid checkpoint in {run / 'checkpoints'}: starting from generation 0" in out.splitlines()
    assert [line["generation"] for line in read_metrics(run)] == [1, 2]


@pytest.mark.parametrize(
    "assignment, expected",
    [
        ("strategy.sigma=\"x\"", "expected a number (a positive finite number)"),
        ("data.pool=true", "expected an integer (a divisor of the 34-pixel sensor side: 1, 2, 17 or 34)"),
    ],
)
def test_a_wrong_type_states_the_type_and_the_allowed_range(assignment, expected, tmp_path, capsys):
    assert main(["train", "--set", assignment, "--out", str(tmp_path / "run")]) == 1
    line = one_error_line(capsys.readouterr().err)
    assert line.endswith(expected) and assignment.split("=")[0] in line
    assert not (tmp_path / "run").exists()


def test_training_into_a_log_prints_plain_progress_lines(nmnist_small_root, tmp_path, capsys):
    run = tmp_path / "run"
    progress = [arg for arg in FAST if arg != "--no-progress"]  # capsys: stdout is not a terminal
    assert main(["train", "--data", str(nmnist_small_root), "--generations", "3", "--out", str(run), *progress,
                 "--set", "train.generations_per_call=1"]) == 0
    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith("generation ")]
    assert [line.split()[1] for line in lines] == ["1/3", "2/3", "3/3"]
    assert all("fitness" in line and "val acc" in line and "s/gen" in line and "ETA" in line for line in lines)


def test_events_out_of_time_order_are_a_bad_recording_naming_the_file(nmnist_small_root, tmp_path, capsys):
    import json

    import numpy as np

    from eggroll_snn.data.events import EVENT_DTYPE, write_events

    root = small_copy(nmnist_small_root, tmp_path / "data", per_class=1)
    unsorted = root / "NMNIST" / "Train" / "4" / "77777.bin"
    events = np.zeros(3, dtype=EVENT_DTYPE)
    events["t"] = [10, 30, 20]
    write_events(unsorted, events)
    assert main(["data", "info", str(root)]) == 1
    line = one_error_line(capsys.readouterr().err)
    assert str(unsorted) in line and "not in time order" in line and "--skip-bad" in line
    assert main(["data", "info", str(root), "--skip-bad", "--json"]) == 0
    skipped = json.loads(capsys.readouterr().out)["splits"]["train"]["skipped"]
    assert [item["source"] for item in skipped] == [str(unsorted)]
