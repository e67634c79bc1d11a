#!/usr/bin/env python
"""Entry point of :mod:`eggroll_snn.tools.fault_injection` (same as ``python -m eggroll_snn.tools.fault_injection``)."""

import sys

from eggroll_snn.tools.fault_injection import main

if __name__ == "__main__":
    sys.exit(main())
