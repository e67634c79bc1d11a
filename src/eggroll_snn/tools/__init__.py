"""Developer tools that exercise the library from outside: the fuzzer and the fault injector.

* :mod:`~eggroll_snn.tools.fuzz` (targets in :mod:`~eggroll_snn.tools.fuzz_targets`): hostile
  bytes into every reader of untrusted input; only the documented errors may escape.
* :mod:`~eggroll_snn.tools.fault_injection` (sessions in :mod:`~eggroll_snn.tools.fault_sessions`,
  checks in :mod:`~eggroll_snn.tools.run_compare`): kill training at random moments, resume, and
  compare with an uninterrupted run.

Run them with ``python -m eggroll_snn.tools.fuzz`` / ``python -m eggroll_snn.tools.fault_injection``
(or the thin ``scripts/fuzz.py`` / ``scripts/fault_injection.py``).
"""
