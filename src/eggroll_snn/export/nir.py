"""NIR export of a trained network, and an independent NIR interpreter to check it.

NIR (the Neuromorphic Intermediate Representation) describes neurons in continuous time. Its
leaky integrate-and-fire node (``nir.LIF``) is::

    tau dv/dt = (v_leak - v) + r I
    z = 1 when v > v_threshold, and then v <- v_reset

and its leaky integrator (``nir.LI``) is the same without the spike. Stepping the LIF equation
with forward Euler over a step ``dt`` gives::

    v[t] = v[t-1] + (dt / tau) (v_leak - v[t-1] + r I[t])

Choosing ``tau = dt / (1 - beta)``, ``r = tau / dt`` and ``v_leak = 0`` turns this into the
network's discrete update ``v[t] = beta v[t-1] + I[t]`` (see :mod:`eggroll_snn.snn`). This is
the convention snnTorch's ``import_from_nir`` reads back (``beta = 1 - dt / tau``, input scale
``r dt / tau = 1``; snnTorch 1.0 assumes ``dt = 1e-4`` s, so export with that ``dt`` for it, and
it has no mapping for ``nir.LI``). A layer without leak (``beta = 1``, infinite ``tau``) becomes
``nir.IF`` / ``nir.I`` (``dv/dt = r I``) with ``r = 1 / dt``. The exported graph is a chain::

    Input -> Affine -> LIF -> ... -> Affine -> LI -> Output

with one graph step per frame time bin and no delay along edges: input bin ``t`` reaches the
read-out at step ``t``. The read-out's reduction over time (mean or max of the LI membrane)
has no NIR node; it is recorded in the graph metadata along with ``dt``, the discretisation,
the reset mode and the input layout.

NIR's LIF resets to ``v_reset``; a model trained with reset by subtraction (``v <- v - theta``)
cannot be expressed, so exporting one warns (:class:`SubtractionResetWarning`) and exports reset
to zero instead. The network fires at ``v >= theta`` and NIR at ``v > v_threshold``: the two
differ only when a membrane lands exactly on the threshold. ``v_threshold`` is ``theta`` itself.

:func:`simulate_nir` runs a NIR graph from NIR's own equations (numpy, float64), without using
:mod:`eggroll_snn.snn`, so that agreement between the two is an independent check.
"""

from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import nir
import numpy as np

from eggroll_snn import __version__
from eggroll_snn.export.fixed_point import nir_form  # fixed-point hook (issue 14)
from eggroll_snn.errors import ConfigError, DataFormatError
from eggroll_snn.evaluate import load_model
from eggroll_snn.quantize import nir_annotations
from eggroll_snn.snn import MIN_THRESHOLD

DISCRETISATION = "forward_euler"
READOUT_REDUCTIONS = ("mean", "max")


class SubtractionResetWarning(UserWarning):
    """The model resets by subtracting the threshold, which NIR cannot express.

    The exported graph resets the membrane to ``v_reset = 0`` after a spike instead, so neurons
    that overshoot the threshold lose the overshoot and may spike less often than in training.
    """


def _effective_constant(layer: Mapping[str, Any], name: str, default: float, size: int) -> np.ndarray:
    """A layer's per-neuron ``beta`` or ``threshold`` as the network uses it, float64 (size,).

    A learned vector in the layer takes precedence over the config's scalar; the same limits as
    in :mod:`eggroll_snn.snn` apply (``beta`` clipped to [0, 1], ``threshold >= MIN_THRESHOLD``),
    so the graph holds the values the trained network actually ran with.
    """
    values = np.broadcast_to(np.asarray(layer.get(name, default), dtype=np.float64), (size,)).copy()
    if name == "beta":
        return np.clip(values, 0.0, 1.0)
    return np.maximum(values, MIN_THRESHOLD)


