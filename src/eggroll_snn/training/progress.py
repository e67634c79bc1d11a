"""The progress display of a training run: a rich bar on a terminal, plain lines in a log."""

from __future__ import annotations

import sys
import time


class Progress:
    """A rich progress bar (generation, fitness, validation accuracy, s/generation, ETA), or nothing."""

    PLAIN_INTERVAL_S = 30.0
    """Without a terminal (a log file, a batch job): one plain line per tenth of the run or this often."""

    def __init__(self, enabled: bool, total: int, completed: int):
        self._bar = None
        self._plain = False
        self._validation = None  # (accuracy, generation) of the latest validation
        if not enabled:
            return
        if not sys.stdout.isatty():  # a bar redrawn in place would print nothing readable
            self._plain, self._total = True, total
            self._every = max(1, total // 10)
            self._last_line_generation, self._last_line_time = completed, time.perf_counter()
            return
        from rich import progress as columns  # loaded only for a terminal

        self._bar = columns.Progress(
            columns.TextColumn("generation"),
            columns.MofNCompleteColumn(),
            columns.BarColumn(),
            columns.TextColumn("fitness {task.fields[fitness]}"),
            columns.TextColumn("val acc {task.fields[accuracy]}"),
            columns.TextColumn("{task.fields[speed]} s/gen"),
            columns.TextColumn("ETA"),
            columns.TimeRemainingColumn(),
        )
        self._task = self._bar.add_task("train", total=total, completed=completed, fitness="-", accuracy="-", speed="-")
        self._bar.start()

    def update(self, generation: int, fitness: float | None, accuracy: float | None, seconds: float) -> None:
        if accuracy is not None:
            self._validation = (accuracy, generation)
        if self._plain:
            self._plain_line(generation, fitness, accuracy, seconds)
        if self._bar is None:
            return
        fields = {"completed": generation, "speed": f"{seconds:.3f}"}
        if fitness is not None:
            fields["fitness"] = f"{fitness:.4f}"
        if accuracy is not None:
            fields["accuracy"] = f"{accuracy:.3f}"
        self._bar.update(self._task, **fields)

    def _plain_line(self, generation, fitness, accuracy, seconds) -> None:
        now = time.perf_counter()
        due = (
            generation - self._last_line_generation >= self._every
            or now - self._last_line_time >= self.PLAIN_INTERVAL_S
            or generation >= self._total
        )
        if not due:
            return
        self._last_line_generation, self._last_line_time = generation, now
        shown_fitness = "-" if fitness is None else f"{fitness:.4f}"
        # The latest validation, with its generation (it runs every train.eval_every generations).
        shown_accuracy = "-" if self._validation is None else f"{self._validation[0]:.3f} (generation {self._validation[1]})"
        eta = seconds * max(self._total - generation, 0)
        print(
            f"generation {generation}/{self._total}  fitness {shown_fitness}  val acc {shown_accuracy}  "
            f"{seconds:.3f} s/gen  ETA {eta:.0f} s",
            flush=True,
        )

    def close(self) -> None:
        if self._bar is not None:
            self._bar.stop()
            self._bar = None


__all__ = ["Progress"]
