"""``eggroll-snn data info``: the JSON summary checked against the files themselves, text output, errors."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import pytest

from eggroll_snn.cli import main

SPLITS = {"train": ("Train", 800), "test": ("Test", 100)}


def _run(capsys, *argv):
    code = main(["data", "info", *map(str, argv)])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_json_summary_matches_the_files(capsys, nmnist_small_root):
    code, out, _ = _run(capsys, nmnist_small_root, "--json")
    assert code == 0
    summary = json.loads(out)  # exactly one JSON object: json.loads refuses trailing text
    assert set(summary["splits"]) == {"train", "test"}
    for split, (folder, count) in SPLITS.items():
        stats = summary["splits"][split]
        files = sorted((nmnist_small_root / "NMNIST" / folder).glob("*/*.bin"))
        sizes = [file.stat().st_size // 5 for file in files]  # 5 bytes per event
        assert stats["count"] == count == len(files)
        assert stats["per_class"] == {str(d): sum(file.parent.name == str(d) for file in files) for d in range(10)}
        assert stats["events"] == {
            "total": sum(sizes),
            "mean": pytest.approx(sum(sizes) / len(sizes)),
            "min": min(sizes),
            "max": max(sizes),
        }
        assert 0.45 < stats["on_fraction"] < 0.55
        assert 290_000 < stats["duration_us"]["min"] <= stats["duration_us"]["max"] < 340_000
        assert stats["skipped"] == []
    assert summary["splits"]["train"]["events"]["min"] == 1112
    assert summary["splits"]["test"]["events"]["max"] == 6326


def test_text_summary(capsys, nmnist_small_root):
    code, out, _ = _run(capsys, nmnist_small_root)
    assert code == 0
    assert "train: 800 recordings" in out and "test: 100 recordings" in out
    assert "1: 98" in out


def test_bad_root_is_a_clear_error(capsys, tmp_path):
    code, out, err = _run(capsys, tmp_path)
    assert code == 1 and out == ""
    assert f"eggroll-snn: error: {tmp_path}: no train split found" in err


def test_bad_file_is_named_and_skip_bad_lists_it(capsys, tmp_path, nmnist_small_root):
    for folder, _ in SPLITS.values():
        shutil.copytree(nmnist_small_root / "NMNIST" / folder / "8", tmp_path / folder / "8")
    victim = sorted((tmp_path / "Test" / "8").glob("*.bin"))[0]
    victim.write_bytes(victim.read_bytes()[:-3])
    code, _, err = _run(capsys, tmp_path, "--json")
    assert code == 1 and str(victim) in err and "truncated" in err
    code, out, _ = _run(capsys, tmp_path, "--json", "--skip-bad")
    assert code == 0
    test = json.loads(out)["splits"]["test"]
    assert test["count"] == 1 and test["per_class"]["8"] == 1
    assert [item["source"] for item in test["skipped"]] == [str(victim)]


def test_console_script_prints_one_json_object(nmnist_small_root):
    result = subprocess.run(
        [sys.executable, "-m", "eggroll_snn.cli", "data", "info", str(nmnist_small_root), "--json"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert json.loads(result.stdout)["splits"]["test"]["count"] == 100
