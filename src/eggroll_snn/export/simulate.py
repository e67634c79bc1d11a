"""An independent NIR interpreter: runs a NIR graph from NIR's own node equations.

Written from the NIR node definitions alone (it does not use :mod:`eggroll_snn.network`), so that
agreement between it and the trained network checks an export. Neuron equations are stepped with
forward Euler over ``dt`` in float64, from zero state, once per time step ``t``:

* ``LI``:  ``v <- v + dt/tau * (v_leak - v + r I)``;  ``I``: ``v <- v + dt r I``;
* ``LIF`` / ``IF``: the same, then ``z = (v > v_threshold)`` and ``v <- v_reset`` where ``z``;
* ``CubaLIF``: first the synaptic current ``i <- i + dt/tau_syn * (-i + w_in S)``, then the
  membrane with the *new* current ``v <- v + dt/tau_mem * (v_leak - v + r i)``, then spike and
  reset of ``v`` as for LIF (``i`` is never reset);
* ``Affine``: ``W x + b``; ``Linear``: ``W x``; ``Scale``: ``s * x``; ``Input`` / ``Output``: identity;
* ``Conv2d``: cross-correlation of a ``(C_in, H, W)`` map with the ``(C_out, C_in, kH, kW)``
  kernel (stride, integer zero padding, dilation; ``groups = 1``) plus the bias per channel;
  ``SumPool2d`` / ``AvgPool2d``: sum / mean over windows (no padding); ``Flatten``: merges the
  dimensions ``start_dim..end_dim`` of the per-sample shape (the batch axis not counted).

Neuron nodes take the shape of their parameters (``(n,)`` or a map ``(C, H, W)``); inputs
``(B, T, n_in)`` are reshaped to the Input node's type, outputs flattened to ``(B, T, n_out)``.

A spiking node emits ``z`` (1.0 or 0.0), a non-spiking one its membrane ``v``.

Timing: nodes are evaluated in a topological order of the graph without its *cycle-closing*
edges; every other edge has no delay (input bin ``t`` reaches the output at step ``t``). An edge
that closes a cycle (found by a depth-first walk from the Input node) delivers its source's value
of step ``t - 1`` (zero at ``t = 0``), so a neuron's recurrent input at step ``t`` comes from its
spikes at ``t - 1``. A node with several incoming edges receives their sum.
"""

from __future__ import annotations

from typing import Any

import nir
import numpy as np

from eggroll_snn.errors import ConfigError, DataFormatError

#: How the output trace becomes logits: ``graph.metadata["readout"]``.
READOUT_REDUCTIONS = ("mean", "max", "spike_count")
NEURON_NODES = (nir.LIF, nir.LI, nir.IF, nir.I, nir.CubaLIF)
SPIKING_NODES = (nir.LIF, nir.IF, nir.CubaLIF)
SUPPORTED_NODES = (
    nir.Input, nir.Output, nir.Affine, nir.Linear, nir.Scale, nir.Conv2d, nir.SumPool2d, nir.AvgPool2d, nir.Flatten,
    *NEURON_NODES,
)


def check_dt(dt) -> float:
    """``dt`` as a float, or ConfigError when it is not a positive, finite number of seconds."""
    try:
        value = float(dt)
    except (TypeError, ValueError):
        value = float("nan")
    if not (np.isfinite(value) and value > 0):
        raise ConfigError(f"dt={dt!r}: the time step must be a positive, finite number of seconds (e.g. 1e-3)")
    return value


def evaluation_order(graph: nir.NIRGraph, start: str) -> tuple[list[str], list[tuple[str, str]], list[tuple[str, str]]]:
    """Node order for one time step, and the graph's edges split into immediate and delayed ones.

    A depth-first walk from ``start`` marks every edge that leads back to a node still on the walk
    as cycle-closing (delayed by one step); the rest form a DAG, ordered topologically.

    Returns:
      ``(order, immediate_edges, delayed_edges)``.

    Raises:
      DataFormatError: an edge names an unknown node, or a node cannot be reached from ``start``.
    """
    successors: dict[str, list[str]] = {name: [] for name in graph.nodes}
    for source, target in graph.edges:
        if source not in successors or target not in successors:
            raise DataFormatError(f"NIR graph edge ({source!r}, {target!r}) names a node the graph does not have")
        successors[source].append(target)
    delayed: set[tuple[str, str]] = set()
    state: dict[str, str] = {}  # "open" while on the walk, then "done"
    stack = [(start, iter(successors[start]))]
    state[start] = "open"
    while stack:
        name, targets = stack[-1]
        target = next(targets, None)
        if target is None:
            state[name] = "done"
            stack.pop()
        elif state.get(target) == "open":
            delayed.add((name, target))
        elif target not in state:
            state[target] = "open"
            stack.append((target, iter(successors[target])))
    unreached = sorted(set(graph.nodes) - set(state))
    if unreached:
        raise DataFormatError(f"NIR graph nodes {unreached} cannot be reached from the input node {start!r}")
    immediate = [edge for edge in graph.edges if tuple(edge) not in delayed]
    sources: dict[str, list[str]] = {name: [] for name in graph.nodes}
    for source, target in immediate:
        sources[target].append(source)
    order: list[str] = []
    placed: set[str] = set()
    while len(order) < len(graph.nodes):
        ready = [name for name in graph.nodes if name not in placed and all(s in placed for s in sources[name])]
        if not ready:  # cannot happen once the cycle-closing edges are set apart; guards the loop
            raise DataFormatError(f"NIR graph: nodes {sorted(set(graph.nodes) - placed)} cannot be ordered")
        order += ready
        placed.update(ready)
    return order, immediate, sorted(delayed)


