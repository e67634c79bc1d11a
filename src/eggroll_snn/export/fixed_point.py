"""Export of a fixed-point model: a plain integer ``.npz`` and its ``.json`` description.

``<stem>.npz`` holds ``layer{i}_weight`` (out, in) int8 and ``layer{i}_bias`` (out,) int32, input
side first, read-out last, and nothing else (no pickles, no pytree paths), so any toolchain
(numpy, a chip SDK's loader) reads it. ``<stem>.json`` states the arithmetic the integers run with
(:meth:`eggroll_snn.fixed_point.FixedPointSpec.record`: threshold, register width, leak rule and
parameters, reset, the equations) and the layer shapes; the independent reference
(:mod:`eggroll_snn.integer_reference`) runs the model from these two files alone.
"""

from __future__ import annotations

import dataclasses
import io
import json
from pathlib import Path

import jax
import numpy as np

from eggroll_snn import checkpoint, fixed_point
from eggroll_snn.errors import CheckpointError, ConfigError

#: Run-folder stem of the exported integer model of a fixed-point run.
FIXED_POINT_MODEL_STEM = "model_fixed_point"


def export_integer(params: dict, spec: fixed_point.FixedPointSpec, stem: str | Path, metadata: dict | None = None) -> Path:
    """Write ``<stem>.npz`` and ``<stem>.json`` (atomically) for ``params`` under ``spec``; returns the .npz path."""
    stem = Path(stem)
    arrays, record = fixed_point.integer_model(params, spec)
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    checkpoint.atomic_write(stem.with_suffix(".npz"), lambda handle: handle.write(buffer.getvalue()))
    checkpoint.atomic_write_text(stem.with_suffix(".json"), json.dumps({**record, **(metadata or {})}, indent=1) + "\n")
    return stem.with_suffix(".npz")


def load_integer(stem: str | Path) -> tuple[dict, dict]:
    """``(arrays, record)`` of an exported integer model.

    Raises:
      CheckpointError: a file is missing or unreadable, or the arrays do not match the record.
    """
    stem = Path(stem)
    try:
        record = json.loads(stem.with_suffix(".json").read_text(encoding="utf-8"))
        with np.load(stem.with_suffix(".npz"), allow_pickle=False) as archive:
            arrays = {name: archive[name] for name in archive.files}
    except (OSError, ValueError) as error:
        raise CheckpointError(
            f"cannot read the integer model {stem}.npz + {stem.name}.json ({error}); runs trained before the "
            "fixed-point export have none: retrain, or write it with eggroll_snn.export.fixed_point.export_integer"
        ) from None
    shapes = [list(arrays.get(f"layer{i}_weight", np.zeros(0)).shape) for i in range(int(record.get("layers", 0)))]
    if shapes != record.get("layer_shapes"):
        raise CheckpointError(f"{stem}.npz: weight shapes {shapes} do not match {record.get('layer_shapes')} in {stem}.json")
    return arrays, record


def nir_form(params: dict, train_config, metadata: dict) -> tuple[dict, object, dict]:
    """What the NIR export of a fixed-point run writes: ``(params, network_config, metadata)``.

    The graph's Affine weights are the integers times ``2**-F`` (exact in float32), its LIF/LI
    leaks the effective ``beta`` of the integer leak and its threshold ``theta_int * 2**-F``; the
    float graph only approximates the integer arithmetic (floor or truncating leaks, saturation),
    so the metadata carries the exact form: ``fixed_point`` (the JSON arithmetic record, equations
    included) and ``fixed_point_layer{i}_weight`` / ``_bias`` (the integer arrays of the .npz).

    Raises:
      ConfigError: a synaptic state (``fixed_point.synapse_beta > 0``), which NIR's LIF lacks.
    """
    spec = fixed_point.make_spec(train_config.fixed_point, train_config.network)
    if train_config.fixed_point.synapse_beta > 0:
        raise ConfigError(
            f"fixed_point.synapse_beta = {train_config.fixed_point.synapse_beta} gives the neurons a synaptic state, "
            "which the NIR export's LIF nodes cannot hold; export the integer model (model_fixed_point.npz) instead"
        )
    network = dataclasses.replace(
        train_config.network.network_config(train_config.data.input_shape),
        beta=spec.effective_beta(spec.membrane_leak),
        readout_beta=spec.effective_beta(spec.readout_leak),
        threshold=spec.threshold * spec.unit,
    )
    projected = jax.tree_util.tree_map(np.asarray, fixed_point.project(params, spec))
    arrays, record = fixed_point.integer_model(params, spec)
    extra = {
        **metadata,
        "fixed_point": json.dumps(record),
        **{f"fixed_point_{name}": value for name, value in arrays.items()},
    }
    return projected, network, extra


__all__ = ["FIXED_POINT_MODEL_STEM", "export_integer", "load_integer", "nir_form"]
