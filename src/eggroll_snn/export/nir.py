"""NIR export of a trained network, checked by re-simulation with an independent NIR interpreter.

NIR (the Neuromorphic Intermediate Representation) describes neurons in continuous time. Its
leaky integrate-and-fire node (``nir.LIF``) is::

    tau dv/dt = (v_leak - v) + r I
    z = 1 when v > v_threshold, and then v <- v_reset

its leaky integrator (``nir.LI``) is the same without the spike, and its current-based LIF
(``nir.CubaLIF``) puts a synaptic current in front: ``tau_syn di/dt = -i + w_in S`` and
``tau_mem dv/dt = (v_leak - v) + r i`` (only ``v`` resets). Stepping these equations with forward
Euler over a step ``dt`` (:mod:`eggroll_snn.export.simulate` states the order) gives::

    v[t] = v[t-1] + (dt / tau) (v_leak - v[t-1] + r I[t])

Choosing ``tau = dt / (1 - beta)``, ``r = tau / dt`` and ``v_leak = 0`` turns this into the
network's discrete update ``v[t] = beta v[t-1] + I[t]`` (see :mod:`eggroll_snn.snn`); ``dt``
only sets the time scale of ``tau`` and cancels out of the discrete dynamics. A layer without
leak (``beta = 1``, infinite ``tau``) becomes ``nir.IF`` / ``nir.I`` (``dv/dt = r I``) with
``r = 1 / dt``.

How each part of the network is written (node names in brackets, ``k`` = 1, 2, ...):

* **hidden layer, reset to zero** (``reset="zero"``): ``Affine [affine_k] -> LIF [lif_k]`` with
  ``v_threshold = theta``, ``v_reset = 0``: NIR's own reset is the network's.
* **hidden layer, reset by subtraction** (``reset="subtract"``, the default): NIR's LIF cannot
  subtract, so the layer becomes ``Affine [affine_k] -> CubaLIF [cubalif_k]`` plus a recurrent
  ``Linear [rec_k]`` from the CubaLIF back to itself with the diagonal weight ``-beta * theta``.
  The synaptic current carries the network's membrane before reset ``u[t]``
  (``tau_syn = dt / (1 - beta)``, ``w_in = tau_syn / dt``), and ``tau_mem = dt``, ``r = 1``
  make the CubaLIF membrane equal to that current at every step, so it spikes when
  ``u[t] > theta``. The recurrent edge closes a cycle, which delivers its value one step later
  (the convention of snnTorch's RSynaptic and of :func:`simulate_nir`); so at step ``t`` the
  current receives ``-beta theta s[t-1]``::

      u[t] = beta u[t-1] + W s_in[t] + b - beta theta s[t-1] = beta (u[t-1] - theta s[t-1]) + I[t]

  which is exactly the network's ``v[t] = beta v'[t-1] + I[t]`` with ``v' = v - theta s``.
* **read-out**, ``readout="mean"`` / ``"max"``: ``Affine [affine_out] -> LI [li_out]``, the
  logits being the mean / max over the T steps of the LI membrane (recorded in the metadata:
  NIR has no node for a reduction over time). ``readout="spike_count"``: the output layer is
  written like a hidden layer (``lif_out`` or ``cubalif_out`` + ``rec_out``) and the logits are
  its spike counts, so the graph holds only Affine, Linear, LIF / CubaLIF, Input and Output.

There is one graph step per frame time bin; apart from the recurrent edges there is no delay
along edges: input bin ``t`` reaches the read-out at step ``t``. The network fires at
``v >= theta`` and NIR at ``v > v_threshold``: the two differ only when a membrane lands exactly
on the threshold, which the re-simulation check of :func:`eggroll_snn.export.run.export_run` would show.

What NIR cannot express exactly is refused (:class:`~eggroll_snn.errors.ConfigError`), never
exported approximately: a layer mixing ``beta = 1`` with leaky neurons, ``beta = 1`` with reset by
subtraction (``tau_syn`` would be infinite), convolutional blocks (not written yet).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import nir
import numpy as np

from eggroll_snn import __version__
from eggroll_snn.errors import ConfigError
from eggroll_snn.export.simulate import check_dt
from eggroll_snn.quantize import nir_annotations
from eggroll_snn.snn import MIN_THRESHOLD

DISCRETISATION = "forward_euler"


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
    """The NIR neuron node whose forward-Euler step with ``dt`` is ``v <- beta v + I`` (reset to zero).

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


def _subtracting_neurons(beta: np.ndarray, threshold: np.ndarray, dt: float, where: str) -> tuple[nir.CubaLIF, nir.Linear]:
    """``CubaLIF`` + recurrent ``Linear`` that together reset by subtraction (module docstring).

    Raises:
      ConfigError: a neuron has ``beta = 1`` (no leak): ``tau_syn`` would be infinite.
    """
    size = beta.shape[0]
    if (beta == 1.0).any():
        raise ConfigError(
            f"{where}: {int((beta == 1.0).sum())} of {size} neurons have beta = 1 (no leak) and reset by "
            "subtraction; NIR expresses subtraction through a CubaLIF whose synaptic time constant would "
            "be infinite. Train with beta < 1 or with network.reset = 'zero'."
        )
    tau_syn = dt / (1.0 - beta)
    neurons = nir.CubaLIF(
        tau_syn=tau_syn, tau_mem=np.full(size, dt), r=np.ones(size), v_leak=np.zeros(size),
        v_threshold=threshold, v_reset=np.zeros(size), w_in=tau_syn / dt,
    )
    return neurons, nir.Linear(weight=np.diag(-beta * threshold))


