"""Scale-out: the population sharded over a 1-D device mesh, on one host or many.

Parameters, optimiser state and keys are **replicated**: every device holds the whole strategy
state. Only the *evaluation* of the population is split. With D devices on the mesh axis
``"population"`` and N members, device ``d`` evaluates members ``[d n, (d + 1) n)`` with
``n = N / D``. One generation on device ``d`` (all inside one ``jax.shard_map``)::

    x, y      = minibatch(fold_in(data_key, g))        same indices on every device (shared key)
    E         = strategy.ask(state)                     regenerated from the keys, no transfer
    E_local   = E[d n : (d + 1) n]
    l_d, a_d  = member losses, accuracies of E_local    (n,), (n,)
    l, a      = all_gather(l_d, a_d)                    (N,), (N,): the only per-generation traffic
    state     = strategy.tell(state, fitness(l, a))     identical on every device

So the wire carries ``2 N`` float32 per generation (the fitness, and the other one of loss and
accuracy for the metrics log), whatever the size of the network: no noise, no gradients and no
parameters cross devices. ``ask`` draws the noise of all N members on every device and ``tell``
draws it again: each device needs every member's noise to form the (identical) update, so that
work is replicated, not split (XLA merges part of the two draws). It is small next to the
population forward pass (see docs/scale-out.md for the measured shares and what they mean for
the speed-up at large D).

Drift: the replicas stay equal only if every device computes ``tell`` bit for bit the same. At
the end of every compiled call (every :func:`eggroll_snn.training.step.chunk_length` generations, so
before every checkpoint) each device reduces its whole strategy state to a 32-bit checksum
(the sum of the bit patterns of all values, modulo 2^32, order independent and exact) and the D
checksums are all-gathered; any difference stops the run with a :class:`TrainingError`.

Multi-host: :func:`initialize` wraps ``jax.distributed.initialize``. Every process runs the same
program; each holds the whole training split (replicated on each of its devices, so the
minibatch is gathered on the device from the shared key and no data crosses hosts) and writes its
own copy of the run folder (process 0: the run folder itself; process p > 0: ``process-<p>/``
inside it, see :func:`process_run_dir`), so each can resume from its own checkpoints.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from eggroll_snn.errors import ConfigError, TrainingError

#: Name of the one mesh axis: the population members are split along it.
MESH_AXIS = "population"

#: Environment variables read when the matching option is not given (JAX itself reads the first).
ENV_COORDINATOR_ADDRESS = "JAX_COORDINATOR_ADDRESS"
ENV_NUM_PROCESSES = "JAX_NUM_PROCESSES"
ENV_PROCESS_ID = "JAX_PROCESS_ID"


# --------------------------------------------------------------------------------------------
# Processes


@dataclasses.dataclass(frozen=True)
class DistributedOptions:
    """How this process joins a multi-process run (all unset: a single process, or auto-detect).

    Attributes:
      coordinator_address: ``host:port`` of process 0's coordinator service.
      num_processes: number of processes in the run.
      process_id: this process's index, ``0 <= process_id < num_processes``.
    """

    coordinator_address: str | None = None
    num_processes: int | None = None
    process_id: int | None = None

    @classmethod
    def from_environment(cls, environ: dict | None = None, **given) -> "DistributedOptions":
        """``given`` options (None = unset), the unset ones from ``JAX_COORDINATOR_ADDRESS``,
        ``JAX_NUM_PROCESSES`` and ``JAX_PROCESS_ID``.

        Raises:
          ConfigError: a process count or id in the environment is not an integer.
        """
        environ = os.environ if environ is None else environ
        values = {
            "coordinator_address": given.get("coordinator_address") or environ.get(ENV_COORDINATOR_ADDRESS) or None,
            "num_processes": given.get("num_processes"),
            "process_id": given.get("process_id"),
        }
        for name, variable in (("num_processes", ENV_NUM_PROCESSES), ("process_id", ENV_PROCESS_ID)):
            if values[name] is None and environ.get(variable):
                try:
                    values[name] = int(environ[variable])
                except ValueError:
                    raise ConfigError(f"environment variable {variable}={environ[variable]!r} is not an integer") from None
        return cls(**values)

    def requested(self, environ: dict | None = None) -> bool:
        """Whether a multi-process run is asked for.

        Yes when an option is set (``num_processes = 1`` says no), or when Slurm's ``srun`` started
        several tasks (``SLURM_PROCID`` set, ``SLURM_STEP_NUM_TASKS`` or ``SLURM_NTASKS`` > 1);
        JAX then finds the coordinator, process count and id itself.
        """
        environ = os.environ if environ is None else environ
        if self.num_processes == 1:
            return False
        if any(value is not None for value in dataclasses.astuple(self)):
            return True
        tasks = environ.get("SLURM_STEP_NUM_TASKS") or environ.get("SLURM_NTASKS") or "1"
        return "SLURM_PROCID" in environ and tasks.isdigit() and int(tasks) > 1


def initialize(options: DistributedOptions) -> bool:
    """Join the multi-process run that ``options`` (or Slurm) describe; no-op otherwise.

    Must run before anything touches a JAX device. Unset options are left to
    ``jax.distributed.initialize``'s own detection (Slurm, Open MPI, ``JAX_COORDINATOR_ADDRESS``).
    On CPU the processes exchange data through gloo collectives.

    Returns:
      True when ``jax.distributed.initialize`` was called.

    Raises:
      ConfigError: an impossible process count or id, or JAX could not start or reach the
        coordinator.
    """
    count, index = options.num_processes, options.process_id
    if count is not None and count < 1:
        raise ConfigError(f"--num-processes {count}: the number of processes must be at least 1")
    if index is not None and (index < 0 or (count is not None and index >= count)):
        upper = "num_processes - 1" if count is None else count - 1
        raise ConfigError(f"--process-id {index} is out of range: it must lie in 0..{upper}")
    if not options.requested():
        return False
    # Gloo carries the cross-process collectives of CPU devices (ignored by GPU and TPU backends).
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    try:
        jax.distributed.initialize(
            coordinator_address=options.coordinator_address, num_processes=count, process_id=index
        )
    except (ValueError, TypeError, RuntimeError) as error:
        raise ConfigError(
            f"cannot join the multi-process run ({error}); give --coordinator-address HOST:PORT, "
            "--num-processes and --process-id (or JAX_COORDINATOR_ADDRESS, JAX_NUM_PROCESSES, "
            "JAX_PROCESS_ID), or launch with srun under Slurm"
        ) from None
    return True


def process_run_dir(run_dir: str | Path) -> Path:
    """This process's run folder: ``run_dir`` for process 0, ``run_dir/process-<p>`` for p > 0.

    Every process writes the same metrics and checkpoints (the state is replicated); separate
    folders keep them from overwriting each other on a shared file system and let each process
    resume from its own checkpoints when the file systems are not shared.
    """
    run_dir = Path(run_dir)
    index = jax.process_index()
    return run_dir if index == 0 else run_dir / f"process-{index}"


# --------------------------------------------------------------------------------------------
# The mesh


def select_devices(count: int) -> list:
    """The devices of the population mesh, grouped by process.

    Args:
      count: 0 for every device of every process, else the number of devices, which must divide
        evenly over the processes (each gives its first ``count / process_count`` local devices).

    Raises:
      ConfigError: more devices asked for than exist, or a count that the processes cannot share.
    """
    processes = jax.process_count()
    by_process = [[d for d in jax.devices() if d.process_index == p] for p in range(processes)]
    available = sum(len(devices) for devices in by_process)
    if count == 0:
        return [device for devices in by_process for device in devices]
    if count > available:
        raise ConfigError(
            f"option train.devices = {count}, but only {available} {jax.default_backend()} device(s) are "
            f"visible ({processes} process(es)); use train.devices = 0 (--devices all) or at most {available}"
        )
    if count % processes:
        raise ConfigError(
            f"option train.devices = {count} does not divide over the {processes} processes of the run: "
            f"use a multiple of {processes} (each process gives the same number of its devices) or --devices all"
        )
    per_process = count // processes
    if any(len(devices) < per_process for devices in by_process):
        raise ConfigError(
            f"option train.devices = {count} needs {per_process} devices in each of the {processes} processes, "
            f"but some have only {min(len(devices) for devices in by_process)}"
        )
    return [device for devices in by_process for device in devices[:per_process]]


def population_mesh(devices: list) -> Mesh:
    """A 1-D :class:`jax.sharding.Mesh` over ``devices`` with the axis ``"population"``."""
    return Mesh(np.asarray(devices), (MESH_AXIS,))


def members_per_device(population_size: int, device_count: int) -> int:
    """``N / D``, the members each device evaluates.

    An odd share with antithetic sampling is allowed: a pair may straddle two devices, since
    each device regenerates every member's noise from the keys.

    Raises:
      ConfigError: ``N`` is not a multiple of ``D``.
    """
    if population_size % device_count:
        below = population_size - population_size % device_count
        raise ConfigError(
            f"option strategy.population_size = {population_size} does not split over the {device_count} "
            f"devices of train.devices: every device must evaluate the same number of members. Use a "
            f"multiple of {device_count} (e.g. {max(below, device_count)} or {below + device_count}) or "
            "another device count"
        )
    return population_size // device_count


# --------------------------------------------------------------------------------------------
# Checksums


def _leaf_bits(leaf: jax.Array) -> jax.Array:
    """The leaf's values as unsigned integers of the same width (exact: a bitcast)."""
    if jax.dtypes.issubdtype(leaf.dtype, jax.dtypes.prng_key):
        leaf = jax.random.key_data(leaf)
    if leaf.dtype == jnp.bool_:
        return leaf.astype(jnp.uint32)
    unsigned = {1: jnp.uint8, 2: jnp.uint16, 4: jnp.uint32}[leaf.dtype.itemsize]
    return jax.lax.bitcast_convert_type(leaf, unsigned).astype(jnp.uint32)