def _neuron_node(beta: np.ndarray, threshold: np.ndarray | None, dt: float, where: str) -> nir.NIRNode:
    """The NIR neuron node whose forward-Euler step with ``dt`` is ``v <- beta v + I``.

    * ``beta`` in [0, 1): ``LIF``/``LI`` with ``tau = dt / (1 - beta)`` [s], ``r = tau / dt``,
      ``v_leak = 0`` (and ``v_threshold = threshold``, ``v_reset = 0``);
    * ``beta = 1`` for every neuron (no leak): ``IF``/``I`` with ``r = 1 / dt`` [1/s], since
      their equation ``dv/dt = r I`` has no time constant.

    ``threshold=None`` makes a non-spiking integrator (``LI``/``I``).

    Raises:
      ConfigError: some but not all neurons of the layer have ``beta = 1`` (one NIR node cannot
        mix a finite and an infinite time constant).
    """
    size = beta.shape[0]
    leak_free = beta == 1.0
    if leak_free.all():
        r = np.full(size, 1.0 / dt)
        if threshold is None:
            return nir.I(r=r)
        return nir.IF(r=r, v_threshold=threshold, v_reset=np.zeros(size))
    if leak_free.any():
        raise ConfigError(
            f"{where}: {int(leak_free.sum())} of {size} neurons have beta = 1 (no leak) and the others "
            "leak; one NIR node cannot mix LIF with infinite and finite time constants. Keep the "
            "learned beta below 1 or fix beta for the whole layer."
        )
    tau = dt / (1.0 - beta)
    if threshold is None:
        return nir.LI(tau=tau, r=tau / dt, v_leak=np.zeros(size))
    return nir.LIF(tau=tau, r=tau / dt, v_leak=np.zeros(size), v_threshold=threshold, v_reset=np.zeros(size))


def _check_dt(dt) -> float:
    """``dt`` as a float, or ConfigError when it is not a positive, finite number of seconds."""
    try:
        value = float(dt)
    except (TypeError, ValueError):
        value = float("nan")
    if not (np.isfinite(value) and value > 0):
        raise ConfigError(f"dt={dt!r}: the time step must be a positive, finite number of seconds (e.g. 1e-3)")
    return value


def _check_network(params: Mapping[str, Any], network_config) -> list[Mapping[str, Any]]:
    """The layer list of ``params``, checked against ``network_config``'s sizes."""
    if getattr(network_config, "conv_channels", ()) or getattr(network_config, "readout", "mean") == "spike_count":
        raise ConfigError(
            "NIR export covers dense LIF networks with a leaky read-out; this network has convolutional blocks "
            "or a spike-count read-out, which the exporter does not write yet"
        )
    layers = list(params["layers"])
    sizes = [network_config.input_size, *network_config.hidden_sizes, network_config.num_classes]
    if len(layers) != len(sizes) - 1:
        raise ConfigError(
            f"params: {len(layers)} layers, but the network config (hidden_sizes="
            f"{tuple(network_config.hidden_sizes)}) needs {len(sizes) - 1}; the parameters belong to a "
            "different network"
        )
    for index, (layer, fan_in, fan_out) in enumerate(zip(layers, sizes[:-1], sizes[1:])):
        weight_shape = tuple(np.shape(layer["weight"]))
        bias_shape = tuple(np.shape(layer["bias"]))
        if weight_shape != (fan_out, fan_in) or bias_shape != (fan_out,):
            raise ConfigError(
                f"params layer {index}: weight {weight_shape} and bias {bias_shape}, expected "
                f"({fan_out}, {fan_in}) and ({fan_out},) from the network config"
            )
    return layers