def _conv2d(node: nir.Conv2d, x: np.ndarray) -> np.ndarray:
    """``x`` (B, C_in, H, W) -> (B, C_out, H', W'): NIR's Conv2d (cross-correlation) in float64."""
    if int(node.groups) != 1 or isinstance(node.padding, str):
        raise DataFormatError(f"NIR Conv2d with groups={node.groups}, padding={node.padding!r}: simulate_nir needs groups = 1 and integer padding")
    weight = np.asarray(node.weight, np.float64)
    (pad_h, pad_w), (stride_h, stride_w), (dil_h, dil_w) = (np.broadcast_to(np.asarray(v).astype(int), (2,)) for v in (node.padding, node.stride, node.dilation))
    x = np.pad(x, ((0, 0), (0, 0), (pad_h, pad_h), (pad_w, pad_w)))
    k_h, k_w = weight.shape[2:]
    out_h = (x.shape[2] - dil_h * (k_h - 1) - 1) // stride_h + 1
    out_w = (x.shape[3] - dil_w * (k_w - 1) - 1) // stride_w + 1
    result = np.zeros((x.shape[0], weight.shape[0], out_h, out_w))
    for i in range(k_h):
        for j in range(k_w):
            window = x[:, :, i * dil_h : i * dil_h + stride_h * out_h : stride_h, j * dil_w : j * dil_w + stride_w * out_w : stride_w]
            result += np.einsum("bchw,oc->bohw", window, weight[:, :, i, j])
    bias = np.asarray(node.bias, np.float64) if node.bias is not None else 0.0
    return result + np.reshape(bias, (1, -1, 1, 1))


def _pool2d(node: nir.NIRNode, x: np.ndarray) -> np.ndarray:
    """``x`` (B, C, H, W) summed (SumPool2d) or averaged (AvgPool2d) over windows, no padding."""
    if np.any(np.asarray(node.padding) != 0):
        raise DataFormatError(f"NIR {type(node).__name__} with padding {node.padding}: simulate_nir pools without padding")
    (k_h, k_w), (s_h, s_w) = (np.broadcast_to(np.asarray(v).astype(int), (2,)) for v in (node.kernel_size, node.stride))
    out_h, out_w = (x.shape[2] - k_h) // s_h + 1, (x.shape[3] - k_w) // s_w + 1
    result = np.zeros(x.shape[:2] + (out_h, out_w))
    for i in range(k_h):
        for j in range(k_w):
            result += x[:, :, i : i + s_h * out_h : s_h, j : j + s_w * out_w : s_w]
    return result / (k_h * k_w) if isinstance(node, nir.AvgPool2d) else result


def _flatten(node: nir.Flatten, x: np.ndarray) -> np.ndarray:
    """Merge the per-sample dimensions ``start_dim..end_dim`` of ``x`` (B, ...)."""
    dims = x.ndim - 1
    start, end = node.start_dim % dims, node.end_dim % dims
    shape = x.shape[1:]
    return x.reshape((x.shape[0], *shape[:start], int(np.prod(shape[start : end + 1])), *shape[end + 1 :]))


def _membrane_step(node: nir.NIRNode, v: np.ndarray, current: np.ndarray, dt: float) -> np.ndarray:
    """One forward-Euler step of an LI/LIF (``tau dv/dt = v_leak - v + r I``) or I/IF (``dv/dt = r I``)."""
    if isinstance(node, (nir.LIF, nir.LI)):
        return v + dt / node.tau * (node.v_leak - v + node.r * current)
    return v + dt * node.r * current