def tree_checksum(tree: Any) -> jax.Array:
    """A uint32 checksum of every value in ``tree``: ``sum_l (2 l + 1) sum_j bits(leaf_l[j]) mod 2^32``.

    Integer sums wrap exactly and do not depend on the reduction order, so equal trees give equal
    checksums on any device; a change of any single value changes the checksum.
    """
    total = jnp.zeros((), jnp.uint32)
    for index, leaf in enumerate(jax.tree_util.tree_leaves(tree)):
        total = total + jnp.uint32(2 * index + 1) * jnp.sum(_leaf_bits(jnp.asarray(leaf)), dtype=jnp.uint32)
    return total


# --------------------------------------------------------------------------------------------
# The sharded generation


class ShardedPopulation:
    """The population evaluation and the compiled generation chunks of one sharded training run.

    Use :meth:`evaluate` as the ``evaluate`` hook of :func:`eggroll_snn.training.step.make_generation_step`
    and :meth:`compile_chunk` in place of the trainer's single-device compiler; both are used
    by :func:`eggroll_snn.training.train` when ``train.devices`` is not 1.

    Args:
      mesh: a 1-D mesh with axis ``"population"`` (see :func:`population_mesh`).
      population_size: N, a multiple of the mesh size.
      evaluate_members: ``(params, perturbations, inputs, labels) -> (loss (n,), accuracy (n,))``
        of the ``n = N / D`` members a device holds (any member-wise evaluation; the trainer's is
        :func:`eggroll_snn.training.evaluators.local_evaluator`).
      compiler_options: XLA options of the compiled chunks (:func:`eggroll_snn.compilation.compiler_options`).
    """

    def __init__(self, mesh: Mesh, population_size: int, evaluate_members: Callable, compiler_options: dict | None = None):
        self.mesh, self.evaluate_members = mesh, evaluate_members
        self.compiler_options = compiler_options or {}
        self.device_count = mesh.devices.size
        self.members_per_device = members_per_device(population_size, self.device_count)
        self.replicated = NamedSharding(mesh, PartitionSpec())
        self._placed: tuple[Any, Any, tuple[jax.Array, jax.Array]] | None = None  # (frames, labels, on the mesh)

    # -- inside the shard_map ----------------------------------------------------------------
    def evaluate(self, params, perturbations, inputs: jax.Array, labels: jax.Array) -> tuple[jax.Array, jax.Array]:
        """Loss and accuracy of every member, each device evaluating only its own ``n``.

        Call inside the ``shard_map`` of :meth:`compile_chunk`.

        Args:
          params: replicated mean parameters.
          perturbations: every member's perturbation (leading axis N), as ``strategy.ask`` gives.
          inputs: ``(B, T, input_size)`` float32, the shared minibatch.
          labels: ``(B,)`` int.

        Returns:
          ``(loss (N,), accuracy (N,))`` in member order, identical on every device.
        """
        count = self.members_per_device
        start = jax.lax.axis_index(MESH_AXIS) * count
        local = jax.tree_util.tree_map(lambda leaf: jax.lax.dynamic_slice_in_dim(leaf, start, count, axis=0), perturbations)
        losses, accuracies = self.evaluate_members(params, local, inputs, labels)
        # One collective per generation: (2, n) from each device -> (2, N) on every device.
        gathered = jax.lax.all_gather(jnp.stack([losses, accuracies]), MESH_AXIS, axis=1, tiled=True)
        return gathered[0], gathered[1]

    # -- placing host-local values on the mesh and back ----------------------------------------
    def replicate(self, tree: Any) -> Any:
        """``tree`` with every leaf a replicated array on the mesh (leaves already so are kept).

        Works across processes: each process supplies its own (identical) copy of the values.
        """
        if jax.process_count() == 1:
            return jax.device_put(tree, self.replicated)
        local_devices = [d for d in self.mesh.devices.flat if d.process_index == jax.process_index()]

        def place(leaf):
            if isinstance(leaf, jax.Array) and leaf.sharding == self.replicated:
                return leaf
            leaf = leaf if isinstance(leaf, jax.Array) else jnp.asarray(leaf)
            copies = [jax.device_put(leaf, device) for device in local_devices]
            return jax.make_array_from_single_device_arrays(leaf.shape, self.replicated, copies)

        return jax.tree_util.tree_map(place, tree)

    @staticmethod
    def local_copy(tree: Any) -> Any:
        """A replicated ``tree`` as single-device arrays (this process's first copy)."""
        return jax.tree_util.tree_map(lambda leaf: leaf.addressable_shards[0].data, tree)

    def _placed_data(self, frames: jax.Array, labels: jax.Array) -> tuple[jax.Array, jax.Array]:
        """The training data replicated on the mesh: placed once, again only for other arrays."""
        if self._placed is None or self._placed[0] is not frames or self._placed[1] is not labels:
            self._placed = (frames, labels, self.replicate((frames, labels)))
        return self._placed[2]

    # -- compiled chunks -----------------------------------------------------------------------
    def compile_chunk(self, step: Callable, state: Any, frames: jax.Array, labels: jax.Array, length: int) -> Callable:
        """AOT-compile ``length`` scanned generations over the mesh, plus the replica check.

        Same contract as the trainer's single-device compiler: the returned function maps
        ``(state, frames, labels)`` to ``(state, metrics (length,))``; the state it returns is
        replicated on the mesh (one process) or this process's copy (several processes).

        Raises (from the returned function):
          TrainingError: the replicas' checksums differ after the chunk.
        """

        def chunk(state, frames, labels):
            state, metrics = jax.lax.scan(lambda carry, _: step(carry, frames, labels), state, None, length=length)
            checksums = jax.lax.all_gather(tree_checksum(state), MESH_AXIS)
            return state, metrics, checksums

        spec = PartitionSpec()
        # check_vma=False: the network's time scans start from device-invariant zeros and carry
        # per-device (varying) membranes, which the replication type checker refuses unless
        # snn.py knew about meshes. Replication of the outputs holds by construction (they
        # derive from the gathered fitness) and is verified at run time by the checksums.
        sharded = jax.shard_map(
            chunk, mesh=self.mesh, in_specs=(spec, spec, spec), out_specs=(spec, spec, spec), check_vma=False
        )
        placed_frames, placed_labels = self._placed_data(frames, labels)
        compiled = jax.jit(sharded, compiler_options=self.compiler_options).lower(self.replicate(state), placed_frames, placed_labels).compile()

        def run(state, frames, labels):
            new_state, metrics, checksums = compiled(self.replicate(state), *self._placed_data(frames, labels))
            checksums = np.asarray(self.local_copy(checksums))
            if np.any(checksums != checksums[0]):
                first = int(np.asarray(self.local_copy(state.generation)))
                self.check_replicas(checksums, first, first + length)
            # One process: the state stays on the mesh for the next call (no copies per call).
            # Several: each continues from its own copy, so that its validation and checkpoints
            # are computations of its own and not collective programs.
            if jax.process_count() > 1:
                new_state = self.local_copy(new_state)
            return new_state, self.local_copy(metrics)

        run.compiled = compiled  # for inspection, e.g. of the collectives in compiled.as_text()
        return run

    def check_replicas(self, checksums: np.ndarray, first_generation: int, last_generation: int) -> None:
        """Raise :class:`TrainingError` unless all devices' state checksums ``(D,)`` agree."""
        if np.all(checksums == checksums[0]):
            return
        devices = list(self.mesh.devices.flat)
        odd = [
            f"{devices[i]} (process {devices[i].process_index})"
            for i in np.flatnonzero(checksums != checksums[0])
        ]
        raise TrainingError(
            f"the replicated strategy state drifted apart between generations {first_generation} and "
            f"{last_generation}: the state checksum of {', '.join(odd)} differs from that of {devices[0]} "
            f"(checksums {', '.join(f'{int(c):#010x}' for c in checksums)}). Training stopped; the last "
            "checkpoint was written before the drift and is kept. The devices computed the same update "
            "differently: make their arithmetic deterministic (e.g. XLA_FLAGS=--xla_gpu_deterministic_ops=true "
            "on GPUs) or train on one device"
        )


__all__ = [
    "MESH_AXIS",
    "DistributedOptions",
    "initialize",
    "process_run_dir",
    "select_devices",
    "population_mesh",
    "members_per_device",
    "tree_checksum",
    "ShardedPopulation",
]
