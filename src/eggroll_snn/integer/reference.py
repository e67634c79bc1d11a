"""An independent integer reference of the fixed-point LIF network: numpy int64, one time step at a time.

Written from the equations (stated again below) and the exported integer model only; it imports
nothing from the JAX path (:mod:`eggroll_snn.integer.arithmetic`), so agreement between the two is a check
of both. The model is the ``.npz`` + ``.json`` pair that :func:`eggroll_snn.integer.arithmetic.integer_model`
describes: arrays ``layer{i}_weight`` (out, in) and ``layer{i}_bias`` (out,), read-out last, and
a record with ``threshold``, ``state_bits``, ``leak`` (``"shift"`` or ``"multiplier"``),
``membrane_leak``, ``synapse_leak``, ``readout_leak`` and ``reset``.

For each time bin t = 1..T, every hidden layer (states start at 0; ``sat`` clips to the signed
``state_bits`` range)::

    I <- sat(D(I, synapse_leak) + W x)
    V <- sat(D(V, membrane_leak) + I + b)
    s  = 1 if V >= threshold else 0
    V <- V - threshold * s   (reset "subtract")   or   V * (1 - s)   (reset "zero")

then the read-out ``U <- sat(D(U, readout_leak) + W_out s + b_out)``, ``readout += U``. With
``D(z, d) = z - floor(z / 2**d)`` (shift) or ``D(z, d) = sign(z) * floor(|z| (4096 - d) / 4096)``
(multiplier).

Members (for the external evaluator): member ``i`` adds ``sign_i * A_i B_i^T`` to a layer's weight
(not clipped) and ``e_i`` to its bias (then saturated), all integers; many members run together.
"""

from __future__ import annotations

import numpy as np


def _decay(z: np.ndarray, leak: int, mode: str) -> np.ndarray:
    if mode == "shift":
        return z - np.floor_divide(z, 2**leak)
    magnitude = np.abs(z) * (4096 - leak)
    return np.sign(z) * np.floor_divide(magnitude, 4096)


def _sat(z: np.ndarray, bits: int) -> np.ndarray:
    return np.clip(z, -(2 ** (bits - 1)), 2 ** (bits - 1) - 1)


def _drive(activity: np.ndarray, weight: np.ndarray, low_rank) -> np.ndarray:
    """``activity @ (W + sign A B^T)^T`` in int64 for every member.

    ``activity`` is ``(B, in)`` (shared inputs) or ``(M, B, in)``; ``low_rank`` is None or
    ``(a (M, out, r), b (M, in, r), sign (M,))``. Returns ``(B, out)`` or ``(M, B, out)``.
    """
    product = activity @ weight.T
    if low_rank is not None:
        a, b, sign = low_rank
        product = product + sign[:, None, None] * ((activity @ b) @ np.swapaxes(a, 1, 2))
    return product


def run(weights: list, biases: list, record: dict, frames: np.ndarray, members: list | None = None) -> dict:
    """The integer network on frames ``(B, T, in)`` (integer counts), step by step.

    Args:
      weights, biases: per layer (read-out last), integer arrays ``(out, in)`` and ``(out,)``.
      record: the arithmetic (see the module docstring).
      frames: ``(B, T, in)`` integers.
      members: ``None`` (the network itself), or per layer a dict with ``"a"`` (M, out, r),
        ``"b"`` (M, in, r), ``"sign"`` (M,) (or all three None) and ``"bias"`` (M, out) (or None):
        M members evaluated together.

    Returns:
      ``{"spikes", "membranes", "synaptic": [int64 (M, B, T, H) per hidden layer],
      "readout_membrane": int64 (M, B, T, C), "readout": int64 (M, B, C)}`` (M = 1 without members).
    """
    bits, threshold, mode = int(record["state_bits"]), int(record["threshold"]), record["leak"]
    x = np.asarray(frames).astype(np.int64)
    batch, time_bins, _ = x.shape
    weights = [np.asarray(w).astype(np.int64) for w in weights]
    if members is None:
        members = [{"a": None, "b": None, "sign": None, "bias": None} for _ in weights]
    count = next((len(np.asarray(m["sign"])) for m in members if m.get("sign") is not None), None)
    count = count or next((len(np.asarray(m["bias"])) for m in members if m.get("bias") is not None), 1)
    low_ranks, layer_biases = [], []
    for bias, member in zip(biases, members):
        bias = np.broadcast_to(np.asarray(bias).astype(np.int64), (count, 1, len(bias)))
        if member.get("bias") is not None:
            bias = _sat(bias + np.asarray(member["bias"]).astype(np.int64)[:, None, :], bits)
        layer_biases.append(bias)
        has_low_rank = member.get("a") is not None
        low_ranks.append(tuple(np.asarray(member[k]).astype(np.int64) for k in ("a", "b", "sign")) if has_low_rank else None)
    shapes = [(count, batch, w.shape[0]) for w in weights]
    synaptic = [np.zeros(shape, np.int64) for shape in shapes[:-1]]
    membrane = [np.zeros(shape, np.int64) for shape in shapes[:-1]]
    readout_state = np.zeros(shapes[-1], np.int64)
    trajectory = lambda shape: np.zeros(shape[:2] + (time_bins,) + shape[2:], np.int64)  # noqa: E731
    out = {
        "spikes": [trajectory(shape) for shape in shapes[:-1]],
        "membranes": [trajectory(shape) for shape in shapes[:-1]],
        "synaptic": [trajectory(shape) for shape in shapes[:-1]],
        "readout_membrane": trajectory(shapes[-1]),
    }
    for t in range(time_bins):
        activity = x[:, t, :]
        for layer in range(len(weights) - 1):
            drive = _drive(activity, weights[layer], low_ranks[layer])
            synaptic[layer] = _sat(_decay(synaptic[layer], int(record["synapse_leak"]), mode) + drive, bits)
            v = _sat(_decay(membrane[layer], int(record["membrane_leak"]), mode) + synaptic[layer] + layer_biases[layer], bits)
            spikes = (v >= threshold).astype(np.int64)
            v = v - threshold * spikes if record["reset"] == "subtract" else v * (1 - spikes)
            membrane[layer] = v
            out["spikes"][layer][:, :, t] = spikes
            out["membranes"][layer][:, :, t] = v
            out["synaptic"][layer][:, :, t] = synaptic[layer]
            activity = spikes
        drive = _drive(activity, weights[-1], low_ranks[-1])
        readout_state = _sat(_decay(readout_state, int(record["readout_leak"]), mode) + drive + layer_biases[-1], bits)
        out["readout_membrane"][:, :, t] = readout_state
    out["readout"] = out["readout_membrane"].sum(axis=2)
    return out


def load_model(arrays) -> tuple[list, list]:
    """``(weights, biases)`` from an exported model's arrays (a mapping or an ``np.load`` result)."""
    count = sum(1 for name in arrays if str(name).endswith("_weight"))
    return [np.asarray(arrays[f"layer{i}_weight"]) for i in range(count)], [np.asarray(arrays[f"layer{i}_bias"]) for i in range(count)]


__all__ = ["run", "load_model"]
