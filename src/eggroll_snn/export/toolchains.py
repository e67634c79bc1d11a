"""Run an exported NIR graph in SNN simulators that other people wrote (Spyx, Norse, snnTorch).

Each function imports the graph with the toolchain's own NIR importer, runs it on the same
inputs, and returns what reached the output at each of our time steps and the logits reduced as
``graph.metadata["readout"]`` says. The toolchains are optional: each function imports its
package when called.

Their conventions, and how the export meets them:

* **Spyx 1.0** (``spyx.nir.from_nir(graph, x, dt)``, JAX). ``dt`` is an argument: decay factors
  are ``1 - dt/tau``, so pass the graph's own ``dt`` (any value works). It ignores ``r`` and
  ``w_in`` (unit input scale, which the export has), and its neurons subtract the threshold:
  it cannot express reset to zero, so only ``reset="subtract"`` graphs run here, as
  ``RCuBaLIF`` (the CubaLIF + recurrent Linear pair; ``tau_mem = dt`` gives its membrane decay
  0). Its importer has no module for a bare ``nir.LI``; an LI read-out is run with
  ``spyx.nn.LI`` built from the ``li_out`` node here (a read-out with ``readout_beta = 0``
  has no LI: the whole graph is Spyx's own import). Spyx's neurons emit the spike of the
  *previous* step's membrane: every spiking layer adds one step of lag. So the inputs get one
  zero frame per spiking layer appended and the outputs are read that many steps later; the
  layer after the first spiking layer then receives its bias once before the first real input,
  which its start state ``-b / decay`` cancels. That cancellation is exact for one hidden layer
  (the default network); deeper graphs are refused.
* **Norse 1.1** (``norse.torch.from_nir(graph, dt=dt)``, PyTorch, through nirtorch's graph
  executor, whose recurrent edges deliver one step later as ours do). ``dt`` is an argument:
  pass the graph's own. Forward Euler like the export, no lag: its CubaLIF runs ``w_in``, an
  ``LIBoxCell`` synapse and ``r``, so the subtraction form runs exactly. Its LIF ignores ``r``
  (it assumes ``r = 1``, the export has ``r = tau/dt``), so reset-to-zero graphs are refused;
  its importer has no ``nir.LI``, so an LI read-out runs as Norse's ``LIBoxCell`` built from
  ``li_out`` here (input scaled by ``r``, as NIR's equation says); without LI
  (``readout_beta = 0``) the whole graph is Norse's own import.
* **snnTorch 1.0** (``snntorch.import_nir.import_from_nir``, PyTorch). It fixes
  ``dt = 1e-4`` s (``beta = 1 - 1e-4/tau``), so export with ``--dt 1e-4``. Its LIF resets to
  zero in the same step (as NIR says), but its recurrent CubaLIF (``RSynaptic``) also zeroes the
  synaptic current, so it cannot run the subtraction form; it has no ``nir.LI`` either. It runs
  ``reset="zero"`` graphs whose read-out is an Affine (``readout_beta = 0``) or spiking.
"""

from __future__ import annotations

from typing import Any

import nir
import numpy as np

from eggroll_snn.errors import ConfigError

SNNTORCH_DT = 1e-4


def _reduce(outputs: np.ndarray, readout: str) -> np.ndarray:
    """``(B, T, n)`` outputs -> ``(B, n)`` logits, by the graph's read-out rule."""
    return {"mean": np.mean, "max": np.max, "spike_count": np.sum}[readout](outputs, axis=1)


