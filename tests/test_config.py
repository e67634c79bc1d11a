"""TrainConfig: TOML round trip, overrides, and one ConfigError naming the option per bad value."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from eggroll_snn import config as config_module
from eggroll_snn.config import TrainConfig, apply_overrides, dumps, load, loads, parse_assignment
from eggroll_snn.errors import ConfigError

CONFIGS = Path(__file__).resolve().parents[1] / "configs"


def test_default_config_round_trips_through_toml():
    config = TrainConfig()
    assert loads(dumps(config)) == config


def test_changed_config_round_trips_including_unset_and_special_strings():
    config = apply_overrides(
        TrainConfig(),
        {
            "data.root": 'C:\\data\\"n-mnist" é',
            "data.window_us": 1000,
            "data.pool": 1,
            "network.hidden_sizes": [64, 32],
            "network.reset": "zero",
            "strategy.method": "full_rank",
            "strategy.sigma": 1e-5,
            "strategy.population_size": 7,
            "strategy.antithetic": False,
            "train.seed": 4294967295,
        },
    )
    text = dumps(config)
    assert "# cache_dir is unset" in text
    again = loads(text)
    assert again == config
    assert again.network.hidden_sizes == (64, 32)
    assert again.strategy.sigma == 1e-5
    assert again.data.root == 'C:\\data\\"n-mnist" é'


def test_configs_folder_default_toml_documents_the_defaults():
    assert load(CONFIGS / "default.toml") == TrainConfig()


def test_configs_folder_default_toml_lists_every_option():
    import re

    text = (CONFIGS / "default.toml").read_text()
    for section, cls in config_module.SECTIONS.items():
        for name in cls.__dataclass_fields__:
            assert re.search(rf"^#? ?{name} = ", text, re.MULTILINE), f"{section}.{name} is not documented"


def test_configs_folder_simulated_best_toml_is_the_ladders_population_step():
    # benchmarks/accuracy_ladder.sh's step s1: 1,024 members and 3,000 generations with the leaky
    # read-out, the 8 time bins, the rank 4 and the sigma 0.05 that the ladder passes to every step.
    config = load(CONFIGS / "simulated-best.toml")
    assert config == apply_overrides(
        TrainConfig(),
        {
            "data.num_time_bins": 8, "strategy.population_size": 1024, "train.generations": 3000,
            "network.readout_beta": 0.9, "strategy.rank": 4, "strategy.sigma": 0.05,
        },
    )
    ladder = (CONFIGS.parent / "benchmarks" / "accuracy_ladder.sh").read_text()
    assert "extra=(--set network.readout_beta=0.9 --set data.num_time_bins=8 --set strategy.rank=4 " in ladder and "--population-size 1024 --generations 3000\n" in ladder


def test_configs_folder_nmnist_small_toml_is_valid():
    config = load(CONFIGS / "nmnist-small.toml")
    assert config.data.pool == 2


def test_ints_widen_to_floats_and_lists_become_tuples():
    config = loads("[strategy]\nsigma = 1\n[network]\nhidden_sizes = [16]\n")
    assert config.strategy.sigma == 1.0 and isinstance(config.strategy.sigma, float)
    assert config.network.hidden_sizes == (16,)


@pytest.mark.parametrize(
    ("option", "value"),
    [
        ("strategy.sigma", 0.0),
        ("strategy.sigma", -0.1),
        ("strategy.sigma", float("nan")),
        ("strategy.learning_rate", 0.0),
        ("strategy.learning_rate", -1.0),
        ("strategy.population_size", 7),  # odd with antithetic sampling
        ("strategy.population_size", 0),
        ("strategy.rank", 0),
        ("strategy.rank", 129),  # hidden weight is 128 x 578: rank <= 128 (the read-out clips to 10)
        ("strategy.method", "cma_es"),
        ("strategy.optimizer", "lion"),
        ("strategy.fitness_shaping", "ranks"),
        ("strategy.weight_decay", -1.0),
        ("strategy.sigma_final_fraction", 1.5),
        ("data.pool", 3),
        ("data.num_time_bins", 0),
        ("data.validation_fraction", 1.0),
        ("data.validation_fraction", 0.0),
        ("data.window_us", 0),
        ("data.window_us", 400_000),  # longer than duration_us
        ("network.hidden_sizes", [0]),
        ("network.beta", 1.5),
        ("network.threshold", 0.0),
        ("network.reset", "bogus"),
        ("network.readout", "sum"),
        ("network.init_gain", -1.0),
        ("train.generations", 0),
        ("train.batch_size", 0),
        ("train.eval_every", 0),
        ("train.seed", -1),
        ("train.fitness", "mse"),
        # wrong types
        ("train.batch_size", 3.5),
        ("train.batch_size", True),
        ("train.generations", "100"),
        ("strategy.sigma", "big"),
        ("strategy.antithetic", 1),
        ("network.hidden_sizes", 128),
        ("network.hidden_sizes", [1.5]),
        ("data.root", 5),
    ],
)
def test_bad_option_raises_config_error_naming_it(option, value):
    with pytest.raises(ConfigError) as raised:
        apply_overrides(TrainConfig(), {option: value})
    assert option.split(".")[1] in str(raised.value)
    assert option.split(".")[0] in str(raised.value)


def test_rank_bound_only_applies_to_eggroll():
    config = apply_overrides(TrainConfig(), {"strategy.method": "full_rank", "strategy.rank": 50})
    assert config.strategy.rank == 50


def test_odd_population_is_fine_without_antithetic_sampling():
    config = apply_overrides(TrainConfig(), {"strategy.population_size": 7, "strategy.antithetic": False})
    assert config.strategy.population_size == 7


def test_unknown_key_in_toml_is_refused_with_its_name():
    with pytest.raises(ConfigError, match=r"strategy\.sigmaa"):
        loads("[strategy]\nsigmaa = 0.1\n", source="my.toml")


def test_unknown_section_is_refused_with_its_name():
    with pytest.raises(ConfigError, match=r"\[optimiser\]"):
        loads("[optimiser]\nlr = 0.1\n")


def test_invalid_toml_names_the_file(tmp_path):
    path = tmp_path / "broken.toml"
    path.write_text("[strategy\nsigma = ")
    with pytest.raises(ConfigError, match="broken.toml"):
        load(path)


def test_missing_file_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="nope.toml"):
        load(tmp_path / "nope.toml")


def test_error_in_file_names_file_and_option(tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text("[strategy]\nsigma = -2\n")
    with pytest.raises(ConfigError, match=r"bad\.toml.*strategy\.sigma.*> 0|bad\.toml.*strategy\.sigma.*positive"):
        load(path)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("strategy.sigma=0.1", ("strategy.sigma", 0.1)),
        ("train.generations = 50", ("train.generations", 50)),
        ("network.hidden_sizes=[64, 64]", ("network.hidden_sizes", [64, 64])),
        ("data.root=/data/nmnist", ("data.root", "/data/nmnist")),
        ('data.root="/a b"', ("data.root", "/a b")),
        ("strategy.antithetic=false", ("strategy.antithetic", False)),
    ],
)
def test_parse_assignment(text, expected):
    assert parse_assignment(text) == expected


@pytest.mark.parametrize("text", ["sigma=0.1", "strategy.sigma", "=3"])
def test_malformed_assignment_is_refused(text):
    with pytest.raises(ConfigError, match="section.key=value"):
        parse_assignment(text)


def test_override_of_unknown_option_names_it():
    with pytest.raises(ConfigError, match=r"train\.epochs"):
        apply_overrides(TrainConfig(), {"train.epochs": 3})
    with pytest.raises(ConfigError, match=r"model\.size"):
        apply_overrides(TrainConfig(), {"model.size": 3})


@settings(max_examples=150, deadline=None)
@given(st.text(max_size=200))
def test_arbitrary_text_only_raises_config_error(text):
    try:
        config = loads(text)
    except ConfigError:
        return
    assert loads(dumps(config)) == config


_scalars = st.one_of(
    st.none(), st.booleans(), st.integers(-(2**40), 2**40), st.floats(allow_nan=True), st.text(max_size=20)
)


@settings(max_examples=300, deadline=None)
@given(
    st.sampled_from([f"{s}.{f}" for s, cls in config_module.SECTIONS.items() for f in cls.__dataclass_fields__]),
    st.one_of(_scalars, st.lists(_scalars, max_size=3)),
)
def test_arbitrary_override_values_are_accepted_valid_or_refused_with_the_option(option, value):
    try:
        config = apply_overrides(TrainConfig(), {option: value})
    except ConfigError as error:
        assert option.split(".")[1] in str(error) or "rank" in str(error)
        return
    assert loads(dumps(config)) == config


def test_an_integer_a_float_option_cannot_hold_exactly_is_refused_not_rounded():
    assert apply_overrides(TrainConfig(), {"network.threshold": 2**53}).network.threshold == float(2**53)
    with pytest.raises(ConfigError, match=r"option network.threshold = 9007199254740993 is out of range"):
        apply_overrides(TrainConfig(), {"network.threshold": 2**53 + 1})
