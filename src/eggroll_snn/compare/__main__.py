"""``python -m eggroll_snn.compare RUN_DIR``: the per-run training process of a comparison."""

import sys
from pathlib import Path

from eggroll_snn.compare.running import _worker

if __name__ == "__main__":
    sys.exit(_worker(Path(sys.argv[1])))
