"""Side-by-side per-generation benchmark: EGGROLL ranks, full-rank ES, an outside peer, the ceiling.

One job per module, in the order the data flows:

* :mod:`~eggroll_snn.bench.config`: :class:`BenchConfig` and the method names;
* :mod:`~eggroll_snn.bench.methods`: the random frames and each method built as one call per
  generation (what each method computes is stated there);
* :mod:`~eggroll_snn.bench.measure`: compile, interleaved timing, XLA buffers, peak memory in a
  fresh process;
* :mod:`~eggroll_snn.bench.run`: one configuration end to end, ratios to ``eggroll_r1``;
* :mod:`~eggroll_snn.bench.sweep`: the sweeps, memory-vs-N slopes and the whole report;
* :mod:`~eggroll_snn.bench.report`: markdown, JSON and plots.

Measured figures live in ``benchmarks/README.md`` with the commands that produced them.
"""

from eggroll_snn.bench.config import (
    CPU_MAX_POPULATION,
    OTHER_METHODS,
    REFERENCE_METHOD,
    SWEEP_METHODS,
    BenchConfig,
)
from eggroll_snn.bench.measure import isolated_memory, measure_memory, peak_rss_bytes, time_methods
from eggroll_snn.bench.methods import Prepared, make_frames, make_strategy_for, prepare, unavailable_reason
from eggroll_snn.bench.report import markdown_report, markdown_table, write_report
from eggroll_snn.bench.run import run_benchmark
from eggroll_snn.bench.sweep import (
    benchmark_report,
    expected_member_bytes,
    memory_slopes,
    run_sweep,
    summarise_memory,
    sweep_configs,
)

__all__ = [
    "BenchConfig",
    "OTHER_METHODS",
    "REFERENCE_METHOD",
    "SWEEP_METHODS",
    "CPU_MAX_POPULATION",
    "Prepared",
    "make_frames",
    "make_strategy_for",
    "prepare",
    "unavailable_reason",
    "time_methods",
    "measure_memory",
    "isolated_memory",
    "peak_rss_bytes",
    "run_benchmark",
    "sweep_configs",
    "run_sweep",
    "memory_slopes",
    "expected_member_bytes",
    "summarise_memory",
    "markdown_table",
    "markdown_report",
    "write_report",
    "benchmark_report",
]
