"""Time one jitted generation (ask -> population_logits -> fitness -> tell) per strategy.

    python benchmarks/quick_step.py [--population 256 --batch 64 --time-bins 10 --hidden 128 --rank 1]

Random 0..3 event counts stand in for N-MNIST frames (2 x 34 x 34 = 2312 inputs); the fitness
is the negative cross-entropy on one minibatch shared by all members, as in training. Both
strategies are compiled first and then timed in alternating rounds, so that other processes on
a shared CPU slow both alike; the fastest round of each and the full_rank / eggroll ratio are
printed.
"""

from __future__ import annotations

import argparse
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax

from eggroll_snn import population

from eggroll_snn.network import NetworkConfig, init_params
from eggroll_snn.strategies import make_strategy


def compiled_generation(method: str, args, inputs, labels, **options):
    """``(run, state)``: a compiled generation step of ``method`` and its initial state, warmed up."""
    config = NetworkConfig(input_size=inputs.shape[-1], hidden_sizes=(args.hidden,))
    strategy = make_strategy(method, population_size=args.population, **options)
    state = strategy.init(jax.random.key(1), init_params(jax.random.key(0), config))

    @jax.jit
    def step(state, inputs, labels):
        logits = population.population_logits(state.params, strategy.ask(state), inputs, config)
        fitness = -optax.softmax_cross_entropy_with_integer_labels(logits, labels[None, :]).mean(axis=1)
        return strategy.tell(state, fitness)

    for _ in range(2):  # compile and warm up
        state, _ = jax.block_until_ready(step(state, inputs, labels))
    return lambda: jax.block_until_ready(step(state, inputs, labels)), state


def seconds(run) -> float:
    start = time.perf_counter()
    run()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--population", type=int, default=256)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--time-bins", type=int, default=10)
    parser.add_argument("--inputs", type=int, default=2312)
    parser.add_argument("--hidden", type=int, default=128)
    parser.add_argument("--rank", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=8)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    inputs = jnp.asarray(rng.poisson(0.2, (args.batch, args.time_bins, args.inputs)).clip(0, 3), jnp.float32)
    labels = jnp.asarray(rng.integers(0, 10, args.batch))
    runs = {
        "eggroll": compiled_generation("eggroll", args, inputs, labels, rank=args.rank)[0],
        "full_rank": compiled_generation("full_rank", args, inputs, labels)[0],
    }
    times = {method: [] for method in runs}
    for _ in range(args.rounds):
        for method, run in runs.items():
            times[method].append(seconds(run))
    best = {method: min(values) for method, values in times.items()}
    for method, value in best.items():
        print(f"{method:10s} {value * 1e3:9.1f} ms / generation (fastest of {args.rounds})")
    print(f"full_rank / eggroll = {best['full_rank'] / best['eggroll']:.1f}x")


if __name__ == "__main__":
    main()
