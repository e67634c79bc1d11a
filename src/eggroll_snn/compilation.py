"""XLA options for the compiled generation step, chosen per backend from measurements.

On CPU the generation step is compiled with XLA's classic loop-fusion emitter
(``xla_cpu_use_fusion_emitters = False``) instead of its newer MLIR fusion emitters: the population
forward (:mod:`eggroll_snn.population.fast`) is a few large elementwise fusions (the LIF updates of every member, the rank-r terms as
multiply-adds), which the classic emitter vectorises and the newer one did not. Measured on a
2-core AMD EPYC (jax 0.10.2, benchmarks/README.md "Fast population forward"): the LIF update and
read-out of 1,024 members in chunks of 16 took 8.4 ms instead of 26.5 ms, and the trainer's whole
generation at the defaults about 0.6x the time. Other backends get no options.

A user's own ``XLA_FLAGS`` that set the emitter win: then none is passed here.
"""

from __future__ import annotations

import os

import jax

#: The options :func:`compiler_options` passes on CPU.
CPU_OPTIONS = {"xla_cpu_use_fusion_emitters": False}


def compiler_options(fast_forward: bool, backend: str | None = None) -> dict:
    """Options for ``jax.jit(..., compiler_options=...)`` of a generation step on ``backend``
    (default: JAX's default backend): :data:`CPU_OPTIONS` for a step with the fast population
    forward on CPU, unless ``XLA_FLAGS`` names the emitter option; else none (the readable
    reference forward, vmap of the network with time scans, ran 2x slower with them)."""
    if not fast_forward or (backend or jax.default_backend()) != "cpu":
        return {}
    flags = os.environ.get("XLA_FLAGS", "")
    return {name: value for name, value in CPU_OPTIONS.items() if name not in flags}


__all__ = ["CPU_OPTIONS", "compiler_options"]
