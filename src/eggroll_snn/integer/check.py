"""Bit-exact check of a fixed-point run: the int64 reference against the JAX network on a whole split.

``python -m eggroll_snn.integer.check RUN_DIR [--data ROOT] [--split test]`` runs the run's
exported integer model (``model_fixed_point.npz`` + ``.json``) through
:mod:`eggroll_snn.integer.reference` and its ``model.npz`` through the JAX path, on every recording
of the split, and compares every spike, membrane, synaptic current, read-out membrane and read-out
value. Prints one JSON object; exits 1 when anything differs, 2 on an unreadable run (one line).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
from eggroll_snn.integer import reference as integer_reference
from eggroll_snn.network import forward_with_state
from eggroll_snn.errors import ConfigError, EggrollSNNError
from eggroll_snn.data.source import load_frames
from eggroll_snn.run_folder import FIXED_POINT_MODEL_STEM, load_integer, load_model

TRAJECTORIES = ("spikes", "membranes", "synaptic")


def check_run(run_dir: str | Path, data_root: str | Path | None = None, split: str = "test", batch_size: int = 50) -> dict:
    """Compare the reference and the JAX network on every recording of ``split``.

    Returns:
      ``{"recordings", "values_compared", "spikes_compared", "mismatches", "identical",
      "accuracy_jax", "accuracy_reference"}``.
    """
    run_dir = Path(run_dir)
    params, config, _ = load_model(run_dir)
    network = config.network_config()
    if network.fixed_point is None:
        raise ConfigError(f"{run_dir} is not a fixed-point run (network.neuron = {config.network.neuron!r})")
    arrays, record = load_integer(run_dir / FIXED_POINT_MODEL_STEM)
    weights, biases = integer_reference.load_model(arrays)
    frames, labels = load_frames(config.data, split, data_root)
    forward = jax.jit(lambda params, inputs: forward_with_state(params, inputs, network))
    compared = spikes_compared = mismatches = 0
    predictions = {"jax": [], "reference": []}
    for start in range(0, len(labels), batch_size):
        batch = np.asarray(frames[start : start + batch_size])
        inputs = batch.reshape(batch.shape[0], batch.shape[1], -1)
        ours = jax.tree_util.tree_map(np.asarray, forward(params, jnp.asarray(inputs, jnp.float32)))
        theirs = integer_reference.run(weights, biases, record, inputs)
        pairs = [(ours[name][layer], theirs[name][layer][0]) for name in TRAJECTORIES for layer in range(len(ours[name]))]
        pairs += [(ours["readout_membrane"], theirs["readout_membrane"][0]), (ours["readout"], theirs["readout"][0])]
        for mine, reference in pairs:
            compared += mine.size
            mismatches += int(np.sum(mine != reference))
        spikes_compared += sum(layer.size for layer in ours["spikes"])
        predictions["jax"].append(ours["readout"].argmax(axis=1))
        predictions["reference"].append(theirs["readout"][0].argmax(axis=1))
    accuracy = {name: float(np.mean(np.concatenate(values) == labels)) for name, values in predictions.items()}
    return {
        "run": str(run_dir),
        "split": split,
        "recordings": int(len(labels)),
        "values_compared": int(compared),
        "spikes_compared": int(spikes_compared),
        "mismatches": mismatches,
        "identical": mismatches == 0,
        "accuracy_jax": accuracy["jax"],
        "accuracy_reference": accuracy["reference"],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m eggroll_snn.integer.check", description=__doc__.splitlines()[0])
    parser.add_argument("run_dir", metavar="RUN_DIR")
    parser.add_argument("--data", default=None, help="data root (default: the run's)")
    parser.add_argument("--split", default="test", choices=("train", "test"))
    args = parser.parse_args(argv)
    try:
        report = check_run(args.run_dir, args.data, args.split)
    except EggrollSNNError as error:
        print(f"check_fixed_point: error: {error}", file=sys.stderr)
        return 2
    print(json.dumps(report, indent=1))
    return 0 if report["identical"] else 1


if __name__ == "__main__":
    sys.exit(main())
