"""Time one jitted generation (ask -> population_logits -> fitness -> tell) per strategy.

    python benchmarks/quick_step.py [--population 256 --batch 64 --time-bins 10 --hidden 128 --rank 1]

Random 0..3 event counts stand in for N-MNIST frames (2 x 34 x 34 = 2312 inputs); the fitness
is the negative cross-entropy on one minibatch shared by all members, as in training. Prints the
fastest of --repeats seconds per generation of each strategy and the full_rank / eggroll ratio.
"""

from __future__ import annotations

import argparse
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax

from eggroll_snn import snn
from eggroll_snn.strategies import make_strategy


def generation_seconds(method: str, args, inputs, labels, **options) -> float:
    config = snn.NetworkConfig(input_size=inputs.shape[-1], hidden_sizes=(args.hidden,))
    strategy = make_strategy(method, population_size=args.population, **options)
    state = strategy.init(jax.random.key(1), snn.init_params(jax.random.key(0), config))

    @jax.jit
    def step(state, inputs, labels):
        logits = snn.population_logits(state.params, strategy.ask(state), inputs, config)
        fitness = -optax.softmax_cross_entropy_with_integer_labels(logits, labels[None, :]).mean(axis=1)
        return strategy.tell(state, fitness)

    for _ in range(2):  # compile and warm up
        state, info = jax.block_until_ready(step(state, inputs, labels))
    times = []
    for _ in range(args.repeats):
        start = time.perf_counter()
        state, info = jax.block_until_ready(step(state, inputs, labels))
        times.append(time.perf_counter() - start)
    return float(np.min(times))  # the least disturbed run: other processes share the CPU


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--population", type=int, default=256)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--time-bins", type=int, default=10)
    parser.add_argument("--inputs", type=int, default=2312)
    parser.add_argument("--hidden", type=int, default=128)
    parser.add_argument("--rank", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--only", choices=("eggroll", "full_rank"), default=None)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    inputs = jnp.asarray(rng.poisson(0.2, (args.batch, args.time_bins, args.inputs)).clip(0, 3), jnp.float32)
    labels = jnp.asarray(rng.integers(0, 10, args.batch))
    results = {}
    for method, options in (("eggroll", {"rank": args.rank}), ("full_rank", {})):
        if args.only in (None, method):
            results[method] = generation_seconds(method, args, inputs, labels, **options)
            print(f"{method:10s} {results[method] * 1e3:9.1f} ms / generation", flush=True)
    if len(results) == 2:
        print(f"full_rank / eggroll = {results['full_rank'] / results['eggroll']:.1f}x")


if __name__ == "__main__":
    main()
