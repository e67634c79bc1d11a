"""Sweeps around the headline configuration (N, hidden width, input shape) and memory-vs-N slopes.

:func:`benchmark_report` is the whole benchmark the CLI runs: the headline
:func:`~eggroll_snn.bench.run.run_benchmark`, plus with ``sweep`` every sweep point and the
measured bytes per added member beside the expected ones.
"""

from __future__ import annotations

import dataclasses
from typing import Callable

import numpy as np

from eggroll_snn.bench.config import (
    CAPPED_METHODS,
    CPU_MAX_POPULATION,
    SWEEP_HIDDEN_SIZES,
    SWEEP_INPUT_SHAPES,
    SWEEP_METHODS,
    SWEEP_POPULATIONS,
    BenchConfig,
    method_rank,
)
from eggroll_snn.bench.run import run_benchmark


def expected_member_bytes(config: BenchConfig, method: str) -> int | None:
    """Bytes a method must hold per added member, by the count of per-member numbers (float32).

    EGGROLL rank r: its factors ``r (m + n)`` per weight, its bias noise and its logits
    ``B * C`` (the O(r(m+n)) of the paper); dense-noise ES: one ``m * n`` draw per weight instead.
    """
    sizes = config.layer_sizes
    shared = sum(sizes[1:]) + config.batch_size * config.num_classes
    if method.startswith("eggroll_r"):
        rank = method_rank(method)
        return 4 * (rank * sum(m + n for n, m in zip(sizes[:-1], sizes[1:])) + shared)
    if method in ("full_rank", "evosax_open_es"):
        return 4 * (sum(m * n for n, m in zip(sizes[:-1], sizes[1:])) + shared)
    return None


def sweep_configs(
    base: BenchConfig,
    populations=SWEEP_POPULATIONS,
    hidden_sizes=SWEEP_HIDDEN_SIZES,
    input_shapes=SWEEP_INPUT_SHAPES,
) -> list[tuple[str, BenchConfig]]:
    """``(axis, config)`` for every sweep point: N at ``base``'s network, then hidden width and input
    shape at ``base``'s N (``base`` itself is the headline, not repeated)."""
    points = [("population", dataclasses.replace(base, population_size=n)) for n in populations]
    points += [("hidden", dataclasses.replace(base, hidden_sizes=(h,))) for h in hidden_sizes]
    points += [("input", dataclasses.replace(base, input_shape=tuple(s))) for s in input_shapes]
    return [(axis, config) for axis, config in points if config != base]


def run_sweep(
    base: BenchConfig,
    methods: tuple[str, ...] = SWEEP_METHODS,
    max_population: int | None = None,
    rss: bool = True,
    log: Callable[[str], None] | None = None,
    **grids,
) -> list[dict]:
    """:func:`run_benchmark` of ``methods`` at every point of :func:`sweep_configs`.

    Dense-noise methods and the inference ceiling (:data:`CAPPED_METHODS`) are skipped, with a
    reason, at populations above ``max_population`` (default: :data:`CPU_MAX_POPULATION` on CPU,
    no cap on accelerators). Each returned result carries its ``"axis"``.
    """
    if max_population is None:
        import jax

        max_population = CPU_MAX_POPULATION if jax.default_backend() == "cpu" else None
    results = []
    for axis, config in sweep_configs(base, **grids):
        capped = max_population is not None and config.population_size > max_population
        run = tuple(m for m in methods if not (capped and m in CAPPED_METHODS))
        result = run_benchmark(dataclasses.replace(config, ranks=(1,)), methods=run, rss=rss, log=log)
        for method in methods:
            if method not in result["methods"]:
                result["methods"][method] = {
                    "available": False,
                    "seconds_per_generation": None,
                    "ratio_to_eggroll_r1": None,
                    "reason": f"skipped: N={config.population_size} > --max-population {max_population}",
                }
        result["axis"] = axis
        results.append(result)
    return results


def memory_slopes(results: list[dict], key: str = "xla_buffer_bytes") -> dict:
    """Least-squares slope of ``key`` (bytes) against N per method, over results that differ only in N.

    Returns:
      ``{method: {"bytes_per_member": slope, "populations": [...], "points": n}}`` for methods with
      at least two measured populations.
    """
    series: dict[str, list[tuple[int, float]]] = {}
    for result in results:
        population = result["config"]["population_size"]
        for method, entry in result["methods"].items():
            if entry.get(key) is not None:
                series.setdefault(method, []).append((population, float(entry[key])))
    slopes = {}
    for method, points in series.items():
        populations = sorted({n for n, _ in points})
        if len(populations) < 2:
            continue
        n, value = np.array(points).T
        slopes[method] = {
            "bytes_per_member": float(np.polyfit(n, value, 1)[0]),
            "populations": populations,
            "points": len(points),
        }
    return slopes


def population_series(headline: dict, sweep: list[dict]) -> list[dict]:
    """The headline and the sweep results that vary only N (same network), sorted by N."""
    series = [headline] + [result for result in sweep if result.get("axis") == "population"]
    return sorted(series, key=lambda result: result["config"]["population_size"])


def summarise_memory(headline: dict, sweep: list[dict]) -> dict:
    """Measured memory-vs-N slopes (XLA buffers and RSS) beside the expected per-member bytes."""
    series = population_series(headline, sweep)
    config = BenchConfig(**headline["config"])
    summary = {}
    for key in ("xla_buffer_bytes", "peak_rss_bytes"):
        for method, slope in memory_slopes(series, key).items():
            summary.setdefault(method, {"expected_bytes_per_member": expected_member_bytes(config, method)})
            summary[method][f"{key}_per_member"] = slope["bytes_per_member"]
            summary[method]["populations"] = slope["populations"]
    return summary


def benchmark_report(
    config: BenchConfig = BenchConfig(),
    methods: tuple[str, ...] | None = None,
    sweep: bool = False,
    sweep_methods: tuple[str, ...] = SWEEP_METHODS,
    max_population: int | None = None,
    rss: bool = True,
    log: Callable[[str], None] | None = None,
    **grids,
) -> dict:
    """The headline :func:`run_benchmark`, plus with ``sweep`` the sweeps and memory slopes.

    Returns:
      ``{"headline": result, "sweep": [result, ...], "memory": {...}, "methods": {name:
      seconds_per_generation}}`` (``methods`` repeats the headline medians for quick reading).
    """
    headline = run_benchmark(config, methods=methods, rss=rss, log=log)
    report = {"headline": headline, "sweep": [], "memory": {}}
    if sweep:
        report["sweep"] = run_sweep(config, sweep_methods, max_population=max_population, rss=rss, log=log, **grids)
        report["memory"] = summarise_memory(headline, report["sweep"])
    report["methods"] = {name: entry["seconds_per_generation"] for name, entry in headline["methods"].items()}
    return report
