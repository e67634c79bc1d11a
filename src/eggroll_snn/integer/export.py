"""The NIR form of a fixed-point run (its plain integer ``.npz`` is :mod:`eggroll_snn.run_folder`'s).

The integer model a run folder holds (written by the trainer, :func:`eggroll_snn.run_folder.export_integer`):

``<stem>.npz`` holds ``layer{i}_weight`` (out, in) int8 and ``layer{i}_bias`` (out,) int32, input
side first, read-out last, and nothing else (no pickles, no pytree paths), so any toolchain
(numpy, a chip SDK's loader) reads it. ``<stem>.json`` states the arithmetic the integers run with
(:meth:`eggroll_snn.integer.arithmetic.FixedPointSpec.record`: threshold, register width, leak rule and
parameters, reset, the equations) and the layer shapes; the independent reference
(:mod:`eggroll_snn.integer.reference`) runs the model from these two files alone.
"""

from __future__ import annotations

import dataclasses
import json

import jax
import numpy as np

from eggroll_snn.errors import ConfigError
from eggroll_snn.integer.arithmetic import integer_model, project
from eggroll_snn.integer.spec import make_spec


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
    spec = make_spec(train_config.fixed_point, train_config.network)
    if train_config.fixed_point.synapse_beta > 0:
        raise ConfigError(
            f"fixed_point.synapse_beta = {train_config.fixed_point.synapse_beta} gives the neurons a synaptic state, "
            "which the NIR export's LIF nodes cannot hold; export the integer model (model_fixed_point.npz) instead"
        )
    float_options = dataclasses.replace(train_config.network, neuron="float")  # the float graph's neurons
    network = dataclasses.replace(
        float_options.network_config(train_config.data.input_shape, train_config.data.num_classes),
        beta=spec.effective_beta(spec.membrane_leak),
        readout_beta=spec.effective_beta(spec.readout_leak),
        threshold=spec.threshold * spec.unit,
    )
    projected = jax.tree_util.tree_map(np.asarray, project(params, spec))
    arrays, record = integer_model(params, spec)
    extra = {
        **metadata,
        "fixed_point": json.dumps(record),
        **{f"fixed_point_{name}": value for name, value in arrays.items()},
    }
    return projected, network, extra


__all__ = ["nir_form"]
