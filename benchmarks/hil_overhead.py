"""Members per second through the hardware-in-the-loop protocol against the in-process integer path.

    python benchmarks/hil_overhead.py [--population 512] [--batch 128] [--generations 3]

One generation's population (the default network: 578 -> 128 -> 10, T = 8, EGGROLL r = 4) on random
event counts is evaluated three ways, each timed over --generations calls after one warm-up:
the in-process JAX integer path (compiled), the reference evaluator's numpy computation called
directly, and the same reference evaluator behind the protocol in its own process (what training
with fixed_point.evaluator pays). The protocol's own cost is the difference of the last two.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np
from eggroll_snn.network import init_params
from eggroll_snn.config import TrainConfig, apply_overrides
from eggroll_snn.integer.hil.client import ExternalEvaluator, _narrow, request_arrays
from eggroll_snn.integer.hil.reference_evaluator import evaluate_request
from eggroll_snn.population import population_logits
from eggroll_snn.training import strategy_from_config


def timed(function, repeats: int) -> float:
    function()
    start = time.perf_counter()
    for _ in range(repeats):
        function()
    return (time.perf_counter() - start) / repeats


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--population", type=int, default=512)
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--generations", type=int, default=3)
    args = parser.parse_args()
    config = apply_overrides(TrainConfig(), {"network.neuron": "fixed_point", "strategy.population_size": args.population})
    network = config.network_config()
    strategy = strategy_from_config(config)
    state = strategy.init(jax.random.key(1), init_params(jax.random.key(0), network))
    inputs = jnp.asarray(np.random.default_rng(0).poisson(0.9, (args.batch, 8, network.input_size)), jnp.float32)
    perturbations = jax.jit(strategy.ask)(state)
    in_process = jax.jit(lambda params, members: population_logits(params, members, inputs, network))
    arrays = jax.tree_util.tree_map(np.asarray, jax.jit(lambda p, e: request_arrays(p, e, inputs, network.fixed_point))(state.params, perturbations))
    arithmetic = {**network.fixed_point.record(), "layers": len(network.weight_shapes)}
    shape = (args.population, args.batch, network.num_classes)
    evaluator = ExternalEvaluator(f"{shlex.quote(sys.executable)} -m eggroll_snn.integer.hil.reference_evaluator", arithmetic, 600)
    try:
        seconds = {
            "in_process_jax": timed(lambda: jax.block_until_ready(in_process(state.params, perturbations)), args.generations),
            "reference_numpy_direct": timed(lambda: evaluate_request(arithmetic, arrays), args.generations),
            "reference_through_protocol": timed(lambda: evaluator.evaluate(_narrow(arrays), shape), args.generations),
        }
    finally:
        evaluator.close()
    request_bytes = sum(value.nbytes for value in _narrow(arrays).values())
    report = {
        "population": args.population, "batch": args.batch, "generations_timed": args.generations,
        "request_megabytes": round(request_bytes / 1e6, 2),
        "seconds_per_generation": {k: round(v, 4) for k, v in seconds.items()},
        "members_per_second": {k: round(args.population / v, 1) for k, v in seconds.items()},
        "protocol_overhead_s_per_generation": round(seconds["reference_through_protocol"] - seconds["reference_numpy_direct"], 4),
    }
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
