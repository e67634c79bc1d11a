"""One benchmark configuration end to end: time every method, measure its memory, take the ratios.

The result carries, per method, the ratio to ``eggroll_r1`` and member-evaluations per second
(``N*B / seconds``; ``B / seconds`` for ``bptt``), and the two headline figures
``full_rank / eggroll_r1`` and ``eggroll_r1``'s throughput as a fraction of the inference ceiling.
"""

from __future__ import annotations

import dataclasses
import gc
import os
import platform
from typing import Callable

from eggroll_snn.bench.config import REFERENCE_METHOD, BenchConfig
from eggroll_snn.bench.measure import isolated_memory, time_methods
from eggroll_snn.bench.methods import check_methods, flops_per_call, samples_per_call, unavailable_reason

def _environment() -> dict:
    import jax

    device = jax.local_devices()[0]
    return {
        "backend": jax.default_backend(),
        "device": getattr(device, "device_kind", str(device)),
        "jax_version": jax.__version__,
        "cpu_count": os.cpu_count(),
        "machine": platform.machine(),
    }


def _load_average() -> list[float] | None:
    try:
        return [round(value, 2) for value in os.getloadavg()]
    except OSError:
        return None


def run_benchmark(
    config: BenchConfig = BenchConfig(),
    methods: tuple[str, ...] | None = None,
    rss: bool = True,
    log: Callable[[str], None] | None = None,
) -> dict:
    """Time every method of ``config`` (in this process) and measure its memory (in fresh ones).

    Args:
      config: the configuration (network, N, B, T, data).
      methods: subset of :meth:`BenchConfig.method_names` (default: all); ``eggroll_r1`` is
        always timed, since every ratio refers to it.
      rss: also measure each method's peak memory in a fresh process (:func:`isolated_memory`).
      log: called with one line per finished method (progress), or ``None``.

    Returns:
      ``{"config": {...}, "environment": {...}, "load_average_before"/"_after": [1, 5, 15 min],
      "methods": {name: {"available", "seconds_per_generation", "ratio_to_eggroll_r1",
      "member_evaluations_per_second", "compile_seconds", "xla_buffer_bytes", "peak_rss_bytes",
      ...} or {"available": False, "reason", "seconds_per_generation": None}},
      "speedup_full_rank_over_eggroll_r1", "throughput_fraction_of_inference"}``: the last two are
      ``full_rank / eggroll_r1`` seconds and eggroll_r1's member-evaluations per second over the
      inference ceiling's (``None`` when a method did not run).
    """
    methods = config.method_names() if methods is None else tuple(methods)
    check_methods(config, methods)
    if REFERENCE_METHOD not in methods:
        methods = (REFERENCE_METHOD, *methods)
    result = {
        "config": dataclasses.asdict(config),
        "environment": _environment(),
        "load_average_before": _load_average(),
        "methods": {},
    }
    reasons = {method: unavailable_reason(config, method) for method in methods}
    runnable = tuple(method for method in methods if reasons[method] is None)
    timings = time_methods(config, runnable)
    gc.collect()
    for method in methods:
        if reasons[method] is not None:
            entry = {"available": False, "reason": reasons[method], "seconds_per_generation": None}
        else:
            entry = {"available": True, **timings[method]}
            seconds = entry["seconds_per_generation"]
            samples, flops = samples_per_call(config, method), flops_per_call(config, method)
            entry["samples_per_generation"] = samples
            entry["member_evaluations_per_second"] = None if samples is None else samples / seconds
            entry["member_sample_bins_per_second"] = None if samples is None else samples * config.time_bins / seconds
            entry["gflops_per_second"] = None if flops is None else flops / seconds / 1e9
            if rss:
                entry.update(isolated_memory(config, method))
        result["methods"][method] = entry
        if log is not None:
            log(_progress_line(config, method, entry))
    result["load_average_after"] = _load_average()
    _add_ratios(result)
    return result


def _progress_line(config: BenchConfig, method: str, entry: dict) -> str:
    where = f"N={config.population_size} B={config.batch_size} T={config.time_bins} {'-'.join(map(str, config.layer_sizes))}"
    if not entry["available"]:
        return f"[bench] {where} {method}: skipped ({entry['reason']})"
    return (
        f"[bench] {where} {method}: {entry['seconds_per_generation'] * 1e3:.1f} ms/generation "
        f"(compile {entry['compile_seconds']:.1f} s)"
    )


def _add_ratios(result: dict) -> None:
    """Ratios to eggroll_r1 and the two headline figures, from the medians."""
    entries = result["methods"]
    reference = entries[REFERENCE_METHOD]["seconds_per_generation"]
    for entry in entries.values():
        seconds = entry["seconds_per_generation"]
        entry["ratio_to_eggroll_r1"] = None if seconds is None else seconds / reference
    full_rank = entries.get("full_rank", {}).get("seconds_per_generation")
    inference = entries.get("inference", {}).get("seconds_per_generation")
    result["speedup_full_rank_over_eggroll_r1"] = None if full_rank is None else full_rank / reference
    # Same N*B evaluations per call, so the throughput ratio is the inverse time ratio.
    result["throughput_fraction_of_inference"] = None if inference is None else inference / reference
    ceiling = entries.get("matmul", {}).get("gflops_per_second")
    for entry in entries.values():
        rate = entry.get("gflops_per_second")
        entry["fraction_of_matmul"] = None if ceiling is None or rate is None else rate / ceiling
    result["speedup_fast_over_reference"] = {
        name: entries[f"reference_r{name[len('eggroll_r'):]}"]["seconds_per_generation"] / entry["seconds_per_generation"]
        for name, entry in entries.items()
        if name.startswith("eggroll_r") and entry["seconds_per_generation"] is not None
        and entries.get(f"reference_r{name[len('eggroll_r'):]}", {}).get("seconds_per_generation") is not None
    }
