"""Export a run folder's model to NIR after checking the graph against the model on recordings.

:func:`export_run` builds the graph (:func:`eggroll_snn.export.nir.to_nir`), runs it with the
independent interpreter (:func:`eggroll_snn.export.simulate.simulate_nir`) and the trained
network (:func:`eggroll_snn.evaluate.predict_logits`) on the same recordings, and writes the
``.nir`` file and an agreement report beside it (``<name>.agreement.json``) only when every
prediction agrees, or when forced. Both files are written to temporary names and renamed into
place, so a failure leaves neither half-written.
"""

from __future__ import annotations

import dataclasses
import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import nir
import numpy as np

from eggroll_snn.data.source import load_frames
from eggroll_snn.data.splits import held_out  # the trainer's rule: "validation" = what training held out
from eggroll_snn.errors import ConfigError, ExportError
from eggroll_snn.integer.export import nir_form
from eggroll_snn.export.nir import to_nir
from eggroll_snn.export.simulate import evaluation_order, simulate_nir
from eggroll_snn.run_folder import load_model
from eggroll_snn.scoring import predict_logits

SPLITS = ("validation", "test", "train")
#: Recordings per interpreter call (bounds its float64 memory).
SIMULATION_BATCH = 250


@dataclasses.dataclass(frozen=True)
class Export:
    """What :func:`export_run` wrote: the graph, the agreement report and where it lies."""

    graph: nir.NIRGraph
    report: dict
    report_path: Path


def report_path_for(path: str | Path) -> Path:
    """The agreement report beside a ``.nir`` file: ``model.nir`` -> ``model.agreement.json``."""
    path = Path(path)
    return path.with_name(f"{path.stem}.agreement.json")


def describe_graph(graph: nir.NIRGraph) -> str:
    """The node kinds along the graph, e.g. ``Input -> Affine -> CubaLIF (+ recurrent Linear) -> ...``."""
    start = next(name for name, node in graph.nodes.items() if isinstance(node, nir.Input))
    order, _, delayed = evaluation_order(graph, start)
    recurrent = {source for source, _ in delayed}
    parts = []
    for name in order:
        kind = type(graph.nodes[name]).__name__
        if name in recurrent:
            parts[-1] += f" (+ recurrent {kind})"
        else:
            parts.append(kind)
    return " -> ".join(parts)


def check_recordings(config, data_root: str | Path | None, split: str) -> tuple[np.ndarray, np.ndarray]:
    """Frames ``(N, T, P, H, W)`` and labels of the recordings an export is checked on.

    ``split="validation"`` is the part of the training split that the run held out to select its
    model (same seed and fraction as training); ``"test"`` / ``"train"`` are whole splits.
    ``data_root`` overrides the run's data root.
    """
    if split not in SPLITS:
        raise ExportError(f"split={split!r}: choose one of {', '.join(SPLITS)}")
    frames, labels = load_frames(config.data, "train" if split == "validation" else split, data_root)
    if split == "validation":
        _, index = held_out(labels, config.data, config.train.seed)
        frames, labels = frames[index], labels[index]
    return np.asarray(frames), np.asarray(labels)


def agreement_report(graph: nir.NIRGraph, params: Any, network_config, frames: np.ndarray, labels: np.ndarray) -> dict:
    """Predictions and logits of the trained network against the NIR interpreter on ``frames``.

    Returns:
      dict with ``recordings``, ``agreeing_predictions``, ``prediction_agreement`` (fraction),
      ``max_abs_logit_difference``, ``network_accuracy`` and ``nir_accuracy`` (against
      ``labels``), and ``disagreeing_recordings`` (indices into ``frames``).
    """
    network_logits = predict_logits(params, frames, network_config)
    inputs = frames.reshape(frames.shape[0], frames.shape[1], -1)
    nir_logits = np.concatenate(
        [simulate_nir(graph, inputs[start : start + SIMULATION_BATCH])["logits"] for start in range(0, len(inputs), SIMULATION_BATCH)]
    ) if len(inputs) else np.zeros((0, network_config.num_classes))
    network_predictions, nir_predictions = network_logits.argmax(axis=1), nir_logits.argmax(axis=1)
    agreeing = network_predictions == nir_predictions
    return {
        "recordings": int(len(frames)),
        "agreeing_predictions": int(agreeing.sum()),
        "prediction_agreement": float(agreeing.mean()) if len(frames) else float("nan"),
        "max_abs_logit_difference": float(np.abs(network_logits - nir_logits).max()) if len(frames) else 0.0,
        "network_accuracy": float(np.mean(network_predictions == labels)) if len(frames) else float("nan"),
        "nir_accuracy": float(np.mean(nir_predictions == labels)) if len(frames) else float("nan"),
        "disagreeing_recordings": [int(index) for index in np.flatnonzero(~agreeing)],
    }