def to_nir(
    params: Mapping[str, Any],
    network_config,
    dt: float = 1e-3,
    frame_shape: Sequence[int] | None = None,
    metadata: Mapping[str, Any] | None = None,
    integer_weights: Mapping[str, Any] | None = None,
) -> nir.NIRGraph:
    """Translate a network into a NIR graph (``Input -> (Affine -> LIF)* -> Affine -> LI -> Output``).

    Args:
      params: ``{"layers": [{"weight": (out, in), "bias": (out,)}, ...]}`` as made by
        :func:`eggroll_snn.snn.init_params`; the last layer is the read-out. Optional per-layer
        ``"beta"``/``"threshold"`` vectors override the config's scalars.
      network_config: the :class:`eggroll_snn.snn.NetworkConfig` the parameters were trained with.
      dt: the duration of one time step (one frame time bin) in seconds; it only sets the time
        scale of ``tau`` and cancels out of the discrete dynamics.
      frame_shape: ``(T, P, H, W)`` of the frames the network reads, recorded in the metadata;
        ``P * H * W`` must equal ``network_config.input_size``.
      metadata: extra entries for the graph metadata (strings, numbers, lists of numbers, dicts).
      integer_weights: for a model trained with integer weights, its record from ``model.json``
        (``"weights"``, see :func:`eggroll_snn.quantize.describe`): the weights and biases must be
        integers times their layer's scale; each Affine node's metadata then holds ``weight_int``,
        ``bias_int`` and ``scale`` (``weight == weight_int * scale`` exactly) and the graph
        metadata the format, ``q_max`` and the scales.

    Returns:
      A ``nir.NIRGraph``. Node names: ``input``, ``affine_1``, ``lif_1``, ..., ``affine_out``,
      ``li_out``, ``output`` (``if_<n>`` / ``i_out`` for leak-free layers). Neuron parameters are
      per-neuron float64 arrays: ``tau = dt / (1 - beta)`` [s], ``r = tau / dt``, ``v_leak = 0``,
      ``v_threshold = theta``, ``v_reset = 0``; weights and biases stay float32.

    Raises:
      ConfigError: ``dt`` not a positive number, ``params`` not shaped as ``network_config``
        says, ``frame_shape`` not matching the input size, or a layer mixing ``beta = 1`` with
        ``beta < 1``.
      CheckpointError: ``integer_weights`` given but the weights are not on its grid.

    Warns:
      SubtractionResetWarning: the network resets by subtraction; the graph resets to zero.
    """
    dt = _check_dt(dt)
    layers = _check_network(params, network_config)
    node_annotations, graph_annotations = [{}] * len(layers), {}
    if integer_weights is not None:
        node_annotations, graph_annotations = nir_annotations(params, integer_weights)
    if network_config.reset == "subtract":
        warnings.warn(
            "this network resets by subtracting the threshold (v <- v - theta), which NIR's LIF cannot "
            "express; the exported graph resets to v_reset = 0 after each spike instead, so a neuron "
            "loses any overshoot above threshold and may spike less often than in training. Train with "
            "reset='zero' for an exact export.",
            SubtractionResetWarning,
            stacklevel=2,
        )

    nodes: dict[str, nir.NIRNode] = {"input": nir.Input(input_type=np.array([network_config.input_size]))}
    hidden, readout = layers[:-1], layers[-1]
    for number, layer in enumerate(hidden, start=1):
        size = np.shape(layer["weight"])[0]
        neurons = _neuron_node(
            _effective_constant(layer, "beta", network_config.beta, size),
            _effective_constant(layer, "threshold", network_config.threshold, size),
            dt,
            f"hidden layer {number}",
        )
        nodes[f"affine_{number}"] = _affine(layer, node_annotations[number - 1])
        nodes[f"{type(neurons).__name__.lower()}_{number}"] = neurons
    size = network_config.num_classes
    readout_neurons = _neuron_node(
        _effective_constant(readout, "beta", network_config.readout_beta, size), None, dt, "read-out layer"
    )
    readout_name = f"{type(readout_neurons).__name__.lower()}_out"
    nodes["affine_out"] = _affine(readout, node_annotations[-1])
    nodes[readout_name] = readout_neurons
    nodes["output"] = nir.Output(output_type=np.array([size]))
    chain = list(nodes)

    graph_metadata = _graph_metadata(network_config, dt, frame_shape, readout_name)
    graph_metadata.update(graph_annotations)
    graph_metadata.update(dict(metadata or {}))
    return nir.NIRGraph(nodes=nodes, edges=list(zip(chain[:-1], chain[1:])), metadata=graph_metadata)