def subgraph_until(graph: nir.NIRGraph, last: str) -> nir.NIRGraph:
    """The graph from its input up to node ``last`` (with ``last``'s recurrent edge), then an Output.

    Node names are kept; the metadata is the graph's, with ``readout="spike_count"`` when
    ``last`` spikes (so ``simulate_nir`` and the runners here count its spikes).
    """
    kept, frontier = {"input"}, ["input"]
    forward = [edge for edge in graph.edges if not (edge[0].startswith("rec_") and edge[1] == edge[0].replace("rec_", "cubalif_", 1))]
    while frontier:
        name = frontier.pop()
        if name == last:
            continue
        for source, target in forward:
            if source == name and target not in kept:
                kept.add(target)
                frontier.append(target)
    recurrent = f"rec_{last.split('_', 1)[1]}" if last.startswith("cubalif_") else None
    if recurrent in graph.nodes:
        kept.add(recurrent)
    kept.discard("output")
    nodes = {name: graph.nodes[name] for name in graph.nodes if name in kept}
    size = int(np.prod(graph.nodes[last].output_type["output"]))
    nodes["output"] = nir.Output(output_type=np.array([size]))
    edges = [edge for edge in graph.edges if edge[0] in kept and edge[1] in kept]
    edges.append((last, "output"))
    metadata = dict(graph.metadata or {})
    if not isinstance(graph.nodes[last], (nir.LI, nir.I)):
        metadata["readout"] = "spike_count"
    return nir.NIRGraph(nodes=nodes, edges=edges, metadata=metadata)


def _integrator_readout(graph: nir.NIRGraph) -> bool:
    """Whether the graph's logits are read from an ``LI`` / ``I`` membrane (not spikes, not an Affine)."""
    metadata = dict(graph.metadata or {})
    return isinstance(graph.nodes.get(str(metadata.get("readout_node", ""))), (nir.LI, nir.I))


def _dense_only(graph: nir.NIRGraph, tool: str) -> None:
    """Refuse a graph with convolutional blocks: the runners here align dense graphs only."""
    conv = sorted(name for name, node in graph.nodes.items() if isinstance(node, (nir.Conv2d, nir.SumPool2d, nir.AvgPool2d, nir.Flatten)))
    if conv:
        raise ConfigError(
            f"{tool}: this runner aligns dense graphs only; the graph has convolutional nodes ({', '.join(conv)}), "
            "which only eggroll_snn's own NIR interpreter checks"
        )


def run_in_spyx(graph: nir.NIRGraph, inputs: np.ndarray) -> dict[str, Any]:
    """Import ``graph`` with Spyx 1.0's ``from_nir`` and run it on ``inputs`` (B, T, n_in).

    Returns:
      ``{"outputs": (B, T, n_out), "logits": (B, n_out)}``, aligned with our time steps.

    Raises:
      ConfigError: a graph Spyx cannot run exactly (reset to zero, more than one hidden layer).
    """
    import jax.numpy as jnp
    import spyx.nir
    import spyx.nn
    from flax import nnx

    _dense_only(graph, "Spyx")
    metadata = dict(graph.metadata or {})
    if metadata.get("reset") != "subtract":
        raise ConfigError("Spyx: its neurons always reset by subtraction; it cannot run a graph that resets to zero")
    readout, dt = str(metadata.get("readout", "mean")), float(metadata["dt"])
    hidden = [name for name in graph.nodes if name.startswith("cubalif_") and name != "cubalif_out"]
    if len(hidden) > 1:
        raise ConfigError(f"Spyx: {len(hidden)} hidden layers; the start-up correction here is exact for one only")
    integrator = _integrator_readout(graph)
    if not hidden and readout != "spike_count":
        raise ConfigError("Spyx: a graph without hidden layers and with a membrane read-out has no spiking part to import")
    inputs = np.asarray(inputs, np.float32)
    spiking = subgraph_until(graph, hidden[-1]) if integrator else graph
    copy = nir.NIRGraph(nodes=dict(spiking.nodes), edges=list(spiking.edges), metadata=dict(spiking.metadata or {}))
    model, _ = spyx.nir.from_nir(copy, jnp.zeros((1, 1, inputs.shape[2]), jnp.float32), dt=dt)
    layers = list(model.layers)
    lag = sum(isinstance(layer, (spyx.nn.RCuBaLIF, spyx.nn.LIF, spyx.nn.CuBaLIF)) for layer in layers)
    if integrator:
        affine, li = graph.nodes["affine_out"], graph.nodes[metadata["readout_node"]]
        linear = nnx.Linear(affine.weight.shape[1], affine.weight.shape[0], rngs=nnx.Rngs(0))
        linear.kernel[...] = jnp.asarray(affine.weight.T)
        linear.bias[...] = jnp.asarray(affine.bias)
        leaky = spyx.nn.LI((affine.weight.shape[0],), rngs=nnx.Rngs(0))
        leaky.beta[...] = jnp.asarray(1 - dt / li.tau, jnp.float32)
        layers += [linear, leaky]
        model = spyx.nn.Sequential(*layers)
    state = model.initial_state(inputs.shape[0])
    # The layer after the first spiking layer sees its bias one step early; start it where that cancels.
    spiking_seen, bias = 0, None
    for index, layer in enumerate(layers):
        if isinstance(layer, nnx.Linear):
            bias = np.asarray(layer.bias[...]) if layer.bias is not None else 0.0
        elif state[index] is not None:
            if spiking_seen == 1:
                state[index] = _cancelling_state(layer, state[index], bias)
            spiking_seen += 1
    padded = np.concatenate([inputs, np.zeros((inputs.shape[0], lag, inputs.shape[2]), np.float32)], axis=1)
    outputs, _ = spyx.nn.run(model, jnp.asarray(padded), state, batch_major=True)
    outputs = np.asarray(outputs, np.float64)[:, lag : lag + inputs.shape[1]]
    return {"outputs": outputs, "logits": _reduce(outputs, readout)}