def simulate_nir(graph: nir.NIRGraph, inputs: np.ndarray, dt: float | None = None) -> dict[str, Any]:
    """Run a NIR graph on time-binned inputs, from NIR's continuous equations (see the module docstring).

    Args:
      graph: a NIR graph with one Input and one Output node and only the node types above.
      inputs: ``(B, T, n_in)`` values fed to the Input node at each step.
      dt: the time step in seconds; ``None`` reads ``graph.metadata["dt"]``.

    Returns:
      dict with ``"outputs"``: (B, T, n_out) float64, what reaches the Output node at each step;
      ``"logits"``: (B, n_out), ``outputs`` reduced over time by ``graph.metadata["readout"]``
      (``"mean"`` when absent, ``"max"``, or ``"spike_count"``: the sum over steps);
      ``"spikes"``: {spiking node name: (B, T, n) bool}; ``"membranes"``: {neuron node name:
      (B, T, n) float64 after reset}; ``"currents"``: {CubaLIF node name: (B, T, n) synaptic
      current}; ``"delayed_edges"``: the cycle-closing edges.

    Raises:
      DataFormatError: unsupported node types, not exactly one Input and one Output, unreachable
        nodes, inputs of the wrong shape, or an unknown readout in the metadata.
      ConfigError: no ``dt`` given and none recorded in the graph.
    """
    metadata = dict(graph.metadata or {})
    if dt is None:
        if "dt" not in metadata:
            raise ConfigError("dt: not given and the NIR graph's metadata records none; pass dt in seconds")
        dt = metadata["dt"]
    dt = check_dt(dt)
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
    order, immediate, delayed = evaluation_order(graph, input_names[0])

    inputs = np.asarray(inputs, dtype=np.float64)
    input_shape = tuple(int(n) for n in graph.nodes[input_names[0]].input_type["input"])
    input_size = int(np.prod(input_shape))
    if inputs.ndim != 3 or inputs.shape[2] != input_size:
        raise DataFormatError(f"inputs of shape {inputs.shape}: expected (B, T, {input_size}) for this NIR graph")
    batch, steps, _ = inputs.shape
    inputs = inputs.reshape((batch, steps, *input_shape))

    # Results are listed in evaluation order (input side first), whatever the file's node order.
    neurons = {name: graph.nodes[name] for name in order if isinstance(graph.nodes[name], NEURON_NODES)}
    spiking = [name for name, node in neurons.items() if isinstance(node, SPIKING_NODES)]
    cuba = [name for name, node in neurons.items() if isinstance(node, nir.CubaLIF)]
    v_state = {name: np.zeros((batch, *np.shape(node.v_leak if hasattr(node, "v_leak") else node.r))) for name, node in neurons.items()}
    i_state = {name: np.zeros_like(v_state[name]) for name in cuba}
    traces: dict[str, dict[str, list[np.ndarray]]] = {
        "membranes": {name: [] for name in neurons}, "spikes": {name: [] for name in spiking},
        "currents": {name: [] for name in cuba},
    }
    immediate_sources = {name: [source for source, target in immediate if target == name] for name in graph.nodes}
    delayed_sources = {name: [source for source, target in delayed if target == name] for name in graph.nodes}
    previous: dict[str, np.ndarray] = {}  # every node's value of the last step, for delayed edges
    outputs = []
    for t in range(steps):
        values: dict[str, np.ndarray] = {}
        for name in order:
            node = graph.nodes[name]
            if isinstance(node, nir.Input):
                values[name] = inputs[:, t]
                continue
            incoming = [values[source] for source in immediate_sources[name]]
            incoming += [previous[source] for source in delayed_sources[name] if source in previous]
            current = sum(incoming) if incoming else 0.0
            if isinstance(node, nir.Affine):
                values[name] = current @ np.asarray(node.weight, np.float64).T + np.asarray(node.bias, np.float64)
            elif isinstance(node, nir.Linear):
                values[name] = current @ np.asarray(node.weight, np.float64).T
            elif isinstance(node, nir.Scale):
                values[name] = current * np.asarray(node.scale, np.float64)
            elif isinstance(node, nir.Conv2d):
                values[name] = _conv2d(node, current)
            elif isinstance(node, (nir.SumPool2d, nir.AvgPool2d)):
                values[name] = _pool2d(node, current)
            elif isinstance(node, nir.Flatten):
                values[name] = _flatten(node, current)
            elif name in neurons:
                if isinstance(node, nir.CubaLIF):
                    synaptic = i_state[name]
                    synaptic = synaptic + dt / node.tau_syn * (-synaptic + node.w_in * current)
                    i_state[name] = synaptic
                    traces["currents"][name].append(synaptic)
                    v = v_state[name] + dt / node.tau_mem * (node.v_leak - v_state[name] + node.r * synaptic)
                else:
                    v = _membrane_step(node, v_state[name], current, dt)
                if name in spiking:
                    fired = v > node.v_threshold
                    v = np.where(fired, node.v_reset, v)
                    traces["spikes"][name].append(fired)
                    values[name] = fired.astype(np.float64)
                else:
                    values[name] = v
                v_state[name] = v
                traces["membranes"][name].append(v)
            else:  # Output
                values[name] = current
        previous = values
        outputs.append(np.reshape(values[output_names[0]], (batch, -1)))

    output_trace = np.stack(outputs, axis=1)
    reduce = {"mean": np.mean, "max": np.max, "spike_count": np.sum}[readout]
    result = {"outputs": output_trace, "logits": reduce(output_trace, axis=1), "delayed_edges": delayed}
    for kind, per_node in traces.items():
        result[kind] = {name: np.stack(trace, axis=1) for name, trace in per_node.items()}
    return result


__all__ = ["simulate_nir", "evaluation_order", "check_dt", "READOUT_REDUCTIONS", "SUPPORTED_NODES"]