def _affine(layer: Mapping[str, Any], annotation: Mapping[str, Any]) -> nir.Affine:
    """``nir.Affine`` with the layer's float32 weight (out, in) and bias (out,); ``annotation``: its metadata."""
    return nir.Affine(
        weight=np.asarray(layer["weight"], dtype=np.float32),
        bias=np.asarray(layer["bias"], dtype=np.float32),
        metadata=dict(annotation),
    )


def _graph_metadata(
    network_config, dt: float, frame_shape: Sequence[int] | None, readout_node: str
) -> dict[str, Any]:
    """The graph-level metadata: how to run the graph and read its output."""
    metadata: dict[str, Any] = {
        "producer": f"eggroll-snn {__version__}",
        "dt": float(dt),
        "dt_unit": "s",
        "discretisation": DISCRETISATION,
        "discretisation_equation": "v[t] = v[t-1] + dt/tau * (v_leak - v[t-1] + r*I[t]) = beta*v[t-1] + I[t]",
        "edge_delay_steps": 0,
        "trained_reset": network_config.reset,
        "exported_reset": "zero",
        "reset_exact": network_config.reset == "zero",
        "spike_condition": "spike when v > v_threshold, then v <- v_reset in the same step",
        # The trained network fires at v >= theta; the two differ only when v lands exactly on theta.
        "trained_spike_condition": "v >= threshold",
        "trained_compute_dtype": network_config.compute_dtype,
        "readout": network_config.readout,
        "readout_node": readout_node,
        "readout_description": f"logits = {network_config.readout} over the T steps of the {readout_node} membrane",
        "input_size": int(network_config.input_size),
        "hidden_sizes": [int(size) for size in network_config.hidden_sizes],
        "num_classes": int(network_config.num_classes),
    }
    if frame_shape is not None:
        frame_shape = [int(n) for n in frame_shape]
        if len(frame_shape) != 4 or int(np.prod(frame_shape[1:])) != network_config.input_size:
            raise ConfigError(
                f"frame_shape={frame_shape}: expected (T, P, H, W) with P*H*W = input_size "
                f"{network_config.input_size}"
            )
        metadata["input_shape"] = frame_shape
        metadata["input_layout"] = "frames (T, P, H, W); step t feeds frames[t] flattened in C order (p, y, x)"
    return metadata


NEURON_NODES = (nir.LIF, nir.LI, nir.IF, nir.I)
SUPPORTED_NODES = (nir.Input, nir.Output, nir.Affine, nir.Linear, *NEURON_NODES)


def _topological_order(graph: nir.NIRGraph) -> tuple[list[str], dict[str, list[str]]]:
    """Node names in an order where every node comes after its sources, and each node's sources.

    Raises:
      DataFormatError: the graph has a cycle (recurrent graphs are not supported here).
    """
    sources: dict[str, list[str]] = {name: [] for name in graph.nodes}
    for source, target in graph.edges:
        sources[target].append(source)
    order: list[str] = []
    placed: set[str] = set()
    while len(order) < len(graph.nodes):
        ready = [name for name in graph.nodes if name not in placed and all(s in placed for s in sources[name])]
        if not ready:
            stuck = sorted(set(graph.nodes) - placed)
            raise DataFormatError(f"NIR graph: nodes {stuck} form a cycle; simulate_nir runs feed-forward graphs only")
        order += ready
        placed.update(ready)
    return order, sources


def _euler_step(node: nir.NIRNode, v: np.ndarray, current: np.ndarray, dt: float) -> np.ndarray:
    """One forward-Euler step of a neuron node's membrane equation (before any spike/reset).

    ``LIF``/``LI``: ``tau dv/dt = (v_leak - v) + r I``; ``IF``/``I``: ``dv/dt = r I``.
    """
    if isinstance(node, (nir.LIF, nir.LI)):
        return v + dt / node.tau * (node.v_leak - v + node.r * current)
    return v + dt * node.r * current