def _cancelling_state(layer, state, bias: np.ndarray):
    """Start state of a Spyx layer whose first input is its bias alone: after that step it is zero."""
    import jax.numpy as jnp
    import spyx.nn

    if isinstance(layer, spyx.nn.RCuBaLIF):
        alpha = np.clip(np.asarray(layer.alpha[...], np.float64), 0, 1)
        current = np.where(alpha > 0, -bias / np.where(alpha > 0, alpha, 1), 0.0)
        membrane = np.zeros_like(current)
        return jnp.asarray(np.concatenate([np.broadcast_to(membrane, state.shape[:-1] + (membrane.shape[-1],)),
                                           np.broadcast_to(current, state.shape[:-1] + (current.shape[-1],))], axis=-1), state.dtype)
    if isinstance(layer, spyx.nn.LI):
        beta = np.clip(np.asarray(layer.beta[...], np.float64), 0, 1)
        value = np.where(beta > 0, -bias / np.where(beta > 0, beta, 1), 0.0)
        return jnp.asarray(np.broadcast_to(value, state.shape), state.dtype)
    raise ConfigError(f"Spyx: no start-up correction for a {type(layer).__name__} after the first spiking layer")


def run_in_snntorch(graph: nir.NIRGraph, inputs: np.ndarray) -> dict[str, Any]:
    """Import ``graph`` with snnTorch 1.0's ``import_from_nir`` and run it on ``inputs`` (B, T, n_in).

    Returns:
      ``{"outputs": (B, T, n_out), "logits": (B, n_out)}``.

    Raises:
      ConfigError: a graph snnTorch cannot run as exported (reset by subtraction, an LI
        read-out, a ``dt`` other than its fixed 1e-4 s).
    """
    import torch
    from snntorch.import_nir import import_from_nir
    from snntorch.utils import reset

    _dense_only(graph, "snnTorch")
    metadata = dict(graph.metadata or {})
    if metadata.get("reset") != "zero":
        raise ConfigError("snnTorch: its recurrent CubaLIF zeroes the synaptic current on a spike; it cannot run reset by subtraction")
    if _integrator_readout(graph):
        raise ConfigError(
            "snnTorch: import_from_nir has no module for nir.LI / nir.I; train with network.readout_beta = 0 "
            "(an Affine read-out) or readout = 'spike_count'"
        )
    if not np.isclose(float(metadata["dt"]), SNNTORCH_DT, rtol=1e-12):
        raise ConfigError(f"snnTorch: import_from_nir assumes dt = {SNNTORCH_DT:g} s; export with --dt {SNNTORCH_DT:g}")
    module = import_from_nir(nir.NIRGraph(nodes=dict(graph.nodes), edges=list(graph.edges), metadata=metadata))
    inputs = np.asarray(inputs, np.float32)
    reset(module)
    with torch.no_grad():
        steps = [module(torch.from_numpy(np.ascontiguousarray(inputs[:, t])))[0] for t in range(inputs.shape[1])]
    outputs = torch.stack(steps, dim=1).numpy().astype(np.float64)
    return {"outputs": outputs, "logits": _reduce(outputs, str(metadata.get("readout", "mean")))}


