"""Training methods side by side on the same data: EGGROLL at several ranks, full-rank ES, BPTT.

A comparison trains every method of a list with every seed, under two separate budgets:

* ``generations``: the same number of generations for every method (a BPTT generation is one
  optimiser step on a minibatch of the same size);
* ``seconds``: the same wall-clock training time (``train.max_seconds``; a run stops at the end
  of the compiled call that passes it; compilation and validation count as training time).

Each run is an ordinary run folder written by :func:`eggroll_snn.training.train` in a fresh Python
process (so its peak memory is its own), under ``<out>/runs/<budget>/<method>/seed-<seed>/``.
Its test accuracy is the trainer's: the test split is read once, for the model selected on the
validation split. Hyper-parameters therefore come from the comparison's config, chosen before on
validation accuracy only.

Written into ``<out>``: ``runs.csv`` (one row per run), ``summary.csv`` and ``summary.md``
(mean ± sample standard deviation over seeds per budget and method), ``accuracy_vs_time-<budget>.png``
(validation accuracy against training time, every run) and ``rank.png`` (test accuracy and time
per generation against the EGGROLL rank, full-rank ES at the right end, BPTT as a reference line).
An interrupted comparison continues where it stopped when run again with the same ``out``:
finished runs are reused, unfinished ones resumed from their newest checkpoint.

One job per module: :mod:`.methods` (what to run: :class:`CompareConfig` and its TOML file),
:mod:`.running` (training every run, each in its own process: :func:`compare`) and
:mod:`.report` (the tables and plots). Measured comparisons are in ``benchmarks/results/``.
"""

from eggroll_snn.compare.methods import (
    BUDGETS,
    DEFAULT_METHODS,
    SECONDS_BUDGET_GENERATIONS,
    CompareConfig,
    load_compare,
    loads_compare,
)
from eggroll_snn.compare.report import RUN_FIELDS, SUMMARY_FIELDS, markdown_table, summarise, write_plots, write_tables
from eggroll_snn.compare.running import CompareResult, compare

__all__ = [
    "BUDGETS",
    "DEFAULT_METHODS",
    "SECONDS_BUDGET_GENERATIONS",
    "RUN_FIELDS",
    "SUMMARY_FIELDS",
    "CompareConfig",
    "CompareResult",
    "loads_compare",
    "load_compare",
    "compare",
    "summarise",
    "markdown_table",
    "write_tables",
    "write_plots",
]
