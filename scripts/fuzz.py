#!/usr/bin/env python
"""Entry point of :mod:`eggroll_snn.tools.fuzz` (same as ``python -m eggroll_snn.tools.fuzz``)."""

import sys

from eggroll_snn.tools.fuzz import main

if __name__ == "__main__":
    sys.exit(main())
