"""Weak and strong scaling of the sharded generation over D devices (see docs/scale-out.md).

    XLA_FLAGS=--xla_force_host_platform_device_count=8 python benchmarks/scale_out.py \\
        --devices 1 2 4 8 --population 256 [--weak] [--json results.jsonl]

For each device count D and population N (``--weak``: N * D members, N per device), the
trainer's own compiled chunk of generations is timed: ``make_generation_step`` with the sharded
evaluation and ``ShardedPopulation.compile_chunk`` (D = 1: the plain single-device path the
trainer uses, and a 1-device mesh to show the cost of the sharded machinery itself). Random
0..3 event counts stand in for N-MNIST frames. All configurations are compiled first and then
timed in alternating rounds, so that other load on a shared machine slows them alike; the
fastest and the median round are reported.

Besides the whole generation it times ``ask`` + ``tell`` alone at each N: the part every device
repeats in full (noise of all N members, the update), the serial term of the scaling model
``t(D) = t_eval(N) / D + t_ask_tell(N) + t_gather``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time

import jax
import jax.numpy as jnp
import numpy as np

from eggroll_snn import distributed

from eggroll_snn.network import init_params
from eggroll_snn.config import TrainConfig, apply_overrides
from eggroll_snn.strategies import Objective
from eggroll_snn.training.evaluators import local_evaluator, local_objective
from eggroll_snn.training.step import compile_chunk, make_generation_step, strategy_from_config


def build(args, devices: int, population: int, sharded: bool):
    """``(label, run, timing_fn)`` for one configuration: a compiled chunk and how to time it."""
    config = apply_overrides(TrainConfig(), {
        "data.num_time_bins": args.time_bins, "data.pool": args.pool, "network.hidden_sizes": [args.hidden],
        "strategy.population_size": population, "strategy.rank": args.rank, "train.batch_size": args.batch,
    })
    network, strategy = config.network_config(), strategy_from_config(config)
    side = 34 // args.pool
    rng = np.random.default_rng(0)
    frames = jnp.asarray(rng.poisson(0.2, (args.recordings, args.time_bins, 2, side, side)).clip(0, 3), jnp.uint8)
    labels = jnp.asarray(rng.integers(0, 10, args.recordings), jnp.int32)
    state = strategy.init(jax.random.key(1), init_params(jax.random.key(0), network))
    if sharded:
        population_mesh = distributed.ShardedPopulation(
            distributed.population_mesh(jax.devices()[:devices]), population, local_evaluator(network)
        )
        objective = Objective(network, population_mesh.evaluate, config.train.fitness)
        step = make_generation_step(strategy, objective, config.train, jax.random.key(2))
        chunk = population_mesh.compile_chunk(step, state, frames, labels, args.generations_per_call)
        state = population_mesh.replicate(state)  # as in training, where it stays on the mesh between calls
    else:
        step = make_generation_step(strategy, local_objective(network, strategy, config.train.fitness), config.train, jax.random.key(2))
        chunk = compile_chunk(step, state, frames, labels, args.generations_per_call)

    checksums = set()  # of the state after the chunk: every call starts from the same state

    def run():
        start = time.perf_counter()
        result = jax.block_until_ready(chunk(state, frames, labels))
        seconds = (time.perf_counter() - start) / args.generations_per_call
        checksums.add(int(distributed.tree_checksum(result[0])))
        return seconds

    run()  # warm up (first-call allocations, the placement of the data on the mesh)
    run.checksums = checksums
    return run


def ask_tell(args, population: int):
    """Seconds of one ``ask`` + ``tell`` at population N on the default device (the replicated part)."""
    config = apply_overrides(TrainConfig(), {
        "data.num_time_bins": args.time_bins, "data.pool": args.pool, "network.hidden_sizes": [args.hidden],
        "strategy.population_size": population, "strategy.rank": args.rank,
    })
    network, strategy = config.network_config(), strategy_from_config(config)
    state = strategy.init(jax.random.key(1), init_params(jax.random.key(0), network))
    fitness = jnp.linspace(-1.0, 1.0, population)

    @jax.jit
    def both(state):
        perturbations = strategy.ask(state)
        touched = sum(jnp.sum(leaf) for leaf in jax.tree_util.tree_leaves(perturbations))  # keep ask alive
        return strategy.tell(state, fitness + 0.0 * touched)[0]

    jax.block_until_ready(both(state))

    def run():
        start = time.perf_counter()
        jax.block_until_ready(both(state))
        return time.perf_counter() - start

    return run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devices", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--population", type=int, nargs="+", default=[256], help="N (with --weak: per device)")
    parser.add_argument("--weak", action="store_true", help="weak scaling: N * D members on D devices")
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--time-bins", type=int, default=8)
    parser.add_argument("--pool", type=int, default=2)
    parser.add_argument("--hidden", type=int, default=128)
    parser.add_argument("--rank", type=int, default=4)
    parser.add_argument("--recordings", type=int, default=2000, help="size of the stand-in training split")
    parser.add_argument("--generations-per-call", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--no-mesh-one", action="store_true", help="skip the 1-device mesh at D = 1")
    parser.add_argument("--json", help="append one JSON line per configuration to this file")
    args = parser.parse_args()
    if max(args.devices) > jax.device_count():
        parser.error(f"--devices {max(args.devices)} but only {jax.device_count()} devices (set XLA_FLAGS=--xla_force_host_platform_device_count=N on CPU)")

    cases = []  # (label dict, timing function)
    for population in args.population:
        for devices in args.devices:
            members = population * devices if args.weak else population
            variants = [("plain", False)] if devices == 1 else []
            if devices > 1 or not args.no_mesh_one:
                variants.append(("mesh", True))
            for path, sharded in variants:
                compile_start = time.perf_counter()
                run = build(args, devices, members, sharded)
                label = {"devices": devices, "population_size": members, "path": path,
                         "compile_s": round(time.perf_counter() - compile_start, 2)}
                cases.append((label, run))
        for members in sorted({population * d if args.weak else population for d in args.devices}):
            cases.append(({"devices": 1, "population_size": members, "path": "ask_tell_only"}, ask_tell(args, members)))

    samples = [[] for _ in cases]
    for _ in range(args.rounds):
        for index, (_, run) in enumerate(cases):
            samples[index].append(run())

    environment = {
        "backend": jax.default_backend(), "device_kind": jax.devices()[0].device_kind, "cpu_count": os.cpu_count(),
        "load_average_1m": round(os.getloadavg()[0], 2), "batch_size": args.batch, "time_bins": args.time_bins,
        "inputs": 2 * (34 // args.pool) ** 2, "hidden": args.hidden, "rank": args.rank, "weak": args.weak,
    }
    print(json.dumps(environment))
    print(f"{'D':>3} {'N':>6} {'path':>14} {'best s/gen':>11} {'median':>9} {'members*samples/s':>18} {'per device':>11}")
    for (label, run), times in zip(cases, samples):
        best, median = min(times), statistics.median(times)
        record = {**environment, **label, "seconds_per_generation": best, "median_seconds": median}
        if hasattr(run, "checksums"):  # False would mean the device computes the same chunk differently
            record["repeatable"] = len(run.checksums) == 1
        line = f"{label['devices']:>3} {label['population_size']:>6} {label['path']:>14} {best:>11.5f} {median:>9.5f}"
        if label["path"] != "ask_tell_only":  # a whole generation: N members on B samples each
            throughput = label["population_size"] * args.batch / best
            record.update(member_samples_per_s=throughput, per_device=throughput / label["devices"])
            line += f" {throughput:>18.0f} {throughput / label['devices']:>11.0f}  repeatable {record['repeatable']}"
        print(line)
        if args.json:
            with open(args.json, "a", encoding="utf-8") as handle:
                handle.write(json.dumps(record) + "\n")


if __name__ == "__main__":
    main()
