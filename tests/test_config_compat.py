"""Checkpoints recorded before an option existed still resume when the option is at its default."""

from __future__ import annotations

from eggroll_snn import checkpoint
from eggroll_snn.config import TrainConfig, apply_overrides, options_missing_at_default


def _before_issue_16(config: TrainConfig) -> dict:
    """``config.to_dict()`` as the code before the tonic options and network.recurrent recorded it."""
    stored = config.to_dict()
    for key in ("source", "tonic_dataset", "test_fraction", "sensor_size", "class_names"):
        del stored["data"][key]
    del stored["network"]["recurrent"]
    return stored


def test_options_added_since_a_checkpoint_do_not_block_its_resume():
    config = apply_overrides(TrainConfig(), {"train.generations": 50})
    stored = _before_issue_16(config)
    assert checkpoint.config_differences(stored, config.to_dict())  # what refused such resumes
    ignored = options_missing_at_default(stored, config)
    assert set(ignored) == {"data.source", "data.tonic_dataset", "data.test_fraction", "data.sensor_size",
                            "data.class_names", "network.recurrent"}
    assert checkpoint.config_differences(stored, config.to_dict(), ignored) == []


def test_a_new_option_set_away_from_its_default_still_counts():
    config = apply_overrides(TrainConfig(), {"network.recurrent": True})
    stored = _before_issue_16(TrainConfig())
    ignored = options_missing_at_default(stored, config)
    assert "network.recurrent" not in ignored
    assert checkpoint.config_differences(stored, config.to_dict(), ignored) == ["network.recurrent: checkpoint None, now True"]