def simulate_nir(graph: nir.NIRGraph, inputs: np.ndarray, dt: float | None = None) -> dict[str, Any]:
    """Run a feed-forward NIR graph on time-binned inputs, from NIR's continuous equations.

    Written from the NIR node definitions alone (it does not use :mod:`eggroll_snn.snn`), so its
    agreement with the trained network checks the export. Every node updates once per step ``t``
    in topological order, with no delay along edges; a node with several incoming edges receives
    their sum. Neuron equations are stepped with forward Euler over ``dt`` in float64, from zero
    state:

    * ``LI``:  ``v <- v + dt/tau * (v_leak - v + r I)``;  ``I``: ``v <- v + dt r I``;
    * ``LIF``/``IF``: the same, then ``z = (v > v_threshold)`` and ``v <- v_reset`` where ``z``;
      the node emits ``z`` (1.0 or 0.0), a non-spiking node emits ``v``;
    * ``Affine``: ``W x + b``; ``Linear``: ``W x``; ``Input``/``Output``: identity.

    Args:
      graph: a NIR graph with one Input and one Output node and only the node types above.
      inputs: ``(B, T, n_in)`` values fed to the Input node at each step.
      dt: the time step in seconds; ``None`` reads ``graph.metadata["dt"]``.

    Returns:
      dict with ``"outputs"``: (B, T, n_out) float64, what reaches the Output node at each step;
      ``"logits"``: (B, n_out), ``outputs`` reduced over time by ``graph.metadata["readout"]``
      (``"mean"`` when absent, or ``"max"``); ``"spikes"``: {spiking node name: (B, T, n) bool};
      ``"membranes"``: {neuron node name: (B, T, n) float64 after reset}.

    Raises:
      DataFormatError: unsupported node types, a cycle, not exactly one Input and one Output,
        inputs of the wrong shape, or an unknown readout in the metadata.
      ConfigError: no ``dt`` given and none recorded in the graph.
    """
    metadata = dict(graph.metadata or {})
    if dt is None:
        if "dt" not in metadata:
            raise ConfigError("dt: not given and the NIR graph's metadata records none; pass dt in seconds")
        dt = metadata["dt"]
    dt = _check_dt(dt)
    readout = str(metadata.get("readout", "mean"))
    if readout not in READOUT_REDUCTIONS:
        raise DataFormatError(f"NIR graph metadata readout={readout!r}: expected one of {READOUT_REDUCTIONS}")
    for name, node in graph.nodes.items():
        if not isinstance(node, SUPPORTED_NODES):
            raise DataFormatError(
                f"NIR graph node {name!r} is a {type(node).__name__}; simulate_nir supports "
                f"{', '.join(kind.__name__ for kind in SUPPORTED_NODES)}"
            )
    input_names = [name for name, node in graph.nodes.items() if isinstance(node, nir.Input)]
    output_names = [name for name, node in graph.nodes.items() if isinstance(node, nir.Output)]
    if len(input_names) != 1 or len(output_names) != 1:
        raise DataFormatError(
            f"NIR graph has inputs {input_names} and outputs {output_names}; simulate_nir needs exactly one of each"
        )
    order, sources = _topological_order(graph)

    inputs = np.asarray(inputs, dtype=np.float64)
    input_size = int(np.prod(graph.nodes[input_names[0]].input_type["input"]))
    if inputs.ndim != 3 or inputs.shape[2] != input_size:
        raise DataFormatError(f"inputs of shape {inputs.shape}: expected (B, T, {input_size}) for this NIR graph")
    batch, steps, _ = inputs.shape

    # Results are listed in topological order (input side first), whatever the file's node order.
    neurons = {name: graph.nodes[name] for name in order if isinstance(graph.nodes[name], NEURON_NODES)}
    spiking = [name for name, node in neurons.items() if isinstance(node, (nir.LIF, nir.IF))]
    state = {name: np.zeros((batch, np.size(node.r))) for name, node in neurons.items()}
    membranes: dict[str, list[np.ndarray]] = {name: [] for name in neurons}
    spikes: dict[str, list[np.ndarray]] = {name: [] for name in spiking}
    outputs = []
    for t in range(steps):
        values: dict[str, np.ndarray] = {}
        for name in order:
            node = graph.nodes[name]
            if isinstance(node, nir.Input):
                values[name] = inputs[:, t]
                continue
            current = sum(values[source] for source in sources[name])
            if isinstance(node, nir.Affine):
                values[name] = current @ np.asarray(node.weight, np.float64).T + np.asarray(node.bias, np.float64)
            elif isinstance(node, nir.Linear):
                values[name] = current @ np.asarray(node.weight, np.float64).T
            elif name in neurons:
                v = _euler_step(node, state[name], current, dt)
                if name in spiking:
                    fired = v > node.v_threshold
                    v = np.where(fired, node.v_reset, v)
                    spikes[name].append(fired)
                    values[name] = fired.astype(np.float64)
                else:
                    values[name] = v
                state[name] = v
                membranes[name].append(v)
            else:  # Output
                values[name] = current
        outputs.append(values[output_names[0]])

    output_trace = np.stack(outputs, axis=1)
    return {
        "outputs": output_trace,
        "logits": output_trace.mean(axis=1) if readout == "mean" else output_trace.max(axis=1),
        "spikes": {name: np.stack(trace, axis=1) for name, trace in spikes.items()},
        "membranes": {name: np.stack(trace, axis=1) for name, trace in membranes.items()},
    }


