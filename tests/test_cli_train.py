"""``eggroll-snn train / evaluate / plot`` end to end on real recordings, and their bad-input errors."""

from __future__ import annotations

import json

import pytest

from eggroll_snn.cli import main
from eggroll_snn.config import load
from eggroll_snn.run_folder import read_metrics

TINY = [
    "--time-bins", "4", "--hidden", "16", "--population-size", "16", "--rank", "2", "--batch-size", "32",
    "--set", "train.eval_every=4", "--set", "train.checkpoint_every=4", "--set", "train.generations_per_call=4",
    "--set", "train.eval_batch_size=128", "--no-progress",
]


@pytest.fixture(scope="module")
def cli_run(nmnist_small_root, tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("cli") / "run"
    code = main(["train", "--data", str(nmnist_small_root), "--generations", "8", "--seed", "5", "--sigma", "0.04",
                 "--out", str(run_dir), *TINY])
    assert code == 0
    return run_dir


def test_train_flags_land_in_the_resolved_config(cli_run, nmnist_small_root):
    config = load(cli_run / "config.toml")
    assert config.train.generations == 8 and config.train.seed == 5 and config.strategy.sigma == 0.04
    assert config.network.hidden_sizes == (16,) and config.data.num_time_bins == 4
    assert config.data.root == str(nmnist_small_root)
    assert len(read_metrics(cli_run)) == 8


def test_evaluate_json_is_one_object_with_accuracy_count_per_class(cli_run, capsys):
    capsys.readouterr()
    assert main(["evaluate", str(cli_run), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    summary = json.loads((cli_run / "summary.json").read_text())
    assert report["count"] == 100
    assert report["accuracy"] == pytest.approx(summary["test_accuracy"])
    assert sorted(report["per_class"]) == [str(d) for d in range(10)]
    assert len(report["confusion"]) == 10


def test_evaluate_table_output(cli_run, capsys):
    capsys.readouterr()
    assert main(["evaluate", str(cli_run)]) == 0
    out = capsys.readouterr().out
    assert "test accuracy" in out and "confusion matrix" in out


def test_plot_writes_pngs(cli_run, capsys):
    assert main(["plot", str(cli_run)]) == 0
    paths = capsys.readouterr().out.split()
    assert [p.rsplit("/", 1)[-1] for p in paths] == ["plot_generation.png", "plot_wall_time.png"]
    for path in paths:
        with open(path, "rb") as handle:
            assert handle.read(8) == b"\x89PNG\r\n\x1a\n"


def test_resume_extends_a_finished_run(cli_run, capsys):
    assert main(["train", "--resume", str(cli_run), "--generations", "12", "--no-progress"]) == 0
    assert [r["generation"] for r in read_metrics(cli_run)] == list(range(1, 13))
    assert load(cli_run / "config.toml").train.generations == 12


def test_resume_refuses_other_option_changes(cli_run, capsys):
    assert main(["train", "--resume", str(cli_run), "--sigma", "0.5"]) == 1
    assert "strategy.sigma" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("arguments", "named"),
    [
        (["--sigma", "-1"], "strategy.sigma"),
        (["--learning-rate", "0"], "strategy.learning_rate"),
        (["--population-size", "7"], "strategy.population_size"),
        (["--rank", "129"], "strategy.rank"),  # above 128, the hidden layer's min(m, n)
        (["--method", "cma"], "strategy.method"),
        (["--set", "strategy.sigmaa=1"], "strategy.sigmaa"),
        (["--set", "sigma"], "section.key=value"),
    ],
)
def test_bad_train_options_exit_1_naming_the_option(arguments, named, tmp_path, capsys):
    assert main(["train", "--out", str(tmp_path / "run"), *arguments]) == 1
    assert named in capsys.readouterr().err
    assert not (tmp_path / "run").exists()


def test_bad_data_root_exits_1_naming_it(tmp_path, capsys):
    assert main(["train", "--data", str(tmp_path / "nowhere"), "--out", str(tmp_path / "run")]) == 1
    assert "nowhere" in capsys.readouterr().err


def test_config_file_and_overrides(tmp_path, capsys):
    path = tmp_path / "c.toml"
    path.write_text("[strategy]\nsigma = 0.5\nbogus = 1\n")
    assert main(["train", "--config", str(path), "--out", str(tmp_path / "run")]) == 1
    assert "strategy.bogus" in capsys.readouterr().err


def test_evaluate_of_a_folder_without_model_exits_1(tmp_path, capsys):
    assert main(["evaluate", str(tmp_path)]) == 1
    assert "model.json" in capsys.readouterr().err