def _write_atomically(targets: list[tuple[Path, Callable[[Path], None]]]) -> None:
    """Write each ``(path, write)`` to a temporary file beside ``path``, then rename all into place."""
    written: list[tuple[Path, Path]] = []
    try:
        for path, write in targets:
            handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
            os.close(handle)
            written.append((Path(temporary), path))
            write(Path(temporary))
        umask = os.umask(0)
        os.umask(umask)
        for temporary, path in written:
            os.chmod(temporary, 0o666 & ~umask)  # mkstemp's 0600 would hide the files from other users
            os.replace(temporary, path)
    except OSError as error:
        raise ExportError(f"{path}: cannot be written ({error.strerror or error}); choose another path") from None
    finally:
        for temporary, _ in written:
            temporary.unlink(missing_ok=True)


def export_run(
    run_dir: str | Path,
    path: str | Path,
    dt: float = 1e-3,
    data_root: str | Path | None = None,
    split: str = "validation",
    force: bool = False,
) -> Export:
    """Export a run folder's trained model to a NIR file, checked by re-simulation.

    The model is read with :func:`eggroll_snn.run_folder.load_model` (``model.npz`` + ``model.json``,
    checksummed, with the training config). The graph is :func:`~eggroll_snn.export.nir.to_nir`
    of it, with the run's frame shape ``(T, P, H, W)``, frame settings, and the model's generation
    and validation accuracy in the metadata. A model trained with integer weights
    (``--weights int8``) exports its on-grid weights and records the integer form.

    Args:
      run_dir: a run folder holding ``model.npz`` and ``model.json``.
      path: the ``.nir`` file to write (its folder must exist); the report goes beside it.
      dt: seconds per time step (frame bin) for the continuous-time constants.
      data_root: recordings to check on (default: the run's own data).
      split: ``"validation"`` (the recordings the run held out, default), ``"test"`` or ``"train"``.
      force: write even when some predictions disagree.

    Returns:
      :class:`Export` with the graph and the agreement report (see :func:`agreement_report`;
      plus ``nir_file``, ``run_dir``, ``data_root``, ``split``, ``dt``, ``forced``).

    Raises:
      CheckpointError: the run folder holds no complete, valid model.
      ConfigError: a bad ``dt``, or a network that NIR cannot express exactly.
      ExportError: the output path cannot be written, or fewer than all predictions agree and
        ``force`` is not set (then nothing is written).
    """
    path = Path(path)
    if not path.parent.is_dir():
        raise ExportError(f"NIR output {path}: the folder {path.parent} does not exist; create it or choose another path")
    if path.is_dir():
        raise ExportError(f"NIR output {path}: is a folder; give a file name such as {path / 'model.nir'}")
    params, train_config, model_metadata = load_model(run_dir)
    network_config = train_config.network_config()
    data = train_config.data
    frame_settings = dataclasses.asdict(data.frame_config())
    extra = {
        "source_run": str(Path(run_dir).resolve()),
        # None has no HDF5 form; an absent key means "unset".
        "frame_config": {key: value for key, value in frame_settings.items() if value is not None},
    }
    for key in ("generation", "validation_accuracy"):
        if isinstance(model_metadata.get(key), (int, float)):
            extra[key] = model_metadata[key]
    try:
        frame_shape = data.frame_config().frame_shape(data.sensor)
    except ConfigError:  # frames whose count T varies per recording: no fixed input shape
        frame_shape = None
    graph_params, graph_network = params, network_config
    if train_config.network.neuron == "fixed_point":  # the integers times 2^-F, the arithmetic in the metadata
        graph_params, graph_network, extra = nir_form(params, train_config, extra)
    graph = to_nir(
        graph_params, graph_network, dt=dt, frame_shape=frame_shape, metadata=extra,
        integer_weights=model_metadata.get("weights"),
    )

    frames, labels = check_recordings(train_config, data_root, split)
    # Checked against the trained model itself (for a fixed-point run: its integer arithmetic).
    report = agreement_report(graph, params, network_config, frames, labels)
    report.update(
        nir_file=str(path), run_dir=str(Path(run_dir).resolve()), split=split, dt=float(dt), forced=bool(force),
        data_root=str(data_root if data_root is not None else (data.root or "built-in simulated N-MNIST")),
        interpreter="eggroll_snn.export.simulate.simulate_nir (NIR equations, forward Euler, float64)",
    )
    if report["agreeing_predictions"] < report["recordings"] and not force:
        raise ExportError(
            f"NIR output {path}: the exported graph agrees with the trained model on only "
            f"{report['agreeing_predictions']} of {report['recordings']} {split} recordings (max logit difference "
            f"{report['max_abs_logit_difference']:.3g}); nothing written. Pass --force (force=True) to write it anyway"
        )
    report_path = report_path_for(path)
    _write_atomically([
        (path, lambda temporary: nir.write(temporary, graph)),
        (report_path, lambda temporary: temporary.write_text(json.dumps(report, indent=2) + "\n")),
    ])
    return Export(graph=graph, report=report, report_path=report_path)


__all__ = ["Export", "export_run", "describe_graph", "agreement_report", "check_recordings", "report_path_for", "SPLITS"]
