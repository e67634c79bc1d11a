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
network's discrete update ``v[t] = beta v[t-1] + I[t]`` (see :mod:`eggroll_snn.network`); ``dt``
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
  NIR has no node for a reduction over time). With ``readout_beta = 0`` the integrator keeps
  no memory (``u[t] = W s[t] + b``): the LI node is left out and the logits are the mean / max
  of the ``affine_out`` output, so the graph holds no LI. ``readout="spike_count"``: the output layer is
  written like a hidden layer (``lif_out`` or ``cubalif_out`` + ``rec_out``) and the logits are
  its spike counts, so a dense graph holds only Affine, Linear, LIF / CubaLIF, Input and Output.
* **convolutional blocks** (``conv_channels``): ``Conv2d [conv_j]`` (kernel ``(C_out, C_in, k, k)``,
  the network's ``(C_out, C_in*k*k)`` weight reshaped; no padding) ``-> LIF / CubaLIF [*_cj]``
  over the map ``(C, H', W')`` (the recurrent node of the subtraction form is then an elementwise
  ``Scale`` ``-beta theta``) ``-> SumPool2d [pool_j]``, and one ``Flatten [flatten]``
  (``start_dim = 0`` of the ``(C, H, W)`` type) before the dense layers. Maps are channels-first,
  as NIR writes them; the network flattens in (y, x, c) order, so the first dense weight's
  columns are re-ordered to (c, y, x). The Input node's type is then ``(P, H, W)``.

There is one graph step per frame time bin; apart from the recurrent edges there is no delay
along edges: input bin ``t`` reaches the read-out at step ``t``. The network fires at
``v >= theta`` and NIR at ``v > v_threshold``: the two differ only when a membrane lands exactly
on the threshold, which the re-simulation check of :func:`eggroll_snn.export.run.export_run` would show.

What NIR cannot express exactly is refused (:class:`~eggroll_snn.errors.ConfigError`), never
exported approximately: a layer mixing ``beta = 1`` with leaky neurons, ``beta = 1`` with reset by
subtraction (``tau_syn`` would be infinite).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import nir
import numpy as np

from eggroll_snn import __version__
from eggroll_snn.errors import ConfigError
from eggroll_snn.export.simulate import check_dt
from eggroll_snn.integer.grid import nir_annotations
from eggroll_snn.network import MIN_THRESHOLD

DISCRETISATION = "forward_euler"


def _effective_constant(layer: Mapping[str, Any], name: str, default: float, size: int) -> np.ndarray:
    """A layer's per-neuron ``beta`` or ``threshold`` as the network uses it, float64 (size,).

    A learned vector in the layer takes precedence over the config's scalar; the same limits as
    in :mod:`eggroll_snn.network` apply (``beta`` clipped to [0, 1], ``threshold >= MIN_THRESHOLD``),
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


def _subtracting_neurons(
    beta: np.ndarray, threshold: np.ndarray, dt: float, where: str
) -> tuple[nir.CubaLIF, nir.NIRNode]:
    """``CubaLIF`` + recurrent node that together reset by subtraction (module docstring).

    ``beta`` and ``threshold`` have the layer's neuron shape: ``(n,)`` gives a recurrent
    ``Linear`` ``diag(-beta theta)`` (the pattern snnTorch and Spyx import as one recurrent
    layer), a map ``(C, H, W)`` a recurrent ``Scale`` ``-beta theta`` (the same, elementwise).

    Raises:
      ConfigError: a neuron has ``beta = 1`` (no leak): ``tau_syn`` would be infinite.
    """
    if (beta == 1.0).any():
        raise ConfigError(
            f"{where}: {int((beta == 1.0).sum())} of {beta.size} neurons have beta = 1 (no leak) and reset by "
            "subtraction; NIR expresses subtraction through a CubaLIF whose synaptic time constant would "
            "be infinite. Train with beta < 1 or with network.reset = 'zero'."
        )
    tau_syn = dt / (1.0 - beta)
    neurons = nir.CubaLIF(
        tau_syn=tau_syn, tau_mem=np.full(beta.shape, dt), r=np.ones(beta.shape), v_leak=np.zeros(beta.shape),
        v_threshold=threshold, v_reset=np.zeros(beta.shape), w_in=tau_syn / dt,
    )
    feedback = -beta * threshold
    recurrent = nir.Linear(weight=np.diag(feedback)) if beta.ndim == 1 else nir.Scale(scale=feedback)
    return neurons, recurrent


def _spiking_layer(
    nodes: dict[str, nir.NIRNode], edges: list[tuple[str, str]], source: str, suffix: str,
    beta: np.ndarray, threshold: np.ndarray, reset: str, dt: float, where: str,
) -> str:
    """Add one spiking layer fed by ``source`` to ``nodes``/``edges``; returns its output node's name."""
    if reset == "zero":
        if beta.ndim == 1:
            neurons = _neuron_node(beta, threshold, dt, where)
        else:  # a map (C, H, W): the node's parameters take its shape
            flat = _neuron_node(beta.ravel(), threshold.ravel(), dt, where)
            neurons = type(flat)(**{
                field: np.reshape(getattr(flat, field), beta.shape)
                for field in ("tau", "r", "v_leak", "v_threshold", "v_reset") if hasattr(flat, field)
            })
        name = f"{type(neurons).__name__.lower()}_{suffix}"
        nodes[name] = neurons
        edges.append((source, name))
        return name
    name, recurrent = f"cubalif_{suffix}", f"rec_{suffix}"
    nodes[name], nodes[recurrent] = _subtracting_neurons(beta, threshold, dt, where)
    edges += [(source, name), (name, recurrent), (recurrent, name)]
    return name


def _conv_blocks(
    nodes: dict[str, nir.NIRNode], edges: list[tuple[str, str]], layers: Sequence[Mapping[str, Any]],
    network_config, dt: float, annotations: Sequence[Mapping[str, Any]],
) -> str:
    """Add ``Conv2d -> LIF/CubaLIF -> SumPool2d`` per conv block and a ``Flatten``; returns the last node.

    Maps are channels-first ``(C, H, W)`` as NIR and its importers use them (the network runs
    channels-last; the weights are the same numbers, reshaped).
    """
    k, stride, pool = network_config.conv_kernel, network_config.conv_stride, network_config.conv_pool
    last = "input"
    channels_in, height, width = network_config.input_shape
    for number, (layer, (pooled_h, pooled_w, channels)) in enumerate(zip(layers, network_config.conv_shapes), start=1):
        conv_h, conv_w = (height - k) // stride + 1, (width - k) // stride + 1
        weight = np.asarray(layer["weight"], np.float32).reshape(channels, channels_in, k, k)
        nodes[f"conv_{number}"] = nir.Conv2d(
            input_shape=(height, width), weight=weight, stride=(stride, stride), padding=(0, 0),
            dilation=(1, 1), groups=1, bias=np.asarray(layer["bias"], np.float32), metadata=dict(annotations[number - 1]),
        )
        edges.append((last, f"conv_{number}"))
        per_map = lambda name, default: np.broadcast_to(  # noqa: E731
            _effective_constant(layer, name, default, channels)[:, None, None], (channels, conv_h, conv_w)
        ).copy()
        last = _spiking_layer(
            nodes, edges, f"conv_{number}", f"c{number}", per_map("beta", network_config.beta),
            per_map("threshold", network_config.threshold), network_config.reset, dt, f"conv block {number}",
        )
        if pool > 1:
            nodes[f"pool_{number}"] = nir.SumPool2d(
                kernel_size=np.array([pool, pool]), stride=np.array([pool, pool]), padding=np.array([0, 0])
            )
            edges.append((last, f"pool_{number}"))
            last = f"pool_{number}"
        channels_in, height, width = channels, pooled_h, pooled_w
    nodes["flatten"] = nir.Flatten(input_type={"input": np.array([channels_in, height, width])}, start_dim=0, end_dim=-1)
    edges.append((last, "flatten"))
    return "flatten"


def _channels_first_columns(weight: np.ndarray, shape: tuple[int, int, int]) -> np.ndarray:
    """A dense weight ``(out, H*W*C)`` that reads (y, x, c)-flattened maps, re-ordered to read (c, y, x)."""
    height, width, channels = shape
    return weight.reshape(weight.shape[0], height, width, channels).transpose(0, 3, 1, 2).reshape(weight.shape[0], -1)


def _check_network(params: Mapping[str, Any], network_config) -> list[Mapping[str, Any]]:
    """The layer list of ``params``, checked against ``network_config``'s weight shapes."""
    if getattr(network_config, "recurrent", False):
        raise ConfigError(
            "NIR export covers feed-forward networks; this network has recurrent LIF layers "
            "(network.recurrent), which the exporter does not write yet"
        )
    layers = list(params["layers"])
    shapes = network_config.weight_shapes
    if len(layers) != len(shapes):
        raise ConfigError(
            f"params: {len(layers)} layers, but the network config (conv_channels="
            f"{tuple(network_config.conv_channels)}, hidden_sizes={tuple(network_config.hidden_sizes)}) needs "
            f"{len(shapes)}; the parameters belong to a different network"
        )
    for index, (layer, (fan_out, fan_in)) in enumerate(zip(layers, shapes)):
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
        :func:`eggroll_snn.network.init_params`; the last layer is the read-out. Optional per-layer
        ``"beta"``/``"threshold"`` vectors override the config's scalars.
      network_config: the :class:`eggroll_snn.network.NetworkConfig` the parameters were trained with.
      dt: the duration of one time step (one frame time bin) in seconds; it only sets the time
        scale of ``tau`` and cancels out of the discrete dynamics.
      frame_shape: ``(T, P, H, W)`` of the frames the network reads, recorded in the metadata;
        ``P * H * W`` must equal ``network_config.input_size``.
      metadata: extra entries for the graph metadata (strings, numbers, lists of numbers, dicts).
      integer_weights: for a model trained with integer weights, its record from ``model.json``
        (``"weights"``, see :func:`eggroll_snn.integer.grid.describe`): the weights and biases must be
        integers times their layer's scale; each Affine node's metadata then holds ``weight_int``,
        ``bias_int`` and ``scale`` (``weight == weight_int * scale`` exactly) and the graph
        metadata the format, ``q_max`` and the scales.

    Returns:
      A ``nir.NIRGraph``. Node names: ``input``, ``affine_1``, ``lif_1`` (reset to zero) or
      ``cubalif_1`` + ``rec_1`` (reset by subtraction), ..., ``affine_out``, then ``li_out``
      (mean/max read-out; none when ``readout_beta = 0``) or a spiking ``lif_out`` / ``cubalif_out`` + ``rec_out``
      (spike-count read-out), and ``output`` (``if_<n>`` / ``i_out`` for leak-free layers).
      Neuron parameters are per-neuron float64 arrays; weights and biases stay float32.

    Raises:
      ConfigError: ``dt`` not a positive number, ``params`` not shaped as ``network_config``
        says, ``frame_shape`` not matching the input size, a layer
        mixing ``beta = 1`` with ``beta < 1``, or ``beta = 1`` with reset by subtraction.
      CheckpointError: ``integer_weights`` given but the weights are not on its grid.
    """
    dt = check_dt(dt)
    layers = _check_network(params, network_config)
    node_annotations, graph_annotations = [{}] * len(layers), {}
    if integer_weights is not None:
        node_annotations, graph_annotations = nir_annotations(params, integer_weights)

    num_conv = len(network_config.conv_channels)
    input_shape = tuple(network_config.input_shape) if num_conv else (network_config.input_size,)
    nodes: dict[str, nir.NIRNode] = {"input": nir.Input(input_type=np.array(input_shape))}
    edges: list[tuple[str, str]] = []
    last = "input"
    if num_conv:
        last = _conv_blocks(nodes, edges, layers[:num_conv], network_config, dt, node_annotations[:num_conv])
        # The network flattens maps in (y, x, c) order, NIR's Flatten in (c, y, x): re-order the reader's columns.
        layers = [*layers[:num_conv], dict(layers[num_conv]), *layers[num_conv + 1 :]]
        layers[num_conv]["weight"] = _channels_first_columns(
            np.asarray(layers[num_conv]["weight"]), network_config.conv_shapes[-1]
        )
        if "weight_int" in node_annotations[num_conv]:
            node_annotations = list(node_annotations)
            node_annotations[num_conv] = dict(node_annotations[num_conv])
            node_annotations[num_conv]["weight_int"] = _channels_first_columns(
                np.asarray(node_annotations[num_conv]["weight_int"]), network_config.conv_shapes[-1]
            )
    hidden, readout = layers[num_conv:-1], layers[-1]
    for number, layer in enumerate(hidden, start=1):
        size = np.shape(layer["weight"])[0]
        nodes[f"affine_{number}"] = _affine(layer, node_annotations[num_conv + number - 1])
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
        readout_beta = _effective_constant(readout, "beta", network_config.readout_beta, size)
        readout_name = "affine_out"
        if (readout_beta != 0.0).any():  # beta = 0: u[t] = W s[t] + b is the Affine's own output
            neurons = _neuron_node(readout_beta, None, dt, "read-out layer")
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
