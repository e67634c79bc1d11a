"""Measuring the prepared methods: compile, time interleaved rounds, XLA buffers, peak memory.

Per method: the median of ``repeats`` timed calls after ``warmup`` untimed ones
(``seconds_per_generation``), the compile time, XLA's own account of the call's buffers
(arguments + outputs + temporaries, from ``Compiled.memory_analysis``: exact and noise-free) and,
in :func:`isolated_memory`, the peak memory of a fresh process that builds the same inputs,
compiles and runs only that method (peak RSS on CPU, ``peak_bytes_in_use`` of the device on
accelerators), so a method never inherits another's high-water mark.

:func:`peak_rss_bytes` reads a process's peak resident memory (the fuzzer reports it too).
"""

from __future__ import annotations

import dataclasses
import gc
import json
import subprocess
import sys
import time

import numpy as np

from eggroll_snn.bench.config import BenchConfig
from eggroll_snn.process_memory import peak_rss_bytes, status_bytes
from eggroll_snn.bench.methods import Prepared, prepare



def compile_method(prepared: Prepared):
    """``jit(step, donate carry)`` lowered and compiled for the prepared operands."""
    import jax

    return jax.jit(prepared.step, donate_argnums=0, compiler_options=prepared.compiler_options).lower(prepared.carry, *prepared.operands).compile()


def xla_buffer_bytes(compiled) -> int | None:
    """Bytes of the call's arguments + outputs + temporaries (aliased outputs counted once), per XLA."""
    stats = compiled.memory_analysis()
    if stats is None:
        return None
    return int(
        stats.argument_size_in_bytes + stats.output_size_in_bytes - stats.alias_size_in_bytes + stats.temp_size_in_bytes
    )


def time_methods(config: BenchConfig, methods: tuple[str, ...]) -> dict[str, dict]:
    """Compile every method, run ``warmup`` untimed generations of each, then ``repeats`` rounds.

    A round times one generation of every method in turn, so a change in the load of a shared
    machine falls on all methods alike and the ratios stay fair.

    Returns:
      ``{method: {"seconds_per_generation": median s, "seconds_min", "seconds_all": [...],
      "compile_seconds", "xla_buffer_bytes"}}``.
    """
    import jax

    compiled, carries, operands, timings = {}, {}, {}, {}
    for method in methods:
        prepared = prepare(config, method)
        start = time.perf_counter()
        compiled[method] = compile_method(prepared)
        timings[method] = {
            "compile_seconds": time.perf_counter() - start,
            "xla_buffer_bytes": xla_buffer_bytes(compiled[method]),
            "seconds_all": [],
        }
        carries[method], operands[method] = prepared.carry, prepared.operands
        for _ in range(config.warmup):
            carries[method], _ = jax.block_until_ready(compiled[method](carries[method], *operands[method]))
    for _ in range(config.repeats):
        for method in methods:
            start = time.perf_counter()
            carries[method], _ = jax.block_until_ready(compiled[method](carries[method], *operands[method]))
            timings[method]["seconds_all"].append(time.perf_counter() - start)
    for timing in timings.values():
        timing["seconds_per_generation"] = float(np.median(timing["seconds_all"]))
        timing["seconds_min"] = float(np.min(timing["seconds_all"]))
    return timings


def measure_memory(config: BenchConfig, method: str, generations: int = 2) -> dict:
    """Peak memory of ``method`` in this process (call it in a fresh one: see :func:`isolated_memory`).

    Returns:
      ``{"baseline_rss_bytes": RSS after importing JAX and starting its backend, before any data,
      "peak_rss_bytes": the process's peak RSS after building the data, compiling and running
      ``generations`` generations, "rss_growth_bytes": their difference, "device_peak_bytes":
      ``peak_bytes_in_use`` of the device (accelerators only, else None)}``.
    """
    import jax

    jax.devices()  # start the backend so its own memory is in the baseline
    gc.collect()
    baseline = status_bytes("VmRSS")
    prepared = prepare(config, method)
    compiled = compile_method(prepared)
    carry = prepared.carry
    for _ in range(generations):
        carry, _ = jax.block_until_ready(compiled(carry, *prepared.operands))
    peak = peak_rss_bytes()
    device_stats = jax.local_devices()[0].memory_stats() or {}
    return {
        "baseline_rss_bytes": baseline,
        "peak_rss_bytes": peak,
        "rss_growth_bytes": None if baseline is None else peak - baseline,
        "device_peak_bytes": device_stats.get("peak_bytes_in_use"),
    }


def isolated_memory(config: BenchConfig, method: str, timeout_s: float = 1800.0) -> dict:
    """:func:`measure_memory` of ``method`` in a fresh Python process (its own high-water mark)."""
    spec = json.dumps({"config": dataclasses.asdict(config), "method": method})
    completed = subprocess.run(
        [sys.executable, "-m", "eggroll_snn.bench", spec], capture_output=True, text=True, timeout=timeout_s
    )
    if completed.returncode != 0:
        tail = completed.stderr.strip().splitlines()[-3:]
        return {"memory_error": f"memory worker exited with {completed.returncode}: {' | '.join(tail)}"}
    return json.loads(completed.stdout.strip().splitlines()[-1])


def memory_worker(argv: list[str]) -> int:
    """``python -m eggroll_snn.bench SPEC``: print :func:`measure_memory` of one method as JSON."""
    spec = json.loads(argv[0])
    config = BenchConfig(**spec["config"])
    print(json.dumps(measure_memory(config, spec["method"])))
    return 0
