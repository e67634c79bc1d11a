"""Fitting a run to a time budget: the generation count from seconds per generation measured here.

With ``train.generations`` unset, a new run measures, before its first generation, how long a
compiled chunk of generations and a validation pass take on this machine (a few chunks on a
throwaway copy of the initial state), then fixes ``train.generations`` so that the whole run,
from the call of :func:`eggroll_snn.training.train` to its test score, ends within
``train.time_budget_s``: the time already spent (data, compilation, this measurement), one more
compilation, the generations with their validations, and the final evaluation. The count is
written into the run's ``config.toml`` like any other option, so the learning-rate and sigma
schedules span it, a resume continues it, and ``--generations G`` reproduces the run on any
machine; ``budget.json`` records what was measured.
"""

from __future__ import annotations

import platform
import time

import jax
import numpy as np

from eggroll_snn.config import TrainConfig, apply_overrides
from eggroll_snn.errors import ConfigError

#: Generations of the provisional schedule the measurement runs with (its timing does not depend on it).
PROVISIONAL_GENERATIONS = 1000
#: Seconds of timed chunks the measurement aims for (at least two chunks, at most ten).
MEASURE_SECONDS = 5.0
#: Share of the budget's remainder given to generations: a sustained run measured 15 % slower per
#: generation than its first seconds (clocks, caches), and the loop adds validations and checkpoints.
SAFETY = 0.85
#: Seconds kept back for the end of the run (saving the model, the test split, summary.json).
FINISH_SECONDS = 2.0


def cpu_model() -> str:
    """The processor's model name (``/proc/cpuinfo``), else what Python reports."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as info:
            for line in info:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def provisional(config: TrainConfig) -> TrainConfig:
    """``config`` with a provisional ``train.generations`` for building the measured step."""
    return apply_overrides(config, {"train.generations": PROVISIONAL_GENERATIONS})


def measure(compile_chunk, step, state, data, validate, length: int, check=lambda: None) -> dict:
    """Seconds of one compilation, per generation and per validation pass, on this machine.

    ``step``/``state`` are the provisional method's; the chunks run on ``state`` and their result is
    discarded. ``validate()`` runs one validation pass; ``check()`` raises what an external
    evaluator met during a call.
    """
    start = time.perf_counter()
    compiled = compile_chunk(step, state, data.train_frames, data.train_labels, length)
    compile_seconds = time.perf_counter() - start
    jax.block_until_ready(compiled(state, data.train_frames, data.train_labels))  # warm up
    check()
    times = []
    while len(times) < 10 and (len(times) < 2 or sum(times) < MEASURE_SECONDS):
        start = time.perf_counter()
        jax.block_until_ready(compiled(state, data.train_frames, data.train_labels))
        times.append((time.perf_counter() - start) / length)
        check()
    validate()  # compiles
    start = time.perf_counter()
    validate()
    return {
        "compile_seconds": compile_seconds,
        "seconds_per_generation": float(np.median(times)),
        "validation_seconds": time.perf_counter() - start,
    }


def generations_for(budget_s: float, elapsed_s: float, measured: dict, eval_every: int, length: int) -> int:
    """The most generations (a multiple of ``length``) that end the run within ``budget_s``.

    Raises:
      ConfigError: not even one chunk of generations fits.
    """
    remaining = budget_s - elapsed_s - measured["compile_seconds"] - 2 * measured["validation_seconds"] - FINISH_SECONDS
    per_generation = measured["seconds_per_generation"] + measured["validation_seconds"] / eval_every
    generations = int(SAFETY * max(remaining, 0.0) / per_generation) // length * length
    if generations < length:
        raise ConfigError(
            f"option train.time_budget_s = {budget_s:g} leaves {max(remaining, 0.0):.0f} s for training after "
            f"{elapsed_s:.0f} s of preparation, too little for {length} generations at "
            f"{measured['seconds_per_generation']:.3f} s each on this machine: raise train.time_budget_s or set "
            "train.generations"
        )
    return generations


def record(config: TrainConfig, measured: dict, elapsed_s: float, generations: int) -> dict:
    """What ``budget.json`` states: the budget, what was measured where, and the count it gave."""
    return {
        "time_budget_s": config.train.time_budget_s,
        "generations": generations,
        "elapsed_before_training_s": elapsed_s,
        **measured,
        "backend": jax.default_backend(),
        "device": str(jax.local_devices()[0].device_kind),
        "cpu": cpu_model(),
        "cpu_count": __import__("os").cpu_count(),
        "reproduce_with": f"--generations {generations}",
    }


__all__ = ["PROVISIONAL_GENERATIONS", "cpu_model", "provisional", "measure", "generations_for", "record"]
