"""``python -m eggroll_snn.bench SPEC``: the fresh process in which :func:`~eggroll_snn.bench.measure.isolated_memory` measures one method."""

import sys

from eggroll_snn.bench.measure import memory_worker

if __name__ == "__main__":
    sys.exit(memory_worker(sys.argv[1:]))