def _spiking_layer(
    nodes: dict[str, nir.NIRNode], edges: list[tuple[str, str]], source: str, suffix: str,
    beta: np.ndarray, threshold: np.ndarray, reset: str, dt: float, where: str,
) -> str:
    """Add one spiking layer fed by ``source`` to ``nodes``/``edges``; returns its output node's name."""
    if reset == "zero":
        neurons = _neuron_node(beta, threshold, dt, where)
        name = f"{type(neurons).__name__.lower()}_{suffix}"
        nodes[name] = neurons
        edges.append((source, name))
        return name
    name, recurrent = f"cubalif_{suffix}", f"rec_{suffix}"
    nodes[name], nodes[recurrent] = _subtracting_neurons(beta, threshold, dt, where)
    edges += [(source, name), (name, recurrent), (recurrent, name)]
    return name


def _check_network(params: Mapping[str, Any], network_config) -> list[Mapping[str, Any]]:
    """The layer list of ``params``, checked against ``network_config``'s sizes."""
    if getattr(network_config, "conv_channels", ()):
        raise ConfigError(
            "NIR export covers dense LIF networks; this network has convolutional blocks "
            "(network.conv_channels), which the exporter does not write yet"
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
    """Translate a network into a NIR graph that runs the same network (see the module docstring).

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
      A ``nir.NIRGraph``. Node names: ``input``, ``affine_1``, ``lif_1`` (reset to zero) or
      ``cubalif_1`` + ``rec_1`` (reset by subtraction), ..., ``affine_out``, then ``li_out``
      (mean/max read-out) or a spiking ``lif_out`` / ``cubalif_out`` + ``rec_out``
      (spike-count read-out), and ``output`` (``if_<n>`` / ``i_out`` for leak-free layers).
      Neuron parameters are per-neuron float64 arrays; weights and biases stay float32.

    Raises:
      ConfigError: ``dt`` not a positive number, ``params`` not shaped as ``network_config``
        says, ``frame_shape`` not matching the input size, a convolutional network, a layer
        mixing ``beta = 1`` with ``beta < 1``, or ``beta = 1`` with reset by subtraction.
      CheckpointError: ``integer_weights`` given but the weights are not on its grid.
    """
    dt = check_dt(dt)
    layers = _check_network(params, network_config)
    node_annotations, graph_annotations = [{}] * len(layers), {}
    if integer_weights is not None:
        node_annotations, graph_annotations = nir_annotations(params, integer_weights)

    nodes: dict[str, nir.NIRNode] = {"input": nir.Input(input_type=np.array([network_config.input_size]))}
    edges: list[tuple[str, str]] = []
    last = "input"
    hidden, readout = layers[:-1], layers[-1]
    for number, layer in enumerate(hidden, start=1):
        size = np.shape(layer["weight"])[0]
        nodes[f"affine_{number}"] = _affine(layer, node_annotations[number - 1])
        edges.append((last, f"affine_{number}"))
        last = _spiking_layer(
            nodes, edges, f"affine_{number}", str(number),
            _effective_constant(layer, "beta", network_config.beta, size),
            _effective_constant(layer, "threshold", network_config.threshold, size),
            network_config.reset, dt, f"hidden layer {number}",
        )
    size = network_config.num_classes
    nodes["affine_out"] = _affine(readout, node_annotations[-1])
    edges.append((last, "affine_out"))
    if network_config.readout == "spike_count":
        readout_name = _spiking_layer(
            nodes, edges, "affine_out", "out",
            _effective_constant(readout, "beta", network_config.beta, size),
            _effective_constant(readout, "threshold", network_config.threshold, size),
            network_config.reset, dt, "output layer",
        )
    else:
        neurons = _neuron_node(
            _effective_constant(readout, "beta", network_config.readout_beta, size), None, dt, "read-out layer"
        )
        readout_name = f"{type(neurons).__name__.lower()}_out"
        nodes[readout_name] = neurons
        edges.append(("affine_out", readout_name))
    nodes["output"] = nir.Output(output_type=np.array([size]))
    edges.append((readout_name, "output"))

    graph_metadata = _graph_metadata(network_config, dt, frame_shape, readout_name)
    graph_metadata.update(graph_annotations)
    graph_metadata.update(dict(metadata or {}))
    return nir.NIRGraph(nodes=nodes, edges=edges, metadata=graph_metadata)


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
        "recurrent_edge_delay_steps": 1,
        "reset": network_config.reset,
        "reset_form": (
            "LIF with v_reset = 0" if network_config.reset == "zero"
            else "CubaLIF (tau_mem = dt, r = 1) whose synaptic current is the membrane before reset, with a "
            "recurrent Linear of weight -beta*theta delivered one step later"
        ),
        "spike_condition": "spike when v > v_threshold, then v <- v_reset in the same step",
        # The trained network fires at v >= theta; the two differ only when v lands exactly on theta.
        "trained_spike_condition": "v >= threshold",
        "trained_compute_dtype": network_config.compute_dtype,
        "readout": network_config.readout,
        "readout_node": readout_node,
        "readout_description": (
            f"logits = spike counts of {readout_node} over the T steps" if network_config.readout == "spike_count"
            else f"logits = {network_config.readout} over the T steps of the {readout_node} membrane"
        ),
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