def export_run(run_dir: str | Path, path: str | Path, dt: float = 1e-3) -> nir.NIRGraph:
    """Export a run folder's trained model to a NIR file (HDF5, written with ``nir.write``).

    The model is read with :func:`eggroll_snn.evaluate.load_model` (``model.npz`` + ``model.json``,
    checksummed, with the training config). The graph is :func:`to_nir` of it, with the run's
    frame shape ``(T, P, H, W)``, frame settings, and the model's generation and validation
    accuracy recorded in the metadata. A model trained with integer weights (``--weights int8``)
    exports its on-grid weights (integers times the layer's scale) and records the integer form
    (see ``integer_weights`` of :func:`to_nir`).

    Args:
      run_dir: a run folder holding ``model.npz`` and ``model.json``.
      path: the ``.nir`` file to write (its folder must exist).
      dt: seconds per time step (frame bin) for the continuous-time constants.

    Returns:
      The exported graph.

    Raises:
      CheckpointError: the run folder holds no complete, valid model.
      ConfigError: a bad ``dt``, or the folder of ``path`` does not exist.

    Warns:
      SubtractionResetWarning: the model was trained with reset by subtraction.
    """
    path = Path(path)
    if not path.parent.is_dir():
        raise ConfigError(f"NIR output {path}: the folder {path.parent} does not exist; create it or choose another path")
    params, train_config, model_metadata = load_model(run_dir)
    network_config = train_config.network.network_config(train_config.data.input_shape)
    data = train_config.data
    try:
        frame_shape = data.frame_config().frame_shape()
    except ConfigError:  # frames whose count T varies per recording: no fixed input shape
        frame_shape = None
    frame_settings = dataclasses.asdict(data.frame_config())
    extra = {
        "source_run": str(Path(run_dir).resolve()),
        # None has no HDF5 form; an absent key means "unset".
        "frame_config": {key: value for key, value in frame_settings.items() if value is not None},
    }
    for key in ("generation", "validation_accuracy"):
        if isinstance(model_metadata.get(key), (int, float)):
            extra[key] = model_metadata[key]
    if train_config.network.neuron == "fixed_point":  # fixed-point hook (issue 14): integers + arithmetic in metadata
        params, network_config, extra = nir_form(params, train_config, extra)
    graph = to_nir(
        params, network_config, dt=dt, frame_shape=frame_shape, metadata=extra,
        integer_weights=model_metadata.get("weights"),
    )
    nir.write(path, graph)
    return graph
