"""PNG plots of a run folder's ``metrics.jsonl``: fitness, loss and validation accuracy.

Two figures, each with three panels (fitness mean/max, training loss with validation loss,
validation accuracy), one against the generation and one against the wall time:
``plot_generation.png`` and ``plot_wall_time.png`` in the run folder.
"""

from __future__ import annotations

from pathlib import Path

from eggroll_snn.errors import TrainingError
from eggroll_snn.run_folder import read_metrics


def _series(records: list[dict], x_name: str, y_name: str) -> tuple[list[float], list[float]]:
    """The points of ``y_name`` against ``x_name`` over the records that have a value for both."""
    points = [(r[x_name], r[y_name]) for r in records if r.get(x_name) is not None and r.get(y_name) is not None]
    return [x for x, _ in points], [y for _, y in points]


def plot_run(run_dir: str | Path, out_dir: str | Path | None = None) -> list[Path]:
    """Write the run's learning curves as PNG files.

    Args:
      run_dir: a run folder with ``metrics.jsonl``.
      out_dir: where the PNG files go (created); ``None``: the run folder itself.

    Returns:
      The paths of the written PNG files.

    Raises:
      TrainingError: ``metrics.jsonl`` is missing or empty.
    """
    import matplotlib

    matplotlib.use("Agg")  # files only, no display needed
    import matplotlib.pyplot as plt

    run_dir = Path(run_dir)
    out_dir = run_dir if out_dir is None else Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    records = read_metrics(run_dir / "metrics.jsonl")
    if not records:
        raise TrainingError(f"{run_dir / 'metrics.jsonl'} is missing or empty: nothing to plot (is {run_dir} a run folder?)")
    written = []
    for x_name, x_label, file_name in (
        ("generation", "generation", "plot_generation.png"),
        ("wall_time_s", "wall time (s)", "plot_wall_time.png"),
    ):
        figure, (fitness_axis, loss_axis, accuracy_axis) = plt.subplots(1, 3, figsize=(15, 4.2))
        for name, label in (("fitness_mean", "population mean"), ("fitness_max", "population best")):
            fitness_axis.plot(*_series(records, x_name, name), label=label)
        fitness_axis.set_title("fitness (maximised)")
        loss_axis.plot(*_series(records, x_name, "train_loss"), label="train (population mean, minibatch)")
        loss_axis.plot(*_series(records, x_name, "validation_loss"), "o-", label="validation (mean params)")
        loss_axis.set_title("cross-entropy loss")
        accuracy_axis.plot(*_series(records, x_name, "train_accuracy"), label="train (population mean, minibatch)")
        accuracy_axis.plot(*_series(records, x_name, "validation_accuracy"), "o-", label="validation (mean params)")
        accuracy_axis.set_title("accuracy")
        accuracy_axis.set_ylim(0.0, 1.0)
        for axis in (fitness_axis, loss_axis, accuracy_axis):
            axis.set_xlabel(x_label)
            axis.grid(alpha=0.3)
            axis.legend(fontsize="small")
        figure.suptitle(f"{run_dir.name}: {len(records)} generations")
        figure.tight_layout()
        path = out_dir / file_name
        figure.savefig(path, dpi=100)
        plt.close(figure)
        written.append(path)
    return written


__all__ = ["plot_run"]