def run_in_norse(graph: nir.NIRGraph, inputs: np.ndarray) -> dict[str, Any]:
    """Import ``graph`` with Norse 1.1's ``from_nir`` and run it on ``inputs`` (B, T, n_in).

    Returns:
      ``{"outputs": (B, T, n_out), "logits": (B, n_out)}``.

    Raises:
      ConfigError: a graph Norse cannot run as exported (LIF / IF nodes, whose ``r`` it ignores;
        an LI read-out straight on the input).
    """
    import torch
    from norse.torch import from_nir
    from norse.torch.module.leaky_integrator_box import LIBoxCell, LIBoxParameters

    _dense_only(graph, "Norse")
    metadata = dict(graph.metadata or {})
    if any(isinstance(node, (nir.LIF, nir.IF)) for node in graph.nodes.values()):
        raise ConfigError("Norse: its LIF ignores r (it assumes r = 1, the export writes r = tau/dt); it cannot run reset to zero")
    readout, dt = str(metadata.get("readout", "mean")), float(metadata["dt"])
    if not _integrator_readout(graph):
        spiking, read_out = graph, None
    else:
        last_hidden = next(source for source, target in graph.edges if target == "affine_out")
        if last_hidden == "input":
            raise ConfigError("Norse: a graph without hidden layers and with an LI read-out has no spiking part to import")
        spiking = subgraph_until(graph, last_hidden)
        affine, li = graph.nodes["affine_out"], graph.nodes[metadata["readout_node"]]
        linear = torch.nn.Linear(affine.weight.shape[1], affine.weight.shape[0])
        linear.weight.data = torch.as_tensor(np.asarray(affine.weight, np.float32))
        linear.bias.data = torch.as_tensor(np.asarray(affine.bias, np.float32))
        leaky = LIBoxCell(
            LIBoxParameters(tau_mem_inv=torch.as_tensor(1 / li.tau, dtype=torch.float32), v_leak=torch.as_tensor(li.v_leak, dtype=torch.float32)),
            dt=dt,
        )
        resistance = torch.as_tensor(np.asarray(li.r, np.float32))
        read_out = (linear, leaky, resistance)
    module = from_nir(nir.NIRGraph(nodes=dict(spiking.nodes), edges=list(spiking.edges), metadata=dict(spiking.metadata or {})), ignore_warnings=True, dt=dt)
    inputs = np.asarray(inputs, np.float32)
    state, leaky_state, steps = None, None, []
    with torch.no_grad():
        for t in range(inputs.shape[1]):
            out, state = module(torch.from_numpy(np.ascontiguousarray(inputs[:, t])), state)
            if read_out is not None:
                linear, leaky, resistance = read_out
                out, leaky_state = leaky(resistance * linear(out), leaky_state)
            steps.append(out.numpy())
    outputs = np.stack(steps, axis=1).astype(np.float64)
    return {"outputs": outputs, "logits": _reduce(outputs, readout)}


RUNNERS = {"spyx": run_in_spyx, "norse": run_in_norse, "snntorch": run_in_snntorch}

__all__ = ["run_in_spyx", "run_in_norse", "run_in_snntorch", "subgraph_until", "RUNNERS", "SNNTORCH_DT"]
