"""How many population members are evaluated at once: from the layers' sizes and a memory budget.

A member's evaluation holds, per recording and time bin, each layer's currents, membranes and
spikes and (after the first layer, whose inputs all members share) its own input features
(receptive fields for a conv block): :func:`member_bytes` estimates that from the layers
(:func:`~eggroll_snn.network.member_numbers`). Members are then evaluated in chunks:

* at most as many as fit the **memory budget** (``train.memory_budget_mb``; unset: half of an
  accelerator's free memory, a quarter of the machine's memory on CPU), so any population runs on
  any device, a chunk at a time; a budget too small for one member is refused in one line;
* on CPU, also at most the chunk that ran fastest: for the fast forward :data:`CPU_CHUNK_BYTES`
  and :data:`CPU_CHUNK_MEMBERS` (larger chunks, and the whole population at once, ran slower);
  for the reference forward :data:`CPU_REFERENCE_CHUNK_BYTES`, so a chunk's state stays in the
  caches across its time scans.

The chunk is a power of two that divides the members a device evaluates: then it does not depend
on the population size or on how the population is split over devices, so every member is
computed with the same array shapes, hence the same float rounding, on 1 device or on 4.
"""

from __future__ import annotations

import os

import jax

from eggroll_snn.errors import ConfigError
from eggroll_snn.network import NetworkConfig, member_numbers

#: Most bytes (by :func:`member_bytes`) of one chunk on CPU: with the step compiled by XLA's
#: classic loop-fusion emitter (:mod:`eggroll_snn.compilation`), chunks of 128 members of the
#: default network (about 1.1 MB each by this estimate) ran fastest on a 2-core AMD EPYC: the
#: population's evaluation at r = 1 took 13.8 ms against 21.2 ms in chunks of 8 and 36 ms for all
#: 1,024 members at once (benchmarks/README.md, "Fast population forward").
CPU_CHUNK_BYTES = 256 << 20
#: Most bytes of one chunk of the reference forward on CPU: chunks of 8 to 16 members of the
#: default network ran fastest, larger ones slower as their state left the caches.
CPU_REFERENCE_CHUNK_BYTES = 16 << 20
#: Most members of one chunk on CPU (the same 128), so that small networks too get chunks that do
#: not depend on the population size or its split over devices.
CPU_CHUNK_MEMBERS = 128
#: Shares of the free memory a budget takes when none is given.
ACCELERATOR_SHARE, CPU_SHARE = 0.5, 0.25


def member_bytes(config: NetworkConfig, batch_size: int, time_bins: int) -> int:
    """Estimated bytes of one member's evaluation on ``batch_size`` recordings of ``time_bins`` bins."""
    return 4 * batch_size * time_bins * member_numbers(config)


def memory_budget_bytes(budget_mb: float | None = None, device=None) -> int:
    """The memory budget: ``budget_mb`` MiB when given; else half of the device's free memory on
    an accelerator, a quarter of the machine's physical memory on CPU."""
    if budget_mb is not None:
        return int(budget_mb * 2**20)
    device = device or jax.local_devices()[0]
    stats = device.memory_stats() if device.platform != "cpu" else None
    if stats and "bytes_limit" in stats:
        return int(ACCELERATOR_SHARE * (stats["bytes_limit"] - stats.get("bytes_in_use", 0)))
    return int(CPU_SHARE * os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))


def member_chunk(
    config: NetworkConfig, batch_size: int, time_bins: int, members: int, budget_mb: float | None = None, backend: str | None = None,
    fast: bool = True,
) -> int:
    """Members evaluated at once (see the module docstring): a power of two dividing ``members``
    (else the largest divisor of ``members`` that fits), for the fast forward (``fast``) or the reference.

    Raises:
      ConfigError: one member does not fit the budget; names the options that change it.
    """
    one = member_bytes(config, batch_size, time_bins)
    budget = memory_budget_bytes(budget_mb)
    fit = budget // one
    if fit < 1:
        raise ConfigError(
            f"one population member of this network needs about {one / 2**20:.0f} MiB for train.batch_size = "
            f"{batch_size} and {time_bins} time bins, more than the memory budget of {budget / 2**20:.0f} MiB "
            "(train.memory_budget_mb): lower train.batch_size or data.num_time_bins, shrink the network, or "
            "raise train.memory_budget_mb"
        )
    if (backend or jax.default_backend()) == "cpu":
        cap = CPU_CHUNK_BYTES if fast else CPU_REFERENCE_CHUNK_BYTES
        fit = min(fit, max(1, cap // one), CPU_CHUNK_MEMBERS)
    fit = min(fit, members)
    power = 1
    while power * 2 <= fit and members % (power * 2) == 0:
        power *= 2
    if power * 2 <= fit:  # members has few factors of two: the largest divisor that fits
        return max(size for size in range(1, fit + 1) if members % size == 0)
    return power


__all__ = ["CPU_CHUNK_BYTES", "CPU_REFERENCE_CHUNK_BYTES", "CPU_CHUNK_MEMBERS", "member_bytes", "memory_budget_bytes", "member_chunk"]
